// `npm run bench -- run [--runs 5] [--only overhead|files|apt] [--json FILE] [--keep]`
//
// RUN against `buildah bud --isolation chroot` (vfs storage), same Dockerfiles, same bases pulled
// from a local registry:
//   (overhead) `FROM busybox` + one trivial RUN (`touch /x-N`: N differs per run, so no build
//       cache can answer it), for every executor and snapshot mode. Three figures per mode:
//       the primitive (snapshot prepare + run + diff + release, what the engine wraps around a
//       command), the RUN step as the engine reports it (also the layer: archive, compression,
//       digests), and the whole build to an OCI layout, against buildah's whole `bud`. Both tools
//       first build once to warm up (the base unpacked by Stevedore, pulled into buildah's
//       storage), then alternate `--runs` times; medians are reported.
//   (files) `FROM busybox` + five RUN steps: the first writes 50,000 files (50 directories of
//       1,000), the next four change a few of them (modify, delete a directory, chmod a
//       directory, count): the whole build, cold, against buildah's whole `bud`. One run each
//       (a fresh cache directory and fresh buildah storage, each on an ext4 filesystem made for
//       that build: bench/lib/filesystem.ts), `--runs` times (at most 3), medians; the tools take
//       turns at going first.
//   (apt) `FROM debian:bookworm` (debootstrap minbase, cached: test/fixtures/make-debian.ts) +
//       `RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf
//       /var/lib/apt/lists/*`, cold (a fresh cache directory / fresh buildah storage: the base
//       is pulled and unpacked in the timed run) and, for Stevedore, warm (base already unpacked);
//       each tool on a filesystem made for it.
//       Downloads come from the Debian mirror, so this one is noisy: one run each.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, createExecutor, createSnapshotter, type BuildEvent, type ExecutorKind, type SnapshotMode } from '../src/build/index.js';
import { closeDeflateWorkers } from '../src/layers/index.js';
import { run as runProcess, startRegistry, tempDir, type TestRegistry } from '../test/harness/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../test/fixtures/make-busybox.js';
import { debianImage, debianUnavailable, pushDebianImage } from '../test/fixtures/make-debian.js';
import { onFreshFilesystem } from './lib/filesystem.js';
import { machineNote, parseArgs, printTable, resultFile, timeShell, writeJson } from './lib/report.js';

const MODES: readonly (readonly [ExecutorKind, SnapshotMode])[] = [
  ['namespace', 'overlay'],
  ['namespace', 'copy'],
  ['runc', 'overlay'],
  ['runc', 'copy'],
];

/** Five RUN steps over a layer of 50,000 files; `salt` keeps the build cache from answering. */
function manyFilesDockerfile(salt: string): string {
  return [
    'ARG BASE',
    'FROM ${BASE}',
    `RUN echo ${salt} > /salt && mkdir /data && cd /data && d=0; while [ $d -lt 50 ]; do mkdir d$d; f=0; while [ $f -lt 1000 ]; do echo "$d/$f" > d$d/f$f; f=$((f+1)); done; d=$((d+1)); done`,
    'RUN echo changed > /data/d1/f1 && echo new > /data/d1/new',
    'RUN rm -r /data/d2',
    'RUN chmod -R go-rwx /data/d3',
    'RUN find /data -type f | wc -l > /data/count',
    '',
  ].join('\n');
}

interface FilesRow {
  readonly tool: string;
  /** The median. */
  readonly seconds: number;
  readonly runs: readonly number[];
}

/** A fresh registry holding the busybox base (made by the fixture script into `scratch`). */
async function busyboxRegistry(scratch: string): Promise<{ registry: TestRegistry; base: string; busyboxLayout: string }> {
  const busyboxLayout = join(scratch, 'busybox');
  await makeBusyboxImage({ dir: busyboxLayout });
  const registry = await startRegistry({ parentDirectory: scratch });
  const base = `${registry.host}/library/busybox:latest`;
  await pushBusyboxImage({ dir: busyboxLayout, tag: 'latest' }, base);
  return { registry, base, busyboxLayout };
}

async function manyFiles(scratch: string, runs: number): Promise<FilesRow[]> {
  const { registry, base } = await busyboxRegistry(scratch);
  try {
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const context = join(scratch, `files-${i}`);
      await mkdir(context, { recursive: true });
      await writeFile(join(context, 'Dockerfile'), manyFilesDockerfile(`run-${i}`));
      // Each build writes on a filesystem made for it (see freshFilesystem: buildah's deleted
      // files would otherwise slow down whatever ran next); the tools take turns going first.
      const stevedore = (): Promise<void> =>
        onFreshFilesystem(scratch, `stevedore-${i}`, async (dir) => {
          const workDir = join(dir, 'work');
          await mkdir(workDir, { recursive: true });
          ours.push((await stevedoreBuild(context, base, registry, { cacheDir: join(dir, 'cache'), workDir, out: join(dir, 'out') })).ms / 1000);
        });
      const buildah = (): Promise<void> =>
        onFreshFilesystem(scratch, `buildah-${i}`, async (dir) => {
          theirs.push((await buildahBud(join(dir, 'storage'), context, base, `files-${i}`)) / 1000);
        });
      for (const tool of i % 2 === 0 ? [stevedore, buildah] : [buildah, stevedore]) await tool();
      console.log(`  run ${i + 1} (${i % 2 === 0 ? 'stevedore' : 'buildah'} first): stevedore ${ours.at(-1)!.toFixed(2)} s, buildah ${theirs.at(-1)!.toFixed(2)} s`);
    }
    return [
      { tool: 'stevedore build (to an OCI layout)', seconds: median(ours), runs: ours },
      { tool: 'buildah bud (vfs)', seconds: median(theirs), runs: theirs },
    ];
  } finally {
    await registry.stop();
  }
}

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const APT_RUN = 'RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*';

interface OverheadRow {
  readonly mode: string;
  readonly primitiveMs: number;
  readonly stepMs: number;
  readonly buildMs: number;
  readonly buildahMs: number;
  readonly ratio: number;
}

interface AptRow {
  readonly tool: string;
  readonly seconds: number;
  readonly runStepSeconds?: number | undefined;
}

const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const elapsedMs = (since: bigint): number => Number(process.hrtime.bigint() - since) / 1e6;

/** A Dockerfile of one RUN on `BASE`. */
async function oneRunContext(root: string, name: string, run: string): Promise<string> {
  const dir = join(root, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), `ARG BASE\nFROM \${BASE}\n${run}\n`);
  return dir;
}

async function stevedoreBuild(
  context: string,
  base: string,
  registry: TestRegistry,
  options: { cacheDir: string; workDir: string; out: string; runExecutor?: ExecutorKind; snapshotter?: SnapshotMode },
): Promise<{ ms: number; runStepMs: number }> {
  const events: BuildEvent[] = [];
  const started = process.hrtime.bigint();
  await build({
    context,
    buildArgs: { BASE: base },
    outputs: [{ type: 'layout', dir: options.out }],
    registry: { insecureRegistries: [registry.host] },
    cacheDir: options.cacheDir,
    workDir: options.workDir,
    ...(options.runExecutor === undefined ? {} : { runExecutor: options.runExecutor }),
    ...(options.snapshotter === undefined ? {} : { snapshotter: options.snapshotter }),
    onEvent: (e) => events.push(e),
  }).result;
  const ms = elapsedMs(started);
  const step = events.find((e): e is Extract<BuildEvent, { type: 'step-finished' }> => e.type === 'step-finished' && e.instruction.startsWith('RUN'));
  return { ms, runStepMs: step?.durationMs ?? Number.NaN };
}

function buildahFlags(storage: string): string {
  return `--storage-driver vfs --root ${storage}/root --runroot ${storage}/runroot`;
}

async function buildahBud(storage: string, context: string, base: string, tag: string): Promise<number> {
  const { seconds } = await timeShell(`buildah ${buildahFlags(storage)} bud --isolation chroot --tls-verify=false --quiet --build-arg BASE=${base} -t localhost/${tag} ${context} >/dev/null`);
  return seconds * 1000;
}

/** The engine's primitive: prepare a snapshot over the unpacked base, run, diff, release. */
async function primitiveMs(kind: ExecutorKind, mode: SnapshotMode, lowerDir: string, workDir: string, runs: number): Promise<number> {
  const executor = await createExecutor({ kind, tmpDir: workDir });
  const snapshotter = await createSnapshotter({ mode, workDir });
  const times: number[] = [];
  for (let i = 0; i <= runs; i++) {
    const started = process.hrtime.bigint();
    const snapshot = await snapshotter.prepare([lowerDir]);
    try {
      const result = await executor.run({ rootfs: snapshot.rootfs, args: ['touch', `/x-${i}`], env: [PATH_ENV], cwd: '/', user: { uid: 0, gid: 0 } });
      if (result.exitCode !== 0) throw new Error(`touch exited with ${result.exitCode}`);
      for await (const _entry of snapshot.diff()) void _entry;
    } finally {
      await snapshot.release();
    }
    if (i > 0) times.push(elapsedMs(started)); // the first is a warm-up
  }
  return median(times);
}

async function overhead(scratch: string, runs: number): Promise<OverheadRow[]> {
  const { registry, base, busyboxLayout } = await busyboxRegistry(scratch);
  try {
    const lowerDir = join(scratch, 'busybox-rootfs');
    await runProcess('umoci', ['raw', 'unpack', '--image', `${busyboxLayout}:latest`, lowerDir]);

    const storage = join(scratch, 'buildah-overhead');
    const warm = await oneRunContext(scratch, 'overhead-warm', 'RUN touch /x');
    await buildahBud(storage, warm, base, 'overhead-warm');
    const buildah: number[] = [];
    const rows: OverheadRow[] = [];
    for (const [kind, mode] of MODES) {
      const cacheDir = join(scratch, `cache-${kind}-${mode}`);
      const workDir = join(scratch, `work-${kind}-${mode}`);
      await mkdir(workDir, { recursive: true });
      const options = { cacheDir, workDir, runExecutor: kind, snapshotter: mode };
      await stevedoreBuild(warm, base, registry, { ...options, out: join(scratch, 'out-warm') });
      const steps: number[] = [];
      const builds: number[] = [];
      for (let i = 0; i < runs; i++) {
        const context = await oneRunContext(scratch, `overhead-${kind}-${mode}-${i}`, `RUN touch /x-${i}`);
        const ours = await stevedoreBuild(context, base, registry, { ...options, out: join(scratch, `out-${kind}-${mode}-${i}`) });
        steps.push(ours.runStepMs);
        builds.push(ours.ms);
        buildah.push(await buildahBud(storage, context, base, `overhead-${kind}-${mode}-${i}`));
      }
      const buildahMs = median(buildah);
      rows.push({
        mode: `${kind}/${mode}`,
        primitiveMs: await primitiveMs(kind, mode, lowerDir, workDir, runs),
        stepMs: median(steps),
        buildMs: median(builds),
        buildahMs,
        ratio: median(builds) / buildahMs,
      });
    }
    // buildah's runs are spread over the whole table: every row is compared with all of them.
    const buildahMs = median(buildah);
    return rows.map((r) => ({ ...r, buildahMs, ratio: r.buildMs / buildahMs }));
  } finally {
    await registry.stop();
  }
}

async function apt(scratch: string): Promise<AptRow[] | string> {
  const unavailable = await debianUnavailable();
  if (unavailable !== undefined) return unavailable;
  console.log('preparing the Debian base (debootstrap, cached after the first time)...');
  const image = await debianImage();
  const registry = await startRegistry({ parentDirectory: scratch });
  try {
    const base = `${registry.host}/library/debian:bookworm`;
    await pushDebianImage(image, base, { insecureRegistries: [registry.host] });
    const context = await oneRunContext(scratch, 'apt', APT_RUN);
    // Each tool writes on a filesystem made for it (see freshFilesystem).
    const { cold, warm } = await onFreshFilesystem(scratch, 'apt-stevedore', async (dir) => {
      const cacheDir = join(dir, 'cache-apt');
      const workDir = join(dir, 'work-apt');
      await mkdir(workDir, { recursive: true });
      const cold = await stevedoreBuild(context, base, registry, { cacheDir, workDir, out: join(dir, 'out-apt-cold') });
      // Warm: the base is unpacked already; a changed RUN line so no build cache answers it.
      const warmContext = await oneRunContext(scratch, 'apt-warm', `${APT_RUN} && true`);
      const warm = await stevedoreBuild(warmContext, base, registry, { cacheDir, workDir, out: join(dir, 'out-apt-warm') });
      return { cold, warm };
    });
    const buildahMs = await onFreshFilesystem(scratch, 'apt-buildah', (dir) => buildahBud(join(dir, 'buildah-apt'), context, base, 'apt'));
    return [
      { tool: 'stevedore, cold (base pulled and unpacked)', seconds: cold.ms / 1000, runStepSeconds: cold.runStepMs / 1000 },
      { tool: 'stevedore, warm (base unpacked before)', seconds: warm.ms / 1000, runStepSeconds: warm.runStepMs / 1000 },
      { tool: 'buildah bud, cold (fresh storage)', seconds: buildahMs / 1000 },
    ];
  } finally {
    await registry.stop();
  }
}

export async function run(args: string[]): Promise<void> {
  const flags = parseArgs(args);
  const runs = Math.max(1, Number(flags.get('runs') ?? 5));
  const only = flags.get('only');
  const scratch = await tempDir('stevedore-bench-run-');
  const report: Record<string, unknown> = { benchmark: 'run', machine: machineNote(), runs };
  try {
    if (only === undefined || only === 'overhead') {
      console.log(`RUN overhead: FROM busybox + RUN touch /x-N, ${runs} runs per mode (medians)`);
      const rows = await overhead(scratch.path, runs);
      printTable(
        ['executor/snapshot', 'primitive ms', 'RUN step ms', 'stevedore build ms', 'buildah bud ms', 'ratio'],
        rows.map((r) => [r.mode, r.primitiveMs.toFixed(0), r.stepMs.toFixed(0), r.buildMs.toFixed(0), r.buildahMs.toFixed(0), `${r.ratio.toFixed(2)}x`]),
      );
      report.overhead = rows;
    }
    if (only === undefined || only === 'files') {
      console.log(`\nfive RUN steps over a 50,000-file layer, ${runs} cold builds each (medians)`);
      const rows = await manyFiles(scratch.path, Math.min(runs, 3));
      const buildah = rows.at(-1)!.seconds;
      printTable(
        ['build', 'wall s', 'vs buildah'],
        rows.map((r) => [r.tool, r.seconds.toFixed(2), `${(r.seconds / buildah).toFixed(2)}x`]),
      );
      report.files = rows;
    }
    if (only === undefined || only === 'apt') {
      console.log(`\napt-get install jq on debian bookworm (minbase)`);
      const rows = await apt(scratch.path);
      if (typeof rows === 'string') {
        console.log(`skipped: ${rows}`);
        report.apt = { skipped: rows };
      } else {
        const buildah = rows.at(-1)!.seconds;
        printTable(
          ['build', 'wall s', 'RUN step s', 'vs buildah'],
          rows.map((r) => [r.tool, r.seconds.toFixed(2), r.runStepSeconds === undefined ? '' : r.runStepSeconds.toFixed(2), `${(r.seconds / buildah).toFixed(2)}x`]),
        );
        report.apt = rows;
      }
    }
    await writeJson(resultFile(flags, 'run'), report);
  } finally {
    if (flags.get('keep') !== 'true') {
      // buildah's vfs storage holds root-owned copies of the bases: plain rm, as bench/build.ts.
      await runProcess('rm', ['-rf', scratch.path]).catch(() => undefined);
    }
    await closeDeflateWorkers();
  }
}
