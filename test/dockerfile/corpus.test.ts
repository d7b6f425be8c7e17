import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DockerfileError, DockerfileErrorCode, dumpAst, expandShell, parseDockerfile } from '../../src/dockerfile/index.js';

// BuildKit's own corpora (test/fixtures/buildkit, copied verbatim), one generic test each: a new
// case is a new folder or line, never new code.

const root = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/buildkit');
const cases = (dir: string): string[] => readdirSync(join(root, dir)).sort();

describe('BuildKit parser corpus: testfiles/<case> dumps to its result', () => {
  const all = cases('testfiles');
  it('has the 33 cases', () => expect(all).toHaveLength(33));
  for (const name of all) {
    it(name, () => {
      const dockerfile = readFileSync(join(root, 'testfiles', name, 'Dockerfile'));
      const expected = readFileSync(join(root, 'testfiles', name, 'result'), 'utf8');
      expect(dumpAst(parseDockerfile(dockerfile))).toBe(expected);
    });
  }
});

describe('BuildKit parser corpus: testfiles-negative/<case> is rejected', () => {
  // The code and line each case must fail with (BuildKit only asserts that parsing fails).
  const expected: Record<string, { code: string; line: number }> = {
    empty_dockerfile: { code: DockerfileErrorCode.EMPTY, line: 1 },
    env_no_value: { code: DockerfileErrorCode.INVALID_ARGUMENTS, line: 3 },
    only_comments: { code: DockerfileErrorCode.EMPTY, line: 3 },
    'shykes-nested-json': { code: DockerfileErrorCode.JSON, line: 1 },
  };
  it('knows every case', () => expect(cases('testfiles-negative')).toEqual(Object.keys(expected).sort()));
  for (const name of cases('testfiles-negative')) {
    it(name, () => {
      const dockerfile = readFileSync(join(root, 'testfiles-negative', name, 'Dockerfile'));
      let error: unknown;
      try {
        parseDockerfile(dockerfile, { file: `${name}/Dockerfile` });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(DockerfileError);
      const e = error as DockerfileError;
      expect({ code: e.code, line: e.startLine }).toEqual(expected[name]);
      expect(e.file).toBe(`${name}/Dockerfile`);
    });
  }
});

describe('BuildKit parser corpus: testfile-line', () => {
  it('gives the line ranges BuildKit gives', () => {
    const parsed = parseDockerfile(readFileSync(join(root, 'testfile-line', 'Dockerfile')));
    expect([parsed.startLine, parsed.endLine]).toEqual([5, 31]);
    expect(parsed.instructions.map((n) => [n.startLine, n.endLine])).toEqual([
      [5, 5],
      [11, 12],
      [17, 31],
    ]);
    // Lines 19-20 and 24, 27 are empty continuation lines: one warning for the RUN.
    expect(parsed.warnings.map((w) => w.rule)).toEqual(['NoEmptyContinuation']);
  });
});

/** The Linux rows (A = all, U = non-Windows) of `envVarTest`: `PLATFORM|INPUT|EXPECTED`. */
function envVarRows(): { line: number; input: string; expected: string }[] {
  const rows: { line: number; input: string; expected: string }[] = [];
  readFileSync(join(root, 'envVarTest'), 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      if (raw.startsWith('#') || raw.trim() === '') return;
      const fields = raw.trim().split('|');
      expect(fields, `envVarTest line ${i + 1}`).toHaveLength(3);
      const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string];
      if (platform === 'A' || platform === 'U') rows.push({ line: i + 1, input, expected });
    });
  return rows;
}

describe('BuildKit shell corpus: envVarTest (Linux rows)', () => {
  const env = { PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' };
  const rows = envVarRows();
  it('has its rows', () => expect(rows.length).toBeGreaterThan(200));
  for (const row of rows) {
    it(`line ${row.line}: ${row.input}`, () => {
      if (row.expected === 'error') {
        expect(() => expandShell(row.input, env)).toThrow(DockerfileError);
      } else {
        expect(expandShell(row.input, env).value).toBe(row.expected);
      }
    });
  }
});

describe('BuildKit shell corpus: wordsTest', () => {
  const rows: { line: number; input: string; expected: string[]; env: Record<string, string> }[] = [];
  const env: Record<string, string> = {};
  readFileSync(join(root, 'wordsTest'), 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.startsWith('#') || line === '') return;
      if (line.startsWith('ENV ')) {
        const kv = line.slice(3).replace(/^ +/, '');
        const eq = kv.indexOf('=');
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
        return;
      }
      const parts = line.split('|');
      expect(parts, `wordsTest line ${i + 1}`).toHaveLength(2);
      rows.push({ line: i + 1, input: parts[0]!.trim(), expected: parts[1]!.replace(/^ +/, '').split(','), env: { ...env } });
    });
  it('has its rows', () => expect(rows.length).toBeGreaterThan(20));
  for (const row of rows) {
    it(`line ${row.line}: ${row.input}`, () => {
      let words: readonly string[];
      try {
        words = expandShell(row.input, row.env).words;
      } catch (err) {
        expect(err).toBeInstanceOf(DockerfileError);
        words = ['error'];
      }
      expect(words).toEqual(row.expected);
    });
  }
});
