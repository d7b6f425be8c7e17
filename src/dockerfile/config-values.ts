import { DockerfileError, DockerfileErrorCode } from './errors.js';
import { goQuote } from './text.js';

// Values the image config holds, checked the way Docker checks them: EXPOSE port specs
// (docker/go-connections `nat.ParsePortSpecs`) and STOPSIGNAL names (moby `signal.ParseSignal`).

const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

function parsePortNumber(text: string): number | undefined {
  if (!/^[0-9]+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

/** `80`, `80/udp`, `8000-8010`, `127.0.0.1:80:80/tcp` → the `port/proto` keys of ExposedPorts. */
export function parseExposedPorts(specs: readonly string[]): string[] {
  const ports = new Set<string>();
  for (const spec of specs) {
    const slash = spec.lastIndexOf('/');
    const proto = slash < 0 ? 'tcp' : spec.slice(slash + 1).toLowerCase();
    const withoutProto = slash < 0 ? spec : spec.slice(0, slash);
    if (!PROTOCOLS.has(proto)) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `invalid proto: ${proto}`);
    // Only the container port matters for EXPOSE; an ip:hostPort: prefix is accepted and ignored.
    const containerPart = withoutProto.slice(withoutProto.lastIndexOf(':') + 1);
    const dash = containerPart.indexOf('-');
    const start = parsePortNumber(dash < 0 ? containerPart : containerPart.slice(0, dash));
    const end = dash < 0 ? start : parsePortNumber(containerPart.slice(dash + 1));
    if (start === undefined || end === undefined || end < start) {
      throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `invalid containerPort: ${containerPart}`);
    }
    if (end - start > 65535) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `invalid port range: ${containerPart}`);
    for (let p = start; p <= end; p++) ports.add(`${p}/${proto}`);
  }
  return [...ports].sort();
}

const SIGNALS = new Set([
  'ABRT',
  'ALRM',
  'BUS',
  'CHLD',
  'CLD',
  'CONT',
  'FPE',
  'HUP',
  'ILL',
  'INT',
  'IO',
  'IOT',
  'KILL',
  'PIPE',
  'POLL',
  'PROF',
  'PWR',
  'QUIT',
  'SEGV',
  'STKFLT',
  'STOP',
  'SYS',
  'TERM',
  'TRAP',
  'TSTP',
  'TTIN',
  'TTOU',
  'URG',
  'USR1',
  'USR2',
  'VTALRM',
  'WINCH',
  'XCPU',
  'XFSZ',
  'RTMIN',
  'RTMAX',
  ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `RTMAX-${14 - i}`),
]);

/** Checks a STOPSIGNAL value: a positive number or a Linux signal name, with or without SIG. */
export function validateSignal(signal: string): void {
  if (/^[+-]?[0-9]+$/.test(signal)) {
    if (Number(signal) === 0) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `Invalid signal: ${signal}`);
    return;
  }
  const name = signal.toUpperCase().replace(/^SIG/, '');
  if (!SIGNALS.has(name)) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `Invalid signal: ${goQuote(signal)}`);
}

const SYMBOLIC_MODE = /^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+(?:,[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+)*$/;

/** `--chmod`: octal up to 07777, or symbolic (`u+x,g-w`). */
export function validateChmod(mode: string): void {
  if (/^[0-7]+$/.test(mode) && parseInt(mode, 8) <= 0o7777) return;
  if (SYMBOLIC_MODE.test(mode)) return;
  throw new DockerfileError(
    DockerfileErrorCode.INVALID_FLAG,
    `invalid chmod parameter: '${mode}'. it should be octal string and between 0 and 07777, or a symbolic mode such as u+x`,
  );
}
