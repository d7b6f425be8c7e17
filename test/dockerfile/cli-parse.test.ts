import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/command.js';
import { parseCommand } from '../../src/cli/commands/parse.js';
import { runCommand, type CliRun } from '../cli/helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'stevedore-parse-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], stdin = ''): Promise<CliRun> {
  return runCommand(parseCommand, args, { cwd: dir, stdin });
}

describe('stevedore parse', () => {
  writeFileSync(join(dir, 'Dockerfile'), 'FROM alpine AS base\nRUN echo \\\n\n  hi\nCOPY --from=base ["a b", "/c"]\n');

  it('prints BuildKit’s dump of ./Dockerfile by default, warnings to stderr', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('(from "alpine" "AS" "base")\n(run "echo   hi")\n(copy ["--from=base"] "a b" "/c")\n');
    expect(r.stderr).toBe('warning: Dockerfile:4: Empty continuation line found in: RUN echo   hi [NoEmptyContinuation]\n');
  });

  it('prints JSON with lines and JSON-form flags', async () => {
    const r = await run(['Dockerfile', '--format', 'json']);
    const parsed = JSON.parse(r.stdout) as { instructions: { name: string; startLine: number; endLine: number; json: boolean }[] };
    expect(parsed.instructions.map((n) => [n.name, n.startLine, n.endLine, n.json])).toEqual([
      ['from', 1, 1],
      ['run', 2, 4],
      ['copy', 5, 5],
    ].map(([n, s, e]) => [n, s, e, n === 'copy']));
  });

  it('reads standard input with -', async () => {
    expect((await run(['-', '--format=dump'], 'cmd ["x"]\n')).stdout).toBe('(cmd "x")\n');
  });

  it('fails with the DockerfileError for a bad file, and reports a missing one', async () => {
    writeFileSync(join(dir, 'bad'), 'FROM a\nCMD ["a", 1]\n');
    await expect(run(['bad'])).rejects.toMatchObject({ code: 'DOCKERFILE_JSON', startLine: 2, file: 'bad' });
    const missing = await run(['nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read nope');
  });

  it('rejects bad usage', async () => {
    await expect(run(['--format', 'xml'])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['a', 'b'])).rejects.toBeInstanceOf(UsageError);
    await expect(run(['--bogus'])).rejects.toBeInstanceOf(UsageError);
  });
});
