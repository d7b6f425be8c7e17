import { resolve as resolvePath } from 'node:path';
import { BUILD_DEFAULTS, defaultCacheDir, pruneCache } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { formatBytes } from '../display.js';
import { parseCommandLine } from './registry-flags.js';
import { parseDuration, parseSize } from './quantities.js';

const USAGE = `Usage: stevedore prune [--cache-dir DIR] [--max-size BYTES] [--unused-for DURATION] [--all]

Prunes the build cache as every build does when it ends, with these bounds: step entries and
their layers down to --max-size (least recently used first), unpacked layers and RUN cache
mounts that no build used for --unused-for. A build running meanwhile keeps what it uses.

  --cache-dir DIR          the cache directory (default ~/.cache/stevedore)
  --max-size BYTES         bound of the step entries and layers (suffixes K, M, G; default 10G)
  --unused-for DURATION    age of unpacked layers and cache mounts to remove (s, m, h, d; default 7d)
  --all                    remove everything (--max-size 0 --unused-for 0)
`;

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'prune the build cache (step entries, layers, unpacked layers, RUN cache mounts)',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('prune', args, {
      'cache-dir': { type: 'string' },
      'max-size': { type: 'string' },
      'unused-for': { type: 'string' },
      all: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError('prune takes no arguments');
    const all = values.all === true;
    if (all && (values['max-size'] !== undefined || values['unused-for'] !== undefined)) throw new UsageError('--all cannot be combined with --max-size or --unused-for');
    const cacheDir = values['cache-dir'] === undefined ? defaultCacheDir(io.env) : resolvePath(io.cwd, values['cache-dir'] as string);
    const maxBytes = all ? 0 : values['max-size'] === undefined ? BUILD_DEFAULTS.cacheMaxBytes : parseSize(values['max-size'] as string, '--max-size');
    const unusedMaxAgeSeconds = all ? 0 : values['unused-for'] === undefined ? BUILD_DEFAULTS.unusedMaxAgeSeconds : parseDuration(values['unused-for'] as string, '--unused-for');
    const result = await pruneCache({ cacheDir, cacheMaxBytes: maxBytes, unusedMaxAgeSeconds });
    const steps = result.steps;
    io.stdout.write(
      steps === undefined
        ? `${cacheDir}: step entries left alone (another process is pruning them)\n`
        : `${cacheDir}: removed ${steps.removedEntries} step entries and ${steps.removedBlobs} layers (${formatBytes(steps.freedBytes)}), ${formatBytes(steps.keptBytes)} kept\n`,
    );
    io.stdout.write(`${cacheDir}: removed ${result.unpacked} unpacked layers and ${result.cacheMounts} RUN cache mounts\n`);
    return 0;
  },
};
