import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  DEFAULT_PLATFORM,
  RegistryClientPool,
  loadImage,
  parsePlatform,
  pushSquashedImage,
  squashImage,
  squashedImage,
  type Compression,
  type LoadedImage,
  type ReadOnlyStorage,
} from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { describeEndpoint, mountSource, openEndpoint, parseEndpoint, resolveEndpoint, type Endpoint } from './endpoints.js';
import { parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryOptions, type RegistryFlagValues } from './registry-flags.js';

const USAGE = `Usage: stevedore squash SRC DST [--above-base IMAGE] [OPTIONS]

Squashes an image into one layer: its layers are applied in order (whiteouts and opaque
directories resolved) into one deterministic layer, so the same image always gives the same
digest. With --above-base, the base image's layers are kept as they are and only the layers
added on top of them are squashed. The config (Env, Cmd, Entrypoint, ...) is kept. Writes
blobs, config and manifest (in that order), tags last, and prints the manifest digest.

SRC, DST and IMAGE are each:
  oci:DIR[:NAME]           an OCI image layout directory
  [docker://]REF           a registry reference

Options:
  --above-base IMAGE       keep this base's layers (they must be the first layers of SRC)
  --platform OS/ARCH       the platform to take from an index (default linux/amd64)
  --compression ALG        gzip (default), zstd or none
  --level N                compression level (gzip 1-9, default 6; zstd 1-19, default 3)
  --work-dir DIR           scratch space for the merged tree (default: the OS temp dir)

${REGISTRY_FLAGS_USAGE}
`;

function parseCompression(value: string | undefined): Compression | undefined {
  if (value === undefined) return undefined;
  if (value === 'gzip' || value === 'zstd' || value === 'none') return value;
  throw new UsageError(`--compression must be gzip, zstd or none, not ${JSON.stringify(value)}`);
}

function parseLevel(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--level must be a positive integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export const squashCommand: Command = {
  name: 'squash',
  summary: 'squash an image (or what it adds to a base) into one layer',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('squash', args, {
      ...REGISTRY_FLAG_OPTIONS,
      'above-base': { type: 'string' },
      platform: { type: 'string' },
      compression: { type: 'string' },
      level: { type: 'string' },
      'work-dir': { type: 'string' },
    });
    if (positionals.length !== 2) throw new UsageError('squash takes a source and a destination');
    const source = parseEndpoint(positionals[0]!, io.cwd, 'source');
    const destination = parseEndpoint(positionals[1]!, io.cwd, 'destination');
    if (destination.kind === 'registry' && destination.reference.digest !== undefined) {
      throw new UsageError('the destination names a digest: the digest of the squashed image is not known before it is made');
    }
    const baseArg = values['above-base'] as string | undefined;
    const baseEndpoint = baseArg === undefined ? undefined : parseEndpoint(baseArg, io.cwd, '--above-base');
    const platform = values.platform === undefined ? DEFAULT_PLATFORM : parsePlatform(values.platform as string);
    const compression = parseCompression(values.compression as string | undefined);
    const level = parseLevel(values.level as string | undefined);
    const workParent = values['work-dir'] === undefined ? tmpdir() : resolve(io.cwd, values['work-dir'] as string);
    const signal = io.signal === undefined ? {} : { signal: io.signal };

    const pool = new RegistryClientPool(registryOptions(values as RegistryFlagValues, io));
    const workDir = await mkdtemp(join(workParent, 'stevedore-squash-'));
    // A layout this command creates is removed again if it fails; an existing layout, like a
    // registry, only ever gains complete blobs and, last, a tag.
    const createdLayout = destination.kind === 'layout' && !(await exists(destination.dir));
    try {
      const load = async (endpoint: Endpoint): Promise<{ image: LoadedImage; store: ReadOnlyStorage }> => {
        const store = await openEndpoint(endpoint, pool, false);
        return { image: await loadImage(store, await resolveEndpoint(endpoint, store, signal), { platform, ...signal }), store };
      };
      const src = await load(source);
      const base = baseEndpoint === undefined ? undefined : await load(baseEndpoint);
      const squashed = await squashImage(
        { reference: describeEndpoint(source), image: src.image, store: src.store },
        { base: base?.image, compression, level, workDir, signal: io.signal },
      );
      const image = squashedImage(squashed, src.image, { base: base?.image });
      const target = await openEndpoint(destination, pool, true);
      const mountFrom = baseEndpoint === undefined ? undefined : mountSource(baseEndpoint, destination);
      const manifest = await pushSquashedImage(target, image, squashed, {
        ...signal,
        baseStore: base?.store,
        mountFrom: mountFrom === undefined ? undefined : () => mountFrom,
      });
      const tag = (destination.kind === 'layout' ? destination.tag : destination.reference.tag) ?? 'latest';
      await target.tag(manifest, tag, signal);
      io.stdout.write(`${manifest.digest}\n`);
      return 0;
    } catch (err) {
      if (createdLayout) await rm((destination as Extract<Endpoint, { kind: 'layout' }>).dir, { recursive: true, force: true });
      throw err;
    } finally {
      await rm(workDir, { recursive: true, force: true });
      await pool.close();
    }
  },
};
