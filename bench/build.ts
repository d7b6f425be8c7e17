// `npm run bench -- build [--size 1G] [--files 5000] [--runs 1] [--only a|b] [--skip-buildah] [--json FILE] [--keep]`
//
// Stevedore's `build` against `buildah bud` (vfs storage, chroot isolation) followed by
// `buildah push`, on the same contexts and the same busybox base (made by the fixture script and
// pushed to each registry first), each tool pushing to a registry of its own started fresh for
// the run (buildah's blob-info cache would otherwise mount what it pushed before):
//   (a) FROM busybox + COPY . /app, a context of SIZE bytes in FILES files (seeded pseudo-random
//       content, so compression cannot cheat);
//   (b) a 3-stage build: two stages each turning part of a context (SIZE/8) into an artifact with
//       RUN, a final stage copying both artifacts from them.
// Prints wall times, the ratio, and whether Stevedore downloaded the base image's layers (it
// should not for (a): they are mounted from the base's repository). With --runs N the two tools
// alternate N times and the medians are reported, so load that drifts during the run (a shared
// machine) weighs on both alike. Each Stevedore run also prints where its time went (the steps,
// i.e. archiving and compressing layers, then the push of the outputs) and its CPU time;
// --skip-buildah measures Stevedore alone (e.g. under `node --cpu-prof`).
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, type BuildEvent } from '../src/build/index.js';
import { closeDeflateWorkers } from '../src/layers/index.js';
import { run as runProcess, startRegistry, tempDir, type TestRegistry } from '../test/harness/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../test/fixtures/make-busybox.js';
import { machineNote, parseArgs, parseSize, printTable, resultFile, timeShell, writeJson } from './lib/report.js';

interface Workload {
  readonly name: string;
  readonly description: string;
  readonly context: string;
  readonly bytes: number;
  readonly files: number;
}

interface Row {
  readonly workload: string;
  readonly stevedoreSeconds: number;
  readonly stevedoreStepsSeconds: number;
  readonly stevedoreOutputSeconds: number;
  readonly stevedoreCpuSeconds: number;
  /** Absent with --skip-buildah. */
  readonly buildahSeconds?: number;
  readonly buildahBudSeconds?: number;
  readonly buildahPushSeconds?: number;
  readonly ratio?: number;
  readonly baseLayersDownloaded: boolean;
  readonly baseLayersMounted: number;
  readonly digest: string;
}


/** Deterministic pseudo-random bytes (AES-256-CTR of zeros under a key derived from `seed`). */
function randomStream(seed: string): (length: number) => Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return (length) => cipher.update(Buffer.alloc(length));
}

/** Writes `files` files totalling about `bytes` under `dir`, 100 per directory, sizes varying ±50%. */
async function writeTree(dir: string, bytes: number, files: number, seed: string): Promise<void> {
  const random = randomStream(seed);
  const average = Math.max(1, Math.floor(bytes / files));
  let written = 0;
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    const remaining = bytes - written;
    const left = files - i;
    const size = left === 1 ? Math.max(0, remaining) : Math.max(0, Math.min(remaining, Math.floor(average * (0.5 + ((i * 7919) % 1000) / 1000))));
    await writeFile(join(sub, `f${i}.bin`), random(size));
    written += size;
  }
}

async function workloadA(root: string, bytes: number, files: number): Promise<Workload> {
  const context = join(root, 'a');
  await mkdir(context, { recursive: true });
  await writeTree(join(context, 'data'), bytes, files, 'stevedore-bench-build-a');
  await writeFile(join(context, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nCOPY . /app\n');
  return { name: 'a', description: 'FROM busybox + COPY . /app', context, bytes, files };
}

async function workloadB(root: string, bytes: number, files: number): Promise<Workload> {
  const context = join(root, 'b');
  await mkdir(context, { recursive: true });
  const part = Math.floor(bytes / 16);
  const count = Math.max(2, Math.floor(files / 16));
  await writeTree(join(context, 'deps'), part, count, 'stevedore-bench-build-b-deps');
  await writeTree(join(context, 'src'), part, count, 'stevedore-bench-build-b-src');
  await writeFile(
    join(context, 'Dockerfile'),
    [
      'ARG BASE',
      'FROM ${BASE} AS deps',
      'COPY deps/ /deps/',
      'RUN cat /deps/*/* > /deps.bin && rm -r /deps',
      'FROM ${BASE} AS compile',
      'COPY src/ /src/',
      'RUN mkdir /out && tar -cf /out/app.tar -C /src . && rm -r /src',
      'FROM ${BASE}',
      'COPY --from=deps /deps.bin /opt/deps.bin',
      'COPY --from=compile /out/ /opt/app/',
      '',
    ].join('\n'),
  );
  return { name: 'b', description: '3 stages, artifacts copied between them', context, bytes: part * 2, files: count * 2 };
}

async function freshRegistry(busyboxLayout: string, parent: string): Promise<{ registry: TestRegistry; base: string }> {
  const registry = await startRegistry({ parentDirectory: parent });
  const base = `${registry.host}/library/busybox:latest`;
  await pushBusyboxImage({ dir: busyboxLayout, tag: 'latest' }, base);
  return { registry, base };
}

interface StevedoreRun {
  readonly seconds: number;
  /** CPU seconds of the whole process (main thread and compression workers). */
  readonly cpuSeconds: number;
  /** From the first step's start to the last step's end: archiving, compressing, RUN. */
  readonly stepsSeconds: number;
  /** From the first step's start to its first layer bytes: planning and the cache key (hashing the context). */
  readonly beforeLayerSeconds: number;
  /** From the first output's start to the last output's end: pushing. */
  readonly outputSeconds: number;
  readonly downloaded: boolean;
  readonly mounted: number;
  readonly digest: string;
}

/**
 * The span from the first event of `start` type to the last event of `end` type (or the first,
 * with `firstEnd`), in seconds.
 */
function span(events: readonly BuildEvent[], start: BuildEvent['type'], end: BuildEvent['type'], firstEnd = false): number {
  const first = events.find((e) => e.type === start);
  const last = firstEnd ? events.find((e) => e.type === end) : events.findLast((e) => e.type === end);
  return first === undefined || last === undefined ? 0 : (last.time - first.time) / 1000;
}

async function runStevedore(workload: Workload, busyboxLayout: string, scratch: string): Promise<StevedoreRun> {
  const { registry, base } = await freshRegistry(busyboxLayout, scratch);
  const cacheDir = join(scratch, `stevedore-cache-${workload.name}`);
  try {
    const events: BuildEvent[] = [];
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const result = await build({
      context: workload.context,
      buildArgs: { BASE: base },
      outputs: [{ type: 'registry', reference: `${registry.host}/bench/${workload.name}:latest` }],
      cacheDir,
      workDir: scratch,
      onEvent: (e) => events.push(e),
    }).result;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const run: StevedoreRun = {
      seconds,
      cpuSeconds: (used.user + used.system) / 1e6,
      stepsSeconds: span(events, 'step-started', 'step-finished'),
      beforeLayerSeconds: span(events, 'step-started', 'layer-progress', true),
      outputSeconds: span(events, 'output-started', 'output-finished'),
      downloaded: events.some((e) => e.type === 'layer-fetched'),
      mounted: events.filter((e) => e.type === 'blob' && e.action === 'mounted').length,
      digest: result.digest,
    };
    console.log(
      `  stevedore (${workload.name}): ${run.seconds.toFixed(2)} s wall (steps ${run.stepsSeconds.toFixed(2)} s of which ${run.beforeLayerSeconds.toFixed(2)} s before the first layer bytes, outputs ${run.outputSeconds.toFixed(2)} s), ${run.cpuSeconds.toFixed(2)} s CPU`,
    );
    return run;
  } finally {
    await registry.stop();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

async function runBuildah(workload: Workload, busyboxLayout: string, scratch: string): Promise<{ bud: number; push: number }> {
  const { registry, base } = await freshRegistry(busyboxLayout, scratch);
  const storage = join(scratch, `buildah-${workload.name}`);
  const flags = `--storage-driver vfs --root ${storage}/root --runroot ${storage}/runroot`;
  try {
    const bud = await timeShell(
      `buildah ${flags} bud --isolation chroot --tls-verify=false --quiet --build-arg BASE=${base} -t localhost/bench-${workload.name} ${workload.context} >/dev/null`,
    );
    const push = await timeShell(`buildah ${flags} push --tls-verify=false --quiet localhost/bench-${workload.name} docker://${registry.host}/bench/${workload.name}:latest`);
    return { bud: bud.seconds, push: push.seconds };
  } finally {
    await registry.stop();
    await runProcess('rm', ['-rf', storage]).catch(() => undefined);
  }
}

export async function run(args: string[]): Promise<void> {
  const flags = parseArgs(args);
  const bytes = parseSize(flags.get('size') ?? '1G');
  const files = Number(flags.get('files') ?? 5000);
  const only = flags.get('only');
  const scratch = await tempDir('stevedore-bench-build-');
  try {
    console.log(`generating contexts (${(bytes / 1024 ** 2).toFixed(0)} MiB in ${files} files)...`);
    const busyboxLayout = join(scratch.path, 'busybox');
    await makeBusyboxImage({ dir: busyboxLayout });
    const workloads: Workload[] = [];
    if (only === undefined || only === 'a') workloads.push(await workloadA(scratch.path, bytes, files));
    if (only === undefined || only === 'b') workloads.push(await workloadB(scratch.path, bytes, files));

    const runs = Math.max(1, Number(flags.get('runs') ?? 1));
    const skipBuildah = flags.has('skip-buildah');
    const rows: Row[] = [];
    for (const workload of workloads) {
      const ourRuns: StevedoreRun[] = [];
      const theirRuns: Awaited<ReturnType<typeof runBuildah>>[] = [];
      for (let i = 0; i < runs; i++) {
        ourRuns.push(await runStevedore(workload, busyboxLayout, scratch.path));
        if (!skipBuildah) theirRuns.push(await runBuildah(workload, busyboxLayout, scratch.path));
      }
      const ours = ourRuns.sort((x, y) => x.seconds - y.seconds)[Math.floor(runs / 2)]!;
      const theirs = theirRuns.sort((x, y) => x.bud + x.push - (y.bud + y.push))[Math.floor(runs / 2)];
      rows.push({
        workload: `(${workload.name}) ${workload.description}`,
        stevedoreSeconds: ours.seconds,
        stevedoreStepsSeconds: ours.stepsSeconds,
        stevedoreOutputSeconds: ours.outputSeconds,
        stevedoreCpuSeconds: ours.cpuSeconds,
        ...(theirs === undefined
          ? {}
          : {
              buildahSeconds: theirs.bud + theirs.push,
              buildahBudSeconds: theirs.bud,
              buildahPushSeconds: theirs.push,
              ratio: ours.seconds / (theirs.bud + theirs.push),
            }),
        baseLayersDownloaded: ourRuns.some((r) => r.downloaded),
        baseLayersMounted: ours.mounted,
        digest: ours.digest,
      });
    }
    printTable(
      ['workload', 'stevedore s (steps+outputs)', 'stevedore CPU s', 'buildah bud+push s', 'ratio', 'base layers downloaded'],
      rows.map((r) => [
        r.workload,
        `${r.stevedoreSeconds.toFixed(2)} (${r.stevedoreStepsSeconds.toFixed(2)}+${r.stevedoreOutputSeconds.toFixed(2)})`,
        r.stevedoreCpuSeconds.toFixed(2),
        r.buildahSeconds === undefined ? '-' : `${r.buildahSeconds.toFixed(2)} (${r.buildahBudSeconds!.toFixed(2)}+${r.buildahPushSeconds!.toFixed(2)})`,
        r.ratio === undefined ? '-' : `${r.ratio.toFixed(2)}x`,
        r.baseLayersDownloaded ? 'yes' : `no (${r.baseLayersMounted} mounted)`,
      ]),
    );
    const report = { benchmark: 'build', machine: machineNote(), size: bytes, files, runs, rows };
    await writeJson(resultFile(flags, 'build'), report);
  } finally {
    if (flags.get('keep') !== 'true') await scratch.remove();
    await closeDeflateWorkers();
  }
}
