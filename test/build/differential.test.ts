import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../harness/index.js';
import { copyContext, layoutConfig, readTree, runBuild, skopeoInspect, startBuildSuite, unpackLayout, validateLayoutImage, type BuildSuite, type TreeEntry } from './helpers.js';
import type { ImageConfig } from '../../src/oci/index.js';

/**
 * The differential corpus: every case of test/fixtures/builds/<case>/ (a Dockerfile and its
 * context; `prepare.sh` makes what git cannot hold, `case.json` gives build args and targets) is
 * built by Stevedore and by buildah (`bud --isolation chroot`, vfs storage), both on the same
 * busybox base pushed to a test registry. The images are unpacked with umoci and compared: every
 * path's type, mode, owner, content and link target, and the config's runtime fields. Times are
 * not compared (buildah's --timestamp 0 and Stevedore's SOURCE_DATE_EPOCH differ by design).
 *
 * Where Stevedore differs from buildah on purpose (it follows BuildKit, the reference builder of
 * the Dockerfile format), `DELIBERATE` below names the path or field, what Stevedore must have
 * there, and why; the test checks Stevedore has exactly that.
 */

const CASES_DIR = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/builds');
const CASES = readdirSync(CASES_DIR).filter((name) => existsSync(join(CASES_DIR, name, 'Dockerfile'))).sort();

interface CaseSettings {
  readonly buildArgs?: Record<string, string>;
  readonly targets?: string[];
}

/** What buildah adds for its chroot RUNs when the base lacks them (see ENVIRONMENT.md): empty files and directories. */
const BUILDAH_RUN_ARTIFACTS = ['etc/hostname', 'etc/hosts', 'etc/resolv.conf', 'run', 'dev', 'proc', 'sys'];

/** A deliberate difference: Stevedore's value (`expected`, undefined for "absent") and why. */
interface Deliberate<T> {
  readonly expected: T | undefined;
  readonly reason: string;
}

/** A root-owned 0644 file with this content, as `readTree` reports it. */
function fileEntry(content: string): TreeEntry {
  return { type: 'file', mode: 0o644, uid: 0, gid: 0, size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') };
}

const CONFIG_FIELDS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'StopSignal', 'Healthcheck', 'Shell', 'OnBuild'] as const;
type ConfigField = (typeof CONFIG_FIELDS)[number];

const ARCHIVE_ROOT: Deliberate<TreeEntry> = {
  expected: { type: 'directory', mode: 0o755, uid: 0, gid: 0 },
  reason:
    "BuildKit's unpack (Docker's archive.Untar) skips an archive's \".\" entry when the destination exists (it was just made 0755 root-owned); buildah applies the archive's owner to it",
};

const DELIBERATE: Record<string, { tree?: Record<string, Deliberate<TreeEntry>>; config?: Partial<Record<ConfigField, Deliberate<unknown>>> }> = {
  'add-archives': {
    tree: {
      'unpacked/plain': ARCHIVE_ROOT,
      'unpacked/gz': ARCHIVE_ROOT,
      'unpacked/bz': ARCHIVE_ROOT,
      'unpacked/xz': ARCHIVE_ROOT,
      'unpacked/zst': ARCHIVE_ROOT,
    },
  },
  'entrypoint-cmd-final': {
    config: {
      Cmd: {
        expected: ['/bin/sh', '-ec', 'echo final'],
        reason: 'BuildKit wraps a shell-form CMD in the SHELL in effect; buildah 1.28 uses the default /bin/sh -c',
      },
    },
  },
  metadata: {
    config: {
      Env: {
        expected: ['PATH=/custom/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=override', 'B=two words'],
        reason: "BuildKit's addEnv replaces a redefined variable in place; buildah moves it to the end",
      },
    },
  },
  'run-mounts': {
    tree: {
      'after-rw': {
        expected: fileEntry('built\n'),
        reason: "BuildKit discards what a command writes to a read-write bind mount; buildah 1.28 writes through to the stage it mounted, so a later mount of that stage sees the writes",
      },
      'listing': {
        expected: fileEntry('artifact\nother\n'),
        reason: 'as after-rw: the file the rw mount created stays in the mounted stage under buildah 1.28',
      },
      ...Object.fromEntries(
        ['mnt', 'var', 'var/cache'].map((path) => [
          path,
          {
            expected: undefined,
            reason: "BuildKit removes the mount points it had to create (its mount stubs cleaner) before taking the layer; buildah leaves them in the image as empty directories",
          },
        ]),
      ),
    },
  },
  scratch: {
    config: {
      WorkingDir: { expected: '/', reason: "BuildKit's emptyImage gives a scratch image WorkingDir \"/\" (and PATH); buildah leaves it unset" },
    },
  },
};

let suite: BuildSuite;
let buildahRoot: string;

beforeAll(async () => {
  suite = await startBuildSuite();
  buildahRoot = join(suite.dir, 'buildah');
});

afterAll(async () => {
  await suite?.stop();
});

function settings(name: string): CaseSettings {
  const file = join(CASES_DIR, name, 'case.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as CaseSettings) : {};
}

async function prepareContext(name: string, slot: string): Promise<string> {
  const context = await copyContext(join(CASES_DIR, name), join(suite.dir, 'contexts', slot));
  if (existsSync(join(context, 'prepare.sh'))) await run('bash', ['prepare.sh'], { cwd: context });
  await rm(join(context, 'prepare.sh'), { force: true });
  await rm(join(context, 'case.json'), { force: true });
  return context;
}

async function buildah(args: readonly string[]): Promise<string> {
  const { stdout } = await run('buildah', ['--storage-driver', 'vfs', '--root', join(buildahRoot, 'root'), '--runroot', join(buildahRoot, 'runroot'), ...args], { timeoutMs: 180_000 });
  return stdout;
}

function normalizeConfig(config: ImageConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of CONFIG_FIELDS) {
    const value = (config.config as Record<string, unknown> | undefined)?.[field];
    if (value === undefined || value === null || value === '') continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    out[field] = value;
  }
  return out;
}

describe('differential corpus: Stevedore vs buildah bud', () => {
  for (const name of CASES) {
    const { buildArgs = {}, targets } = settings(name);
    for (const target of targets ?? [undefined]) {
      const label = target === undefined ? name : `${name} (target ${target})`;
      const slot = target === undefined ? name : `${name}-${target}`;
      it(label, async () => {
        const context = await prepareContext(name, slot);
        const args = { BASE: suite.busybox, ...buildArgs };
        const out = join(suite.dir, 'out', slot);
        const reference = `${suite.registry.host}/corpus/${name}:${target ?? 'latest'}`;

        // Stevedore: to a layout (compared) and to the registry (inspected from outside).
        const { result } = await runBuild({
          context,
          buildArgs: args,
          ...(target === undefined ? {} : { target }),
          outputs: [
            { type: 'layout', dir: join(out, 'stevedore'), tag: 'latest' },
            { type: 'registry', reference },
          ],
          cacheDir: suite.cacheDir,
          registry: { insecureRegistries: [suite.registry.host] },
        });
        await validateLayoutImage(join(out, 'stevedore'), 'latest');
        expect((await skopeoInspect(reference)).Digest).toBe(result.digest);

        // buildah, from the same context and base.
        const image = `localhost/corpus-${slot}:latest`;
        await buildah([
          'bud', '--isolation', 'chroot', '--format', 'docker', '--timestamp', '0', '--identity-label=false', '--tls-verify=false', '--quiet',
          ...Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
          ...(target === undefined ? [] : ['--target', target]),
          '-t', image, context,
        ]);
        await buildah(['push', '--quiet', image, `oci:${join(out, 'buildah')}:latest`]);

        const ours = await readTree(await unpackLayout(join(out, 'stevedore'), 'latest', join(out, 'unpacked-stevedore')));
        const theirs = await readTree(await unpackLayout(join(out, 'buildah'), 'latest', join(out, 'unpacked-buildah')));
        const deliberate = DELIBERATE[slot] ?? DELIBERATE[name] ?? {};

        for (const path of BUILDAH_RUN_ARTIFACTS) {
          const entry = theirs.get(path);
          if (entry !== undefined && !ours.has(path) && (entry.type === 'directory' || entry.size === 0)) theirs.delete(path);
        }
        for (const [path, difference] of Object.entries(deliberate.tree ?? {})) {
          expect(ours.get(path), `${path}: ${difference.reason}`).toEqual(difference.expected);
          ours.delete(path);
          theirs.delete(path);
        }
        expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(theirs));

        const ourConfig = normalizeConfig(await layoutConfig(join(out, 'stevedore'), 'latest'));
        // buildah's own view of the config: pushing to an OCI layout drops Docker-only fields
        // (Healthcheck, Shell, OnBuild) that its --format docker image keeps.
        const inspected = JSON.parse(await buildah(['inspect', '--type', 'image', image])) as { Docker: ImageConfig };
        const theirConfig = normalizeConfig(inspected.Docker);
        for (const [field, difference] of Object.entries(deliberate.config ?? {})) {
          expect(ourConfig[field], `${field}: ${difference!.reason}`).toEqual(difference!.expected);
          delete ourConfig[field];
          delete theirConfig[field];
        }
        expect(ourConfig).toEqual(theirConfig);
        await rm(out, { recursive: true, force: true });
      });
    }
  }
});
