import { formatPlatform, formatReference, parsePlatform, parseReference } from '../../index.js';
import { RegistryClientPool, resolveReference } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryOptions, type RegistryFlagValues } from './registry-flags.js';

const USAGE = `Usage: stevedore resolve REF [--platform os/arch[/variant]] [--json]

Resolves an image reference against its registry and prints it pinned by digest
(name@sha256:...). For a multi-platform index, the digest is the image manifest for the
platform (default linux/amd64), not the index.

  REF                      an image reference: alpine, ghcr.io/org/app:1.2, host:5000/x@sha256:...
  --platform P             the platform to pick from an index (os/arch[/variant]); default linux/amd64
  --gitpod                 pick like Gitpod's image builder: the first linux-amd64 entry, variants ignored
  --json                   print the selected descriptor (and the index's) as JSON instead

${REGISTRY_FLAGS_USAGE}
`;

export const resolveCommand: Command = {
  name: 'resolve',
  summary: 'resolve an image reference to name@digest',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('resolve', args, {
      ...REGISTRY_FLAG_OPTIONS,
      platform: { type: 'string' },
      gitpod: { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new UsageError('resolve takes exactly one image reference');
    const reference = parseReference(positionals[0]!.replace(/^docker:\/\//, ''));
    const platformFlag = values.platform as string | undefined;
    if (platformFlag !== undefined && values.gitpod === true) throw new UsageError('--platform and --gitpod exclude each other');
    const platform = platformFlag === undefined ? undefined : parsePlatform(platformFlag);
    const pool = new RegistryClientPool(registryOptions(values as RegistryFlagValues, io));
    try {
      const resolved = await resolveReference(reference, {
        registries: pool,
        ...(platform === undefined ? {} : { platform }),
        ...(values.gitpod === true ? { selection: 'gitpod' as const } : {}),
        ...(io.signal === undefined ? {} : { signal: io.signal }),
      });
      if (values.json === true) {
        const out = {
          reference: formatReference(resolved.pinned),
          descriptor: resolved.descriptor,
          ...(resolved.descriptor.platform === undefined ? {} : { platform: formatPlatform(resolved.descriptor.platform) }),
          ...(resolved.index === undefined ? {} : { index: resolved.index.descriptor }),
        };
        io.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      } else {
        io.stdout.write(`${formatReference(resolved.pinned)}\n`);
      }
      return 0;
    } finally {
      await pool.close();
    }
  },
};
