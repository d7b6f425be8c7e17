import { resolve } from 'node:path';
import { startServer } from '../../api/index.js';
import { loadServiceConfig, ServiceConfigError } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { parseCommandLine } from './registry-flags.js';

const USAGE = `Usage: stevedore serve --config FILE

Runs the image builder service: Gitpod's builder.ImageBuilder and builder.SubassemblyService
over gRPC (with health and reflection), and an HTTP listener for /metrics, /ready, /live,
build logs and subassembly downloads. The configuration is JSON in image-builder-mk3's shape
(orchestrator, refCache, server) plus Stevedore's own "stevedore" section.

  --config FILE            the configuration file

SIGTERM or SIGINT stops it gracefully: no new calls, running builds get
stevedore.shutdownGraceMs to finish, then they are cancelled and cleaned up.
`;

function aborted(signal: AbortSignal | undefined): Promise<void> {
  // Without a signal (embedded use) the server runs until the process ends.
  if (signal === undefined) return new Promise(() => undefined);
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** A bad configuration is bad input, like a bad flag: exit 2, with the key's path. */
async function asUsage<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof ServiceConfigError) throw new UsageError(err.message);
    throw err;
  }
}

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the image builder gRPC service (Gitpod image-builder-mk3 compatible)',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('serve', args, { config: { type: 'string', short: 'c' } });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    const configFlag = values.config as string | undefined;
    if (configFlag === undefined || configFlag === '') throw new UsageError('a configuration file is required (--config FILE)');

    const loaded = await asUsage(loadServiceConfig(resolve(io.cwd, configFlag)));
    for (const warning of loaded.warnings) io.stderr.write(`stevedore serve: warning: ${warning}\n`);

    // Starting reads the files the configuration names (TLS): those problems are the config's too.
    const server = await asUsage(startServer(loaded.config));
    io.stderr.write(`stevedore serve: gRPC on ${server.grpcAddress}\n`);
    io.stderr.write(`stevedore serve: HTTP on ${server.httpUrl}\n`);

    await aborted(io.signal);
    const grace = loaded.config.stevedore.shutdownGraceMs;
    io.stderr.write(`stevedore serve: shutting down (running builds get ${grace / 1000}s)\n`);
    await server.close(grace);
    io.stderr.write('stevedore serve: stopped\n');
    return 0;
  },
};
