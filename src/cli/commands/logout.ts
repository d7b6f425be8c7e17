import { eraseDockerCredential } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { authFile, parseCommandLine, registryHostArgument } from './registry-flags.js';

const USAGE = `Usage: stevedore logout [HOST] [--authfile FILE]

Removes the credentials for HOST (default: Docker Hub) from Docker's config.json and from
the configured credential helper. Other entries of the file are kept.

  --authfile FILE          the Docker config.json to edit (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)
`;

export const logoutCommand: Command = {
  name: 'logout',
  summary: 'log out of a registry (removes stored credentials)',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('logout', args, { authfile: { type: 'string' } });
    if (positionals.length > 1) throw new UsageError('logout takes at most one registry');
    const registry = registryHostArgument(positionals[0]);
    const path = authFile(values as { authfile?: string }, io);
    const removed = await eraseDockerCredential(registry, { env: io.env, ...(path === undefined ? {} : { path }) });
    io.stdout.write(removed ? `Removing login credentials for ${registry}\n` : `Not logged in to ${registry}\n`);
    return 0;
  },
};
