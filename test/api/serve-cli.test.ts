// `stevedore serve`: starts from a configuration file, answers, stops on SIGTERM with exit 0; a
// bad configuration stops it at once with exit 2 and the key's path.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stevedore } from '../cli/helpers.js';
import { tempDir } from '../harness/index.js';
import { connect, unary } from './helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ENTRY = join(root, 'src/cli/main.ts');

let scratch: Awaited<ReturnType<typeof tempDir>>;
beforeEach(async () => {
  scratch = await tempDir('stevedore-serve-');
});
afterEach(async () => {
  await scratch?.remove();
});

function config(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    orchestrator: {
      baseImageRepository: '127.0.0.1:5000/base-images',
      workspaceImageRepository: '127.0.0.1:5000/workspace-images',
      // An mk3 key Stevedore ignores, with a warning.
      builderImage: 'eu.gcr.io/gitpod-core-dev/build/image-builder-bob:latest',
    },
    server: { services: { grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' } } },
    stevedore: { workDir: join(scratch.path, 'work'), cacheDir: join(scratch.path, 'cache'), shutdownGrace: '5s' },
    ...overrides,
  };
}

/** Resolves with the first match of `pattern` in the child's stderr (rejects on exit or after 30 s). */
function waitFor(child: ChildProcess, output: { text: string }, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = pattern.exec(output.text);
      if (match === null) return;
      cleanup();
      resolve(match);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`stevedore serve exited (${code}) before printing ${pattern}:\n${output.text}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${pattern} after 30 s:\n${output.text}`));
    }, 30_000);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
    };
    child.stderr!.on('data', check);
    child.once('exit', onExit);
    check();
  });
}

describe('stevedore serve', () => {
  it('serves until SIGTERM, then stops gracefully with exit 0', async () => {
    const file = join(scratch.path, 'config.json');
    await writeFile(file, JSON.stringify(config()));
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', '--config', file], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    const output = { text: '' };
    child.stderr!.on('data', (chunk: Buffer) => (output.text += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const grpc = (await waitFor(child, output, /gRPC on (\S+)\n/))[1]!;
      const http = (await waitFor(child, output, /HTTP on (\S+)\n/))[1]!;
      expect(output.text).toMatch(/warning: orchestrator\.builderImage/);

      expect((await fetch(`${http}/ready`)).status).toBe(200);
      const clients = connect(grpc);
      try {
        expect(await unary(clients.health, clients.health.Check, { service: 'builder.ImageBuilder' })).toEqual({ status: 'SERVING' });
        expect((await unary(clients.imageBuilder, clients.imageBuilder.ListBuilds, {})).builds).toEqual([]);
      } finally {
        clients.close();
      }

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output.text).toContain('stevedore serve: stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('exits 2 naming the key of a bad configuration', async () => {
    const file = join(scratch.path, 'bad.json');
    const bad = config();
    await writeFile(file, JSON.stringify({ ...bad, server: { services: { grpc: { address: 'nowhere' } } }, stevedore: { concurency: 4 } }));
    const result = await stevedore(['serve', '--config', file], { cwd: scratch.path });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('server.services.grpc.address');
    expect(result.stderr).toContain('concurency');

    const missing = await stevedore(['serve', '--config', 'no-such-file.json'], { cwd: scratch.path });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('no-such-file.json');
    expect((await stevedore(['serve'], { cwd: scratch.path })).code).toBe(2);

    const tls = join(scratch.path, 'tls.json');
    await writeFile(tls, JSON.stringify(config({ server: { services: { grpc: { address: '127.0.0.1:0', tls: { certPath: 'missing.crt', keyPath: 'missing.key' } } } } })));
    const unreadable = await stevedore(['serve', '--config', tls], { cwd: scratch.path });
    expect(unreadable.code).toBe(2);
    expect(unreadable.stderr).toContain('server.services.grpc.tls.certPath: cannot read missing.crt');
    expect(unreadable.stderr).toContain('server.services.grpc.tls.keyPath: cannot read missing.key');
  });

  it('fails with LISTEN_FAILED when its address is taken', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    try {
      const port = (taken.address() as AddressInfo).port;
      const file = join(scratch.path, 'taken.json');
      await writeFile(file, JSON.stringify(config({ server: { services: { grpc: { address: '127.0.0.1:0' }, http: { address: `127.0.0.1:${port}` } } } })));
      const result = await stevedore(['serve', '--config', file], { cwd: scratch.path });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain(`cannot listen for HTTP on 127.0.0.1:${port}: EADDRINUSE [LISTEN_FAILED]`);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });
});
