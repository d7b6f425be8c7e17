import { rm, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_PLATFORM,
  OciLayout,
  appendLayers,
  directorySource,
  loadImage,
  loadImageByReference,
  parseLayoutReference,
  parsePlatform,
  type Compression,
  type LoadedImage,
  type ReadOnlyStorage,
} from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';

const USAGE = `Usage: stevedore append --base scratch|oci:DIR[:TAG] --layer DIR [--layer DIR ...] [OPTIONS]

Builds an image from a base plus one layer per directory and writes it to an OCI layout.
Prints the manifest digest.

Options:
  --base REF            scratch, or an OCI layout oci:DIR[:TAG]
  --layer DIR           a directory to add as a layer (repeatable, lowest first)
  --output oci:DIR[:TAG]  where to write the image (default oci:./stevedore-out:latest)
  --compression ALG     gzip (default), zstd or none
  --level N             compression level (gzip 1-9, default 6; zstd 1-19, default 3)
  --platform OS/ARCH    the platform of a scratch image (default linux/amd64)
  --source-date-epoch N the time of the config, history and layer entries (default $SOURCE_DATE_EPOCH or 0)
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

function layoutArgument(flag: string, value: string): { dir: string; tag: string | undefined } {
  if (!value.startsWith('oci:')) throw new UsageError(`${flag} must be oci:DIR[:TAG], not ${JSON.stringify(value)}`);
  const ref = parseLayoutReference(value);
  return { dir: ref.dir, tag: ref.tag };
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
    let parsed;
    try {
      parsed = parseArgs({
        args,
        options: {
          base: { type: 'string' },
          layer: { type: 'string', multiple: true },
          output: { type: 'string' },
          compression: { type: 'string' },
          level: { type: 'string' },
          platform: { type: 'string' },
          'source-date-epoch': { type: 'string' },
        },
        allowPositionals: false,
        strict: true,
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const { values } = parsed;
    if (values.base === undefined) throw new UsageError('--base is required (scratch or oci:DIR[:TAG])');
    const layerDirs = (values.layer ?? []).map((dir) => resolve(io.cwd, dir));
    if (layerDirs.length === 0) throw new UsageError('at least one --layer DIR is required');
    for (const dir of layerDirs) {
      const info = await stat(dir).catch(() => undefined);
      if (!info?.isDirectory()) throw new UsageError(`--layer ${dir}: not a directory`);
    }
    const compression = parseCompression(values.compression);
    const level = parseInteger('--level', values.level);
    const epoch = parseInteger('--source-date-epoch', values['source-date-epoch'] ?? io.env.SOURCE_DATE_EPOCH);
    const platform = values.platform === undefined ? DEFAULT_PLATFORM : parsePlatform(values.platform);
    const output = layoutArgument('--output', values.output ?? 'oci:stevedore-out:latest');
    const outputDir = resolve(io.cwd, output.dir);
    const tag = output.tag ?? 'latest';

    let base: { image: LoadedImage; store: ReadOnlyStorage } | undefined;
    if (values.base !== 'scratch') {
      const ref = layoutArgument('--base', values.base);
      const store = await OciLayout.open(resolve(io.cwd, ref.dir));
      const image = ref.tag === undefined
        ? await loadImage(store, await store.resolveOnly(), { platform })
        : await loadImageByReference(store, ref.tag, { platform });
      base = { image, store };
    }

    // A layout this command creates is removed again if the command fails: no half-written
    // layout is left behind. An existing layout only ever gains complete blobs and, last, a tag.
    const created = !(await exists(outputDir));
    try {
      const target = await OciLayout.open(outputDir, { create: true });
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
      });
      await target.tag(result.manifest, tag);
      io.stdout.write(`${result.manifest.digest}\n`);
      return 0;
    } catch (err) {
      if (created) await rm(outputDir, { recursive: true, force: true });
      throw err;
    }
  },
};
