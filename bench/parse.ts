import { parseDockerfile, planBuild, type ParsedDockerfile } from '../src/dockerfile/index.js';
import { corpus, fuzzOne, mutations } from '../test/dockerfile/fuzz-core.js';
import { machineNote, parseArgs, writeJson, type MachineNote } from './lib/report.js';

/**
 * `npm run bench -- parse [--fuzz-seconds N] [--json FILE]`: Dockerfile parse + plan throughput
 * over BuildKit's corpus and over a generated 50,000-line Dockerfile (target: under 250 ms),
 * and the slowest input of a fuzz run. There is no native tool to compare with here (BuildKit's
 * parser is Go and not installed), so the numbers stand alone, with the machine they ran on.
 * Times are the best of several runs; CPU time is printed too, since wall time on a shared
 * two-core machine varies with its neighbours.
 */

const LARGE_TARGET_MS = 250;

/** A large, realistic Dockerfile: many stages with ARG/ENV/RUN/COPY/heredocs and cross-stage copies. */
export function generateDockerfile(lines: number): string {
  const out: string[] = ['# syntax=docker/dockerfile:1', 'ARG BASE=debian:bookworm-slim', 'ARG VERSION=1.0.0'];
  let stage = 0;
  while (out.length < lines - 12) {
    const name = `stage${stage}`;
    out.push(stage === 0 ? `FROM \${BASE} AS ${name}` : `FROM ${stage % 3 === 0 ? 'stage0' : '${BASE}'} AS ${name}`);
    out.push('ARG VERSION TARGETARCH', `ENV APP_HOME=/opt/${name} PATH=/opt/${name}/bin:$PATH`, 'WORKDIR $APP_HOME');
    if (stage > 0) out.push(`COPY --from=stage${stage - 1} /opt/stage${stage - 1}/bin/ ./bin/`);
    for (let i = 0; i < 60 && out.length < lines - 12; i++) {
      switch (i % 6) {
        case 0:
          out.push(`RUN --mount=type=cache,target=/var/cache/apt,sharing=locked apt-get update \\`, `    && apt-get install -y --no-install-recommends pkg${i} \\`, '    && rm -rf /var/lib/apt/lists/*');
          break;
        case 1:
          out.push(`COPY --chown=1000:1000 --chmod=644 src/${name}/file${i}.txt \${APP_HOME}/data/`);
          break;
        case 2:
          out.push(`LABEL org.example.${name}.item${i}="value \${VERSION}" other="x"`);
          break;
        case 3:
          out.push(`RUN <<EOF`, `set -eu`, `echo "building ${name} step ${i} for $TARGETARCH"`, `EOF`);
          break;
        case 4:
          out.push(stage > 0 ? `COPY --from=stage${stage - 1} /opt/stage${stage - 1}/data/ ./from-prev/` : `ADD https://example.com/a${i}.tgz /tmp/`);
          break;
        default:
          out.push(`ENV STEP_${i}=\${VERSION:-dev}-${i}`, '# a comment between instructions', `EXPOSE ${8000 + i}/tcp`);
      }
    }
    stage++;
  }
  // The target copies from the last stage, which copies from the one before: every stage is needed.
  out.push('FROM stage0 AS final', `COPY --from=stage${stage - 1} /opt/stage${stage - 1}/ /opt/app/`, 'CMD ["app"]');
  return `${out.join('\n')}\n`;
}

interface Timing {
  /** Best wall time, ms. */
  readonly wall: number;
  /** Best CPU time (user + system, all threads, so GC helpers count), ms. */
  readonly cpu: number;
}

function best(runs: number, fn: () => void): Timing {
  let wall = Infinity;
  let cpu = Infinity;
  for (let i = 0; i < runs; i++) {
    const c = process.cpuUsage();
    const start = performance.now();
    fn();
    wall = Math.min(wall, performance.now() - start);
    const used = process.cpuUsage(c);
    cpu = Math.min(cpu, (used.user + used.system) / 1000);
  }
  return { wall, cpu };
}

export interface ParseBenchResult {
  readonly benchmark: 'parse';
  readonly machine: MachineNote;
  readonly corpus: { files: number; bytes: number; parseMBps: number; parseAndPlanMBps: number };
  readonly large: {
    lines: number;
    bytes: number;
    stages: number;
    steps: number;
    parseMs: number;
    parseAndPlanMs: number;
    parseAndPlanCpuMs: number;
    parseAndPlanMBps: number;
    targetMs: number;
    withinTarget: boolean;
  };
  readonly fuzz: { seconds: number; inputs: number; slowestMs: number; slowestRetimedMs: number; slowestBytes: number; slowestInput: string };
}

export async function run(args: string[]): Promise<ParseBenchResult> {
  const options = parseArgs(args);
  const fuzzSeconds = Number(options.get('fuzz-seconds') ?? 5);

  // Corpus: small files, many times over (planning only those that plan: some have no FROM).
  const files = corpus();
  const bytes = files.reduce((n, f) => n + Buffer.byteLength(f), 0);
  const plannable = files.filter((f) => {
    try {
      planBuild(f, { buildPlatform: 'linux/amd64' });
      return true;
    } catch {
      return false;
    }
  });
  const rounds = 200;
  const corpusParse = best(3, () => {
    for (let r = 0; r < rounds; r++) for (const f of files) parseDockerfile(f);
  });
  const planBytes = plannable.reduce((n, f) => n + Buffer.byteLength(f), 0);
  const corpusPlan = best(3, () => {
    for (let r = 0; r < rounds; r++) for (const f of plannable) planBuild(f, { buildPlatform: 'linux/amd64' });
  });

  // One large file.
  const large = generateDockerfile(50_000);
  const largeBytes = Buffer.byteLength(large);
  let parsed: ParsedDockerfile | undefined;
  const largeParse = best(7, () => {
    parsed = parseDockerfile(large);
  });
  const plan = planBuild(large, { buildPlatform: 'linux/amd64' });
  const largePlan = best(7, () => {
    planBuild(large, { buildPlatform: 'linux/amd64' });
  });

  // Fuzz: the slowest input, timed again alone (its first time includes JIT and GC pauses).
  const deadline = Date.now() + fuzzSeconds * 1000;
  let inputs = 0;
  let slowest = { ms: 0, input: '' };
  const fuzzQuietly = (input: string): void => {
    try {
      fuzzOne(input);
    } catch {
      // The fuzz test asserts correctness; here only time matters.
    }
  };
  for (const input of mutations(7)) {
    if (Date.now() > deadline) break;
    const t = best(1, () => fuzzQuietly(input)).wall;
    if (t > slowest.ms) slowest = { ms: t, input };
    inputs++;
  }
  const retimed = best(5, () => fuzzQuietly(slowest.input)).wall;

  const mbps = (b: number, ms: number): number => Math.round((b / 1e6 / (ms / 1000)) * 10) / 10;
  const round = (n: number): number => Math.round(n * 10) / 10;
  const result: ParseBenchResult = {
    benchmark: 'parse',
    machine: machineNote(),
    corpus: { files: files.length, bytes, parseMBps: mbps(bytes * rounds, corpusParse.wall), parseAndPlanMBps: mbps(planBytes * rounds, corpusPlan.wall) },
    large: {
      lines: parsed!.endLine,
      bytes: largeBytes,
      stages: plan.stages.length,
      steps: plan.stages.reduce((n, s) => n + s.steps.length, 0),
      parseMs: round(largeParse.wall),
      parseAndPlanMs: round(largePlan.wall),
      parseAndPlanCpuMs: round(largePlan.cpu),
      parseAndPlanMBps: mbps(largeBytes, largePlan.wall),
      targetMs: LARGE_TARGET_MS,
      withinTarget: largePlan.wall < LARGE_TARGET_MS,
    },
    fuzz: {
      seconds: fuzzSeconds,
      inputs,
      slowestMs: round(slowest.ms),
      slowestRetimedMs: round(retimed),
      slowestBytes: Buffer.byteLength(slowest.input),
      slowestInput: slowest.input.length > 400 ? `${slowest.input.slice(0, 400)}…` : slowest.input,
    },
  };
  const m = result.machine;
  const l = result.large;
  console.log(
    [
      `parse (${m.cpuModel}, ${m.cpus} cores, Node ${m.node})`,
      `  corpus  ${files.length} files, ${bytes} B: parse ${result.corpus.parseMBps} MB/s, parse+plan ${result.corpus.parseAndPlanMBps} MB/s`,
      `  large   ${l.lines} lines, ${(l.bytes / 1e6).toFixed(2)} MB, ${l.stages} stages, ${l.steps} steps: parse ${l.parseMs} ms, ` +
        `parse+plan ${l.parseAndPlanMs} ms (cpu ${l.parseAndPlanCpuMs} ms, ${l.parseAndPlanMBps} MB/s; target < ${LARGE_TARGET_MS} ms: ${l.withinTarget ? 'met' : 'MISSED'})`,
      `  fuzz    ${inputs} inputs in ${fuzzSeconds} s: slowest ${result.fuzz.slowestMs} ms (${result.fuzz.slowestRetimedMs} ms alone, ${result.fuzz.slowestBytes} B)`,
    ].join('\n'),
  );
  const jsonPath = options.get('json');
  if (jsonPath !== undefined) {
    await writeJson(jsonPath, result);
    console.log(`\nwrote ${jsonPath}`);
  }
  return result;
}
