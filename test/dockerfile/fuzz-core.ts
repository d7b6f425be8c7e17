import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileError, DockerignoreError, dockerignoreMatcher, parseDockerfile, planBuild } from '../../src/dockerfile/index.js';

/**
 * A seeded mutation fuzzer for the Dockerfile frontend. Inputs are BuildKit's corpus plus a few
 * multi-stage files, mutated with Dockerfile syntax fragments; the property is that parsing and
 * planning either succeed or throw a `DockerfileError`, never anything else. Shared by the
 * bounded test (in a worker, under a watchdog) and the benchmark (which reports the slowest input).
 */

const root = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/buildkit');

const EXTRA_SEEDS = [
  'ARG BASE=alpine:3.19\nFROM --platform=$BUILDPLATFORM golang:1.22 AS build\nARG TARGETOS TARGETARCH\nWORKDIR /src\nRUN --mount=type=cache,target=/root/.cache --mount=type=bind,target=. GOOS=$TARGETOS go build -o /out/app .\nFROM ${BASE}\nCOPY --from=build --chmod=755 /out/app /usr/local/bin/\nENTRYPOINT ["app"]\n',
  'FROM scratch AS a\nCOPY <<EOF <<-"RAW" /etc/\nhello $X\nEOF\n\tliteral\n\tRAW\nRUN <<EOT bash\nset -e\nEOT\nFROM a AS b\nONBUILD RUN echo hi\nFROM b\nHEALTHCHECK --interval=5s --retries=3 CMD curl -f localhost\nEXPOSE 80 443/udp 8000-8002\nSTOPSIGNAL SIGTERM\n',
  '# escape=`\nFROM mcr.microsoft.com/windows\nSHELL ["powershell", "-c"]\nRUN dir c:\\ `\n  ; echo hi\nENV A=${B:-c} D="e f"\nLABEL "k"="v" x=y\nUSER ${U:-root}\nVOLUME /data\n',
  '# check=skip=JSONArgsRecommended\nFROM a AS x\nCOPY --from=y / /\nFROM a AS y\nRUN --mount=type=secret,id=tok,env=TOKEN --mount=type=ssh --network=none x\nADD --checksum=sha256:0000 https://example.com/a.tgz /\nCMD run\n',
];

export function corpus(): string[] {
  const files = readdirSync(join(root, 'testfiles'))
    .sort()
    .map((name) => readFileSync(join(root, 'testfiles', name, 'Dockerfile'), 'utf8'));
  return [...files, ...EXTRA_SEEDS];
}

const FRAGMENTS = [
  '\\',
  '`',
  '$',
  '${',
  '}',
  '${A:-',
  '${A//x/',
  '${A%%',
  '"',
  "'",
  '[',
  ']',
  '["a", "b"]',
  ',',
  '=',
  '--',
  '--from=',
  '--mount=type=cache,target=/x',
  '--mount=from=0,target=/y',
  '--platform=',
  '<<EOF',
  '<<-EOF',
  '\nEOF\n',
  '\n',
  '\r\n',
  '\t',
  ' ',
  '#',
  '# escape=`\n',
  '\ufeff',
  ':',
  '/',
  'FROM ',
  'FROM scratch AS s\n',
  'RUN ',
  'COPY ',
  'ADD ',
  'ARG ',
  'ENV ',
  'ONBUILD ',
  'HEALTHCHECK ',
  'EXPOSE ',
  ' AS ',
  '\u00a0',
  '\u0000',
  '😀',
];

/** mulberry32: a small, fast, seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An endless stream of mutated Dockerfiles, the same for the same seed. */
export function* mutations(seed: number): Generator<string> {
  const rand = prng(seed);
  const seeds = corpus();
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)]!;
  for (;;) {
    let text = pick(seeds);
    const edits = 1 + Math.floor(rand() * 6);
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(rand() * (text.length + 1));
      const op = rand();
      if (op < 0.4) {
        text = text.slice(0, at) + pick(FRAGMENTS) + text.slice(at);
      } else if (op < 0.6) {
        text = text.slice(0, at) + text.slice(at + 1 + Math.floor(rand() * 8));
      } else if (op < 0.75) {
        const len = 1 + Math.floor(rand() * 40);
        text = text.slice(0, at) + text.slice(at, at + len) + text.slice(at);
      } else if (op < 0.9) {
        const other = pick(seeds);
        const from = Math.floor(rand() * other.length);
        text = text.slice(0, at) + other.slice(from, from + 1 + Math.floor(rand() * 120)) + text.slice(at);
      } else {
        const code = Math.floor(rand() * 128);
        text = text.slice(0, at) + String.fromCharCode(code) + text.slice(at + 1);
      }
    }
    yield text;
  }
}

/**
 * Parses and plans one input in a few configurations. Returns whether it was accepted; throws
 * whatever unexpected error escaped (anything that is not a DockerfileError).
 */
export function fuzzOne(input: string): boolean {
  let parsed;
  try {
    parsed = parseDockerfile(input);
  } catch (err) {
    if (err instanceof DockerfileError) return false;
    throw err;
  }
  let accepted = true;
  const names = [...input.matchAll(/\bAS\s+([A-Za-z0-9_.-]+)/gi)].map((m) => m[1]!);
  const variants = [
    {},
    { platform: 'linux/arm/v7', buildArgs: { A: 'x', TAG: '1', HTTP_PROXY: 'p' }, target: names[0] ?? '' },
    { baseImages: { alpine: { Env: ['PATH=/bin', 'A=1'], OnBuild: ['RUN echo $A'], WorkingDir: 'w' } } },
  ];
  for (const options of variants) {
    try {
      planBuild(parsed, options);
    } catch (err) {
      if (!(err instanceof DockerfileError)) throw err;
      accepted = false;
    }
  }
  try {
    dockerignoreMatcher(input).decide('a/b', true);
  } catch (err) {
    if (!(err instanceof DockerignoreError)) throw err;
  }
  return accepted;
}
