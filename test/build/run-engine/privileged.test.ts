import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CAPABILITIES, hostCapabilities, NamespaceExecutor, OverlaySnapshotter, RuncExecutor, type RunExecutor, type Snapshotter } from '../../../src/build/run/index.js';
import { busyboxRoot, removeDir, runOnce, tempDir } from '../run/fixtures.js';

/**
 * `RunSpec.privileged` (what `RUN --security=insecure` needs): the executors give the command
 * every capability this process holds and a writable /sys; without it, Docker's default set
 * and a read-only /sys.
 */

let base: string;
let layer: string;
let snapshotter: Snapshotter;

beforeAll(() => {
  base = tempDir('privileged');
  layer = join(base, 'layer');
  busyboxRoot(layer);
  mkdirSync(join(base, 'snap'));
  snapshotter = new OverlaySnapshotter({ workDir: join(base, 'snap') });
});

afterAll(() => removeDir(base));

/** The capability bits of a mask, as names (the same table `hostCapabilities` uses). */
function names(mask: string): string[] {
  return hostCapabilities(`CapEff:\t${mask}\n`);
}

const PROBE = ['sh', '-c', "grep CapEff /proc/self/status | tr -d '\\t' | cut -d: -f2; grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1"];

describe('hostCapabilities', () => {
  it('reads the names of the effective capability bits', () => {
    expect(names('0000000000000001')).toEqual(['CAP_CHOWN']);
    // Docker's default set is this mask.
    expect(new Set(names('00000000a80425fb'))).toEqual(new Set(DEFAULT_CAPABILITIES));
    expect(hostCapabilities('no such line')).toEqual([]);
  });
});

describe.each([
  ['namespace', () => new NamespaceExecutor()],
  ['runc', () => new RuncExecutor()],
] as const)('%s executor', (_name, make: () => RunExecutor) => {
  it('gives a privileged command every capability of this process and a writable /sys, and the default set otherwise', async () => {
    const executor = make();
    const sandboxed = await runOnce(executor, snapshotter, [layer], { args: PROBE });
    expect(sandboxed.exitCode, sandboxed.stderr.join('\n')).toBe(0);
    expect(new Set(names(sandboxed.stdout[0]!))).toEqual(new Set(DEFAULT_CAPABILITIES));
    expect(sandboxed.stdout[1]).toBe('ro');

    const privileged = await runOnce(executor, snapshotter, [layer], { args: PROBE, privileged: true });
    expect(privileged.exitCode, privileged.stderr.join('\n')).toBe(0);
    const own = hostCapabilities(readFileSync('/proc/self/status', 'utf8'));
    expect(new Set(names(privileged.stdout[0]!))).toEqual(new Set(own));
    expect(privileged.stdout[1]).toBe('rw');
  });
});
