import { rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  DEFAULT_PLATFORM,
  RegistryClientPool,
  appendLayers,
  directorySource,
  loadImage,
  parsePlatform,
  type Compression,
  type LoadedImage,
  type ReadOnlyStorage,
} from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { mountSource, openEndpoint, parseEndpoint, resolveEndpoint, type Endpoint } from './endpoints.js';
import { parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryOptions, type RegistryFlagValues } from './registry-flags.js';

const USAGE = `Usage: stevedore append --base scratch|IMAGE --layer DIR [--layer DIR ...] [OPTIONS]

Builds an image from a base plus one layer per directory, writes blobs, config and manifest
(in that order) to an OCI layout or a registry, and tags it last. Prints the manifest digest.
IMAGE is oci:DIR[:TAG] (an OCI layout) or a registry reference ([docker://]REF).

Options:
  --base IMAGE          scratch, an OCI layout oci:DIR[:TAG], or a registry reference
  --layer DIR           a directory to add as a layer (repeatable, lowest first)
  --output IMAGE        where to write the image (default oci:./stevedore-out:latest)
  --compression ALG     gzip (default), zstd or none
  --level N             compression level (gzip 1-9, default 6; zstd 1-19, default 3)
  --platform OS/ARCH    the platform of a scratch image, or the one to take from a base index
                        (default linux/amd64)
  --source-date-epoch N the time of the config, history and layer entries (default $SOURCE_DATE_EPOCH or 0)

${REGISTRY_FLAGS_USAGE}
`;

function parseCompression(value: string | undefined): Compression | undefined {
  if (value === undefined) return undefined;
  if (value === 'gzip' || value === 'zstd' || value === 'none') return value;
  throw new UsageError(`--compression must be gzip, zstd or none, not ${JSON.stringify(value)}`);
}

function parseInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${name} must be a non-negative integer, not ${JSON.stringify(value)}`);
  return Number(value);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export const appendCommand: Command = {
  name: 'append',
  summary: 'build an image from a base and directories, one layer each',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('append', args, {
      ...REGISTRY_FLAG_OPTIONS,
      base: { type: 'string' },
      layer: { type: 'string', multiple: true },
      output: { type: 'string' },
      compression: { type: 'string' },
      level: { type: 'string' },
      platform: { type: 'string' },
      'source-date-epoch': { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const baseArg = values.base as string | undefined;
    if (baseArg === undefined) throw new UsageError('--base is required (scratch, oci:DIR[:TAG] or a registry reference)');
    const layerDirs = ((values.layer as string[] | undefined) ?? []).map((dir) => resolve(io.cwd, dir));
    if (layerDirs.length === 0) throw new UsageError('at least one --layer DIR is required');
    for (const dir of layerDirs) {
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory()) throw new UsageError(`--layer ${dir}: not a directory`);
    }
    const compression = parseCompression(values.compression as string | undefined);
    const level = parseInteger('--level', values.level as string | undefined);
    const epoch = parseInteger('--source-date-epoch', (values['source-date-epoch'] as string | undefined) ?? io.env.SOURCE_DATE_EPOCH);
    const platform = values.platform === undefined ? DEFAULT_PLATFORM : parsePlatform(values.platform as string);
    const baseEndpoint = baseArg === 'scratch' ? undefined : parseEndpoint(baseArg, io.cwd, '--base');
    const output = parseEndpoint((values.output as string | undefined) ?? 'oci:stevedore-out:latest', io.cwd, '--output');
    if (output.kind === 'registry' && output.reference.digest !== undefined) throw new UsageError('--output names a digest: the digest of a new image is not known before it is built');
    const tag = (output.kind === 'layout' ? output.tag : output.reference.tag) ?? 'latest';
    const signal = io.signal === undefined ? {} : { signal: io.signal };

    const pool = new RegistryClientPool(registryOptions(values as RegistryFlagValues, io));
    // A layout this command creates is removed again if the command fails: no half-written
    // layout is left behind. An existing layout, like a registry, only ever gains complete blobs
    // and, last, a tag.
    const createdLayout = output.kind === 'layout' && !(await exists(output.dir));
    try {
      let base: { image: LoadedImage; store: ReadOnlyStorage } | undefined;
      if (baseEndpoint !== undefined) {
        const store = await openEndpoint(baseEndpoint, pool, false);
        base = { image: await loadImage(store, await resolveEndpoint(baseEndpoint, store, signal), { platform, ...signal }), store };
      }
      const target = await openEndpoint(output, pool, true);
      const mountFrom = mountSource(baseEndpoint, output);
      const result = await appendLayers({
        base,
        layers: layerDirs.map((dir) => ({
          source: directorySource(dir, { sourceDateEpoch: epoch, signal: io.signal }),
          createdBy: `stevedore append --layer ${dir}`,
        })),
        target,
        platform,
        compression,
        level,
        sourceDateEpoch: epoch,
        signal: io.signal,
        mountFrom: mountFrom === undefined ? undefined : () => mountFrom,
      });
      await target.tag(result.manifest, tag, signal);
      io.stdout.write(`${result.manifest.digest}\n`);
      return 0;
    } catch (err) {
      if (createdLayout) await rm((output as Extract<Endpoint, { kind: 'layout' }>).dir, { recursive: true, force: true });
      throw err;
    } finally {
      await pool.close();
    }
  },
};
