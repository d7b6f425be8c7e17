import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const fixture = resolve(here, 'fixtures/compress-and-exit.ts');

// Regression: a worker was unref'd before its 'message' listener was added, which refs the
// worker's port again, so a process that compressed less than one block never exited.
describe('the shared deflate pool', () => {
  for (const size of [100, 3 * 1024 * 1024]) {
    it(`lets a process exit by itself after compressing ${size} bytes`, () => {
      const child = spawnSync(process.execPath, ['--import', 'tsx', fixture, String(size)], { cwd: root, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
      expect(child.stderr).toBe('');
      expect(child.stdout.trim()).toBe('compressed');
      expect(child.signal).toBeNull();
      expect(child.status).toBe(0);
    });
  }
});
