import { readFile, writeFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  build,
  buildxMetadata,
  isBuildStepError,
  isDockerfileError,
  parseLayoutReference,
  parseReference,
  formatReference,
  type BuildEvent,
  type BuildOptions,
  type BuildOutput,
  type BuildSecret,
} from '../../index.js';
import { LiveDisplay, formatBytes, formatSeconds, shortDigest } from '../display.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { parseSize } from './quantities.js';
import { parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryOptions, type RegistryFlagValues } from './registry-flags.js';

/** Where the image goes when neither --push nor --output says (an OCI layout, no registry needed). */
export const DEFAULT_OUTPUT_DIR = 'stevedore-out';

const USAGE = `Usage: stevedore build [OPTIONS] [CONTEXT]

Builds an image from a Dockerfile and a context directory (default: the current directory),
without a daemon, and writes it to registries and/or OCI layouts. Prints each destination
pinned by digest on standard output; progress goes to standard error.

With neither --push nor --output, the image is written to the OCI layout ./${DEFAULT_OUTPUT_DIR}
(named by each -t REF, or "latest").

  -f, --file FILE             the Dockerfile (default CONTEXT/Dockerfile; "-" reads standard input)
  -t, --tag REF               name the image (repeatable): pushed with --push, else its name in the layout
  --build-arg NAME[=VALUE]    a build argument (repeatable); NAME alone takes the value from the environment
  --target STAGE              build this stage (default: the last)
  --platform OS/ARCH[/VAR]    the platform to build for (default linux/amd64)
  --label KEY=VALUE           add a label to the image (repeatable)
  --output oci:DIR[:NAME]     write the image to an OCI layout (repeatable); without NAME, the -t names or "latest"
  --push                      push the image to every -t REF
  --build-context NAME=VALUE  FROM NAME and COPY --from=NAME use VALUE: docker-image://REF, oci:DIR[:TAG] or a directory
  --secret id=ID[,src=FILE|,env=VAR]
                              a secret for RUN --mount=type=secret (repeatable)
  --ssh ID[=SOCKET]           an SSH agent for RUN --mount=type=ssh ("default" uses $SSH_AUTH_SOCK)
  --allow ENTITLEMENT         grant a privilege: security.insecure (RUN --security=insecure)
  --progress MODE             auto (live on a terminal, else plain), plain, json (one event per line), quiet
  --iidfile FILE              write the image ID (the config digest) to FILE
  --metadata-file FILE        write the build's metadata (buildx's keys) to FILE as JSON
  --cache-dir DIR             where the build cache, unpacked layers and RUN caches are kept (default ~/.cache/stevedore)
  --cache-from REF            look steps up in this registry cache repository too (repeatable)
  --cache-to REF              export the image's cache entries to this registry repository
  --no-cache                  run every step (the cache is still written)
  --no-cache-filter STAGE     run every step of this stage (repeatable)
  --cache-max-size BYTES      bound of the local build cache (suffixes K, M, G; default 10G)
  --base-layers MODE          lazy (default: fetch base layers only when a step needs their files) or eager

SOURCE_DATE_EPOCH (environment or --build-arg) sets the image's timestamps; the default is 0,
so the same inputs always give the same image.

${REGISTRY_FLAGS_USAGE}
`;

type ProgressMode = 'auto' | 'plain' | 'json' | 'quiet';

export const buildCommand: Command = {
  name: 'build',
  summary: 'build an image from a Dockerfile, without a daemon',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('build', args, {
      ...REGISTRY_FLAG_OPTIONS,
      file: { type: 'string', short: 'f' },
      tag: { type: 'string', short: 't', multiple: true },
      'build-arg': { type: 'string', multiple: true },
      target: { type: 'string' },
      platform: { type: 'string' },
      label: { type: 'string', multiple: true },
      output: { type: 'string', short: 'o', multiple: true },
      push: { type: 'boolean' },
      'build-context': { type: 'string', multiple: true },
      secret: { type: 'string', multiple: true },
      ssh: { type: 'string', multiple: true },
      allow: { type: 'string', multiple: true },
      progress: { type: 'string' },
      iidfile: { type: 'string' },
      'metadata-file': { type: 'string' },
      'cache-dir': { type: 'string' },
      'cache-from': { type: 'string', multiple: true },
      'cache-to': { type: 'string' },
      'no-cache': { type: 'boolean' },
      'no-cache-filter': { type: 'string', multiple: true },
      'cache-max-size': { type: 'string' },
      'base-layers': { type: 'string' },
    });
    if (positionals.length > 1) throw new UsageError('build takes at most one context directory');
    const context = resolvePath(io.cwd, positionals[0] ?? '.');
    const mode = (values.progress ?? 'auto') as ProgressMode;
    if (!['auto', 'plain', 'json', 'quiet'].includes(mode)) throw new UsageError(`--progress must be auto, plain, json or quiet, not ${JSON.stringify(mode)}`);
    const baseLayers = values['base-layers'] as string | undefined;
    if (baseLayers !== undefined && baseLayers !== 'lazy' && baseLayers !== 'eager') throw new UsageError('--base-layers must be lazy or eager');

    const tags = (values.tag as string[] | undefined) ?? [];
    for (const tag of tags) {
      try {
        parseReference(tag);
      } catch (err) {
        throw new UsageError(`invalid -t ${JSON.stringify(tag)}: ${(err as Error).message}`);
      }
    }
    const outputs = outputsFrom(tags, (values.output as string[] | undefined) ?? [], values.push === true, io.cwd);

    const dockerfile = await dockerfileOption(values.file as string | undefined, io);
    const buildArgs = keyValues('--build-arg', (values['build-arg'] as string[] | undefined) ?? [], io.env, true);
    // buildx passes SOURCE_DATE_EPOCH from the environment as a build arg.
    const epoch = io.env.SOURCE_DATE_EPOCH;
    if (epoch !== undefined && epoch !== '' && buildArgs.SOURCE_DATE_EPOCH === undefined) buildArgs.SOURCE_DATE_EPOCH = epoch;

    const progress = new BuildProgress(io.stderr, mode === 'auto' ? ((io.stderr as { isTTY?: boolean }).isTTY === true ? 'tty' : 'plain') : mode);
    const options: BuildOptions = {
      context,
      ...(dockerfile === undefined ? {} : { dockerfile }),
      buildArgs,
      ...(values.target === undefined ? {} : { target: values.target as string }),
      ...(values.platform === undefined ? {} : { platform: values.platform as string }),
      labels: keyValues('--label', (values.label as string[] | undefined) ?? [], io.env, false),
      outputs,
      contexts: keyValues('--build-context', (values['build-context'] as string[] | undefined) ?? [], io.env, false),
      secrets: secretsFrom((values.secret as string[] | undefined) ?? [], io.cwd),
      ssh: sshFrom((values.ssh as string[] | undefined) ?? [], io.env),
      allow: entitlementsFrom((values.allow as string[] | undefined) ?? []),
      registry: registryOptions(values as RegistryFlagValues, io),
      ...(values['cache-dir'] === undefined ? {} : { cacheDir: resolvePath(io.cwd, values['cache-dir'] as string) }),
      ...(baseLayers === undefined ? {} : { baseLayers: baseLayers as 'lazy' | 'eager' }),
      ...cacheOptions(values),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
      onEvent: (event) => progress.event(event),
    };

    let result;
    try {
      result = await build(options).result;
    } catch (err) {
      progress.stop();
      await showErrorLocation(err, dockerfile, context, io.stderr);
      throw err;
    }
    progress.stop();
    for (const output of result.outputs) {
      io.stdout.write(output.type === 'registry' ? `${output.reference}\n` : `oci:${output.dir}:${output.tag}@${output.digest}\n`);
    }
    if (result.outputs.length === 0) io.stdout.write(`${result.digest}\n`);
    if (values.iidfile !== undefined) await writeFile(resolvePath(io.cwd, values.iidfile as string), result.config.digest);
    if (values['metadata-file'] !== undefined) {
      const names = outputs.flatMap((o) => (o.type === 'registry' ? [formatReference(parseReference(o.reference))] : []));
      await writeFile(resolvePath(io.cwd, values['metadata-file'] as string), `${JSON.stringify(buildxMetadata(result, names), null, 2)}\n`);
    }
    return 0;
  },
};

/** The outputs the flags ask for (see the usage text). */
function outputsFrom(tags: readonly string[], outputFlags: readonly string[], push: boolean, cwd: string): BuildOutput[] {
  if (push && tags.length === 0) throw new UsageError('--push needs at least one -t REF');
  const outputs: BuildOutput[] = [];
  if (push) for (const tag of tags) outputs.push({ type: 'registry', reference: tag });
  const layoutNames = tags.length === 0 || push ? ['latest'] : tags;
  for (const flag of outputFlags) {
    const value = flag.startsWith('type=oci,dest=') ? `oci:${flag.slice('type=oci,dest='.length)}` : flag;
    if (!value.startsWith('oci:')) throw new UsageError(`--output must be oci:DIR[:NAME], not ${JSON.stringify(flag)}`);
    let ref;
    try {
      ref = parseLayoutReference(value);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const dir = resolvePath(cwd, ref.dir);
    for (const tag of ref.tag === undefined ? layoutNames : [ref.tag]) outputs.push({ type: 'layout', dir, tag });
  }
  if (outputs.length === 0) {
    for (const tag of layoutNames) outputs.push({ type: 'layout', dir: resolvePath(cwd, DEFAULT_OUTPUT_DIR), tag });
  }
  return outputs;
}

async function dockerfileOption(file: string | undefined, io: CliIO): Promise<BuildOptions['dockerfile']> {
  if (file === undefined) return undefined;
  if (file === '-') return { text: await readStream(io.stdin), name: 'Dockerfile' };
  return resolvePath(io.cwd, file);
}

async function readStream(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

/** `NAME=VALUE` flags; with `fromEnv`, a bare `NAME` takes its value from the environment (and is skipped when unset). */
function keyValues(flag: string, items: readonly string[], env: CliIO['env'], fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq === 0) throw new UsageError(`${flag} ${JSON.stringify(item)}: the name is empty`);
    if (eq < 0) {
      if (!fromEnv) throw new UsageError(`${flag} ${JSON.stringify(item)}: expected NAME=VALUE`);
      const value = env[item];
      if (value !== undefined) out[item] = value;
      continue;
    }
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `--secret id=ID,src=FILE` / `id=ID,env=VAR` (buildx's forms; `source` and `type=file|env` too). */
function secretsFrom(items: readonly string[], cwd: string): Record<string, BuildSecret> {
  const secrets: Record<string, BuildSecret> = {};
  for (const item of items) {
    const fields = new Map<string, string>();
    for (const part of item.split(',')) {
      const eq = part.indexOf('=');
      if (eq < 0) throw new UsageError(`--secret ${JSON.stringify(item)}: expected id=ID,src=FILE or id=ID,env=VAR`);
      fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1));
    }
    const id = fields.get('id');
    const src = fields.get('src') ?? fields.get('source');
    const env = fields.get('env');
    if (id === undefined || id === '') throw new UsageError(`--secret ${JSON.stringify(item)}: id is missing`);
    if (src !== undefined && fields.get('type') !== 'env') secrets[id] = { file: resolvePath(cwd, src) };
    else secrets[id] = { env: env ?? src ?? id };
  }
  return secrets;
}

/** `--allow`: the entitlements BuildKit knows that Stevedore can grant. */
function entitlementsFrom(items: readonly string[]): 'security.insecure'[] {
  return items.map((item) => {
    if (item !== 'security.insecure') throw new UsageError(`--allow ${item}: unknown entitlement (known: security.insecure)`);
    return item;
  });
}

function sshFrom(items: readonly string[], env: CliIO['env']): Record<string, string> {
  const agents: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const id = eq < 0 ? item : item.slice(0, eq);
    const socket = eq < 0 ? env.SSH_AUTH_SOCK : item.slice(eq + 1);
    if (socket === undefined || socket === '') throw new UsageError(`--ssh ${id}: no socket given and SSH_AUTH_SOCK is not set`);
    agents[id] = socket;
  }
  return agents;
}

/** Prints the Dockerfile lines a failure points at (the error line itself is printed by the caller). */
async function showErrorLocation(err: unknown, dockerfile: BuildOptions['dockerfile'], context: string, out: Writable): Promise<void> {
  let start: number;
  let end: number;
  if (isBuildStepError(err)) {
    start = err.startLine;
    end = err.endLine;
  } else if (isDockerfileError(err)) {
    start = err.startLine;
    end = err.endLine;
  } else {
    return;
  }
  if (start <= 0) return;
  let text: string;
  try {
    text = dockerfile !== undefined && typeof dockerfile !== 'string' ? Buffer.from(dockerfile.text).toString('utf8') : await readFile(dockerfile ?? resolvePath(context, 'Dockerfile'), 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n');
  const from = Math.max(1, start - 1);
  const to = Math.min(lines.length, end + 1);
  const width = String(to).length;
  for (let n = from; n <= to; n++) {
    const marker = n >= start && n <= end ? '>>>' : '   ';
    out.write(`${marker} ${String(n).padStart(width)} | ${lines[n - 1] ?? ''}\n`);
  }
}

interface RunningStep {
  readonly label: string;
  readonly started: number;
  bytes: number;
}

/**
 * The progress display: a live view on a terminal (finished steps printed above, running steps
 * and uploads redrawn ten times a second), plain lines in CI, or one JSON event per line.
 */
class BuildProgress {
  readonly #out: Writable;
  readonly #mode: 'tty' | 'plain' | 'json' | 'quiet';
  readonly #running = new Map<string, RunningStep>();
  readonly #pushes = new Map<string, { transferred: number; size: number }>();
  readonly #display: LiveDisplay;

  constructor(out: Writable, mode: 'tty' | 'plain' | 'json' | 'quiet') {
    this.#out = out;
    this.#mode = mode;
    this.#display = new LiveDisplay(out, mode === 'tty', () => this.#live());
  }

  event(event: BuildEvent): void {
    if (this.#mode === 'quiet') return;
    if (this.#mode === 'json') {
      this.#out.write(`${JSON.stringify(event)}\n`);
      return;
    }
    switch (event.type) {
      case 'step-started': {
        const label = `[${event.stageName} ${event.step + 1}/${event.steps}] ${firstLine(event.instruction)}`;
        this.#running.set(`${event.stage}:${event.step}`, { label, started: event.time, bytes: 0 });
        if (this.#mode === 'plain') this.#display.line(label);
        break;
      }
      case 'layer-progress': {
        const step = this.#running.get(`${event.stage}:${event.step}`);
        if (step !== undefined) step.bytes = event.uncompressed;
        break;
      }
      case 'step-finished': {
        const key = `${event.stage}:${event.step}`;
        const step = this.#running.get(key);
        this.#running.delete(key);
        const blob = event.layer?.descriptor;
        const layer = event.layer === undefined ? '' : blob === undefined ? ', layer kept unpacked' : `, layer ${shortDigest(blob.digest)} ${formatBytes(blob.size)}`;
        const label = step?.label ?? firstLine(event.instruction);
        // As docker's progress: a step taken from the cache says CACHED; a step that ran says why.
        const cached = event.cache.hit;
        const why = event.cache.hit ? '' : ` (${event.cache.reason})`;
        if (this.#mode === 'plain') this.#display.line(cached ? `  CACHED${layer}` : `  done in ${formatSeconds(event.durationMs)}${layer}${why}`);
        else this.#display.line(cached ? `${label}  CACHED${layer}` : `${label}  ${formatSeconds(event.durationMs)}${layer}${why}`);
        break;
      }
      case 'cache-exported':
        this.#display.line(`cache   ${event.entries} entries exported to ${event.reference} in ${formatSeconds(event.durationMs)}`);
        break;
      case 'log':
        this.#display.line(`  | ${event.line}`);
        break;
      case 'warning':
        this.#display.line(`warning: ${event.file === undefined ? '' : `${event.file}:${event.startLine ?? 0}: `}${event.message}${event.rule === undefined ? '' : ` (${event.rule})`}`);
        break;
      case 'base-resolved':
        this.#display.line(`base ${event.reference}@${event.digest}`);
        break;
      case 'run-sandbox':
        this.#display.line(`RUN: ${event.executor} executor, ${event.snapshotter} snapshots`);
        break;
      case 'rootfs-materialized':
        this.#display.line(`[${event.stageName}] unpacked ${event.layers} base layer(s) in ${formatSeconds(event.durationMs)}: ${event.reason}`);
        break;
      case 'push-progress':
        this.#pushes.set(event.digest, { transferred: event.transferred, size: event.size });
        break;
      case 'blob':
        this.#pushes.delete(event.descriptor.digest);
        if (this.#mode === 'plain' || event.action !== 'skipped') this.#display.line(`${event.action.padEnd(7)} ${shortDigest(event.descriptor.digest)} ${formatBytes(event.descriptor.size).padStart(10)}  ${event.destination}`);
        break;
      case 'retry':
        this.#display.line(`retry   ${event.operation} (attempt ${event.attempt}/${event.maxAttempts}: ${event.reason}); again in ${event.delayMs} ms`);
        break;
      case 'output-finished':
        this.#display.line(`wrote   ${event.reference}`);
        break;
      case 'build-finished':
        this.#display.line(`built   ${event.digest} in ${formatSeconds(event.durationMs)}`);
        break;
      default:
        break;
    }
  }

  stop(): void {
    this.#display.stop();
  }

  /** The live lines: what is in flight. */
  #live(): readonly string[] {
    const now = Date.now();
    return [
      ...[...this.#running.values()].map((s) => `${s.label}  ${formatSeconds(now - s.started)}${s.bytes > 0 ? ` ${formatBytes(s.bytes)}` : ''}`),
      ...[...this.#pushes.entries()].slice(0, 8).map(([digest, p]) => `push    ${shortDigest(digest)} ${formatBytes(p.transferred)} / ${formatBytes(p.size)}`),
    ].slice(0, 16);
  }
}

function firstLine(text: string): string {
  const line = text.split('\n')[0] ?? '';
  return line.length > 100 ? `${line.slice(0, 97)}...` : line;
}




/** The cache flags as build options. */
function cacheOptions(values: Record<string, unknown>): Partial<BuildOptions> {
  const maxSize = values['cache-max-size'] as string | undefined;
  return {
    ...(values['cache-from'] === undefined ? {} : { cacheFrom: values['cache-from'] as string[] }),
    ...(values['cache-to'] === undefined ? {} : { cacheTo: values['cache-to'] as string }),
    ...(values['no-cache'] === true ? { noCache: true } : {}),
    ...(values['no-cache-filter'] === undefined ? {} : { noCacheFilter: values['no-cache-filter'] as string[] }),
    ...(maxSize === undefined ? {} : { cacheMaxBytes: parseSize(maxSize, '--cache-max-size') }),
  };
}

