// `npm run bench -- rebuild [--size 256M] [--files 2000] [--json FILE] [--keep true]`
//
// The build cache: Stevedore against `buildah bud --layers` (vfs storage, chroot isolation) on
// the same Dockerfile (COPY and RUN steps over the busybox base, made by the fixture script and
// served by a local registry), in three phases: a cold build (empty caches), a warm rebuild
// (nothing changed: every step cached), and a rebuild after one file of the last COPY changed.
// Stevedore writes its image to an OCI layout; buildah commits to its own storage. Nothing is
// pushed. Each tool's cache and storage live on an ext4 filesystem made for it (see
// bench/lib/filesystem.ts: buildah's deleted containers would otherwise slow down whatever
// creates files next on this machine's disk); the context is read from the scratch directory.
// Printed as a table, and written as JSON with a note of the machine.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build, type BuildEvent } from '../src/build/index.js';
import { closeDeflateWorkers } from '../src/layers/index.js';
import { run as runProcess, startRegistry, tempDir } from '../test/harness/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../test/fixtures/make-busybox.js';
import { freshFilesystem, type FreshFilesystem } from './lib/filesystem.js';
import { machineNote, parseArgs, parseSize, printTable, resultFile, timeShell, writeJson } from './lib/report.js';

const DOCKERFILE = [
  'ARG BASE',
  'FROM ${BASE}',
  'COPY deps/ /opt/deps/',
  'RUN mkdir -p /opt/gen && for f in /opt/deps/f-1*; do cp "$f" /opt/gen/; done',
  'COPY src/ /opt/app/src/',
  'RUN find /opt/app -type f | sort > /opt/app/files.txt',
  'COPY last/ /opt/app/last/',
  '',
].join('\n');

async function writeFiles(dir: string, count: number, bytes: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const each = Math.max(1, Math.floor(bytes / count));
  for (let i = 0; i < count; i++) await writeFile(join(dir, `f-${i}`), randomBytes(each));
}

interface Phase {
  readonly phase: string;
  readonly stevedoreSeconds: number;
  readonly cachedSteps: string;
  readonly buildahSeconds: number;
  readonly ratio: number;
}

export async function run(args: string[]): Promise<void> {
  const flags = parseArgs(args);
  const bytes = parseSize(flags.get('size') ?? '256M');
  const files = Number(flags.get('files') ?? 2000);
  const scratch = await tempDir('stevedore-bench-rebuild-');
  const registry = await startRegistry({ parentDirectory: scratch.path });
  const filesystems: FreshFilesystem[] = [];
  const ownFilesystem = async (name: string): Promise<string> => {
    const fs = await freshFilesystem(scratch.path, name, 64);
    if (fs === undefined) return scratch.path;
    filesystems.push(fs);
    return fs.path;
  };
  try {
    const busyboxLayout = join(scratch.path, 'busybox');
    await pushBusyboxImage(await makeBusyboxImage({ dir: busyboxLayout }), `${registry.host}/library/busybox:latest`);
    const base = `${registry.host}/library/busybox:latest`;
    const context = join(scratch.path, 'context');
    console.log(`generating the context (${(bytes / 1024 ** 2).toFixed(0)} MiB in ${files} files)...`);
    await writeFiles(join(context, 'deps'), files, bytes);
    await writeFiles(join(context, 'src'), 50, 512 * 1024);
    await writeFiles(join(context, 'last'), 20, 64 * 1024);
    await writeFile(join(context, 'Dockerfile'), DOCKERFILE);
    // The stat index does not trust a file changed in the last 2 s (git's "racily clean" rule):
    // a context written a moment before the cold build would be hashed again on the first warm
    // rebuild. Real contexts are older than that; so is this one once the cold build starts.
    await new Promise((resolve) => setTimeout(resolve, 2500));

    const ours = await ownFilesystem('stevedore');
    const cacheDir = join(ours, 'stevedore-cache');
    const stevedore = async (): Promise<{ seconds: number; cached: number; steps: number }> => {
      const events: BuildEvent[] = [];
      const started = process.hrtime.bigint();
      await build({
        context,
        buildArgs: { BASE: base },
        registry: { insecureRegistries: [registry.host] },
        outputs: [{ type: 'layout', dir: join(ours, `out-${randomBytes(4).toString('hex')}`) }],
        cacheDir,
        onEvent: (e) => events.push(e),
      }).result;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const finished = events.filter((e): e is Extract<BuildEvent, { type: 'step-finished' }> => e.type === 'step-finished');
      return { seconds, cached: finished.filter((e) => e.cache.hit).length, steps: finished.length };
    };
    const storage = join(await ownFilesystem('buildah'), 'buildah');
    const buildahFlags = `--storage-driver vfs --root ${storage}/root --runroot ${storage}/runroot`;
    const buildah = async (): Promise<number> =>
      (await timeShell(`buildah ${buildahFlags} bud --layers --isolation chroot --tls-verify=false --quiet --build-arg BASE=${base} -t localhost/bench-rebuild ${context} >/dev/null`)).seconds;

    const rows: Phase[] = [];
    const phase = async (name: string): Promise<void> => {
      const ours = await stevedore();
      const theirs = await buildah();
      rows.push({ phase: name, stevedoreSeconds: ours.seconds, cachedSteps: `${ours.cached}/${ours.steps}`, buildahSeconds: theirs, ratio: ours.seconds / theirs });
    };
    await phase('cold build');
    await phase('warm rebuild, nothing changed');
    await writeFile(join(context, 'last', 'f-0'), randomBytes(64 * 1024));
    await phase('one file of the last COPY changed');

    printTable(
      ['phase', 'stevedore s', 'cached steps', 'buildah bud --layers s', 'ratio'],
      rows.map((r) => [r.phase, r.stevedoreSeconds.toFixed(2), r.cachedSteps, r.buildahSeconds.toFixed(2), `${r.ratio.toFixed(2)}x`]),
    );
    await writeJson(resultFile(flags, 'rebuild'), { benchmark: 'rebuild', machine: machineNote(), size: bytes, files, rows });
    await runProcess('rm', ['-rf', storage]).catch(() => undefined);
  } finally {
    await registry.stop();
    for (const fs of filesystems) await fs.release();
    if (flags.get('keep') !== 'true') await scratch.remove();
    await closeDeflateWorkers();
  }
}
