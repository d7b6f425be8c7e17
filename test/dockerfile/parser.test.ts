import { describe, expect, it } from 'vitest';
import { DockerfileErrorCode, dumpAst, parseDockerfile } from '../../src/dockerfile/index.js';
import { expectDockerfileError } from './helpers.js';

const dump = (text: string): string => dumpAst(parseDockerfile(text));

describe('parser directives', () => {
  it('reads syntax, escape and check before anything else', () => {
    const parsed = parseDockerfile('# syntax=docker/dockerfile:1.7\n# escape=`\n#check=skip=JSONArgsRecommended\nFROM a\n');
    expect(parsed.directives.map((d) => [d.name, d.value, d.line])).toEqual([
      ['syntax', 'docker/dockerfile:1.7', 1],
      ['escape', '`', 2],
      ['check', 'skip=JSONArgsRecommended', 3],
    ]);
    expect(parsed.escapeToken).toBe('`');
  });

  it('stops looking for directives after an empty line, a comment or an instruction', () => {
    expect(parseDockerfile('\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
    expect(parseDockerfile('# hello\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
    expect(parseDockerfile('FROM a\n# escape=`\n').directives).toEqual([]);
    // An unknown directive ends the search too.
    expect(parseDockerfile('# foo=bar\n# escape=`\nFROM a\n').escapeToken).toBe('\\');
  });

  it('rejects a repeated directive and a bad escape token, at their line', () => {
    expectDockerfileError(() => parseDockerfile('# escape=`\n# escape=\\\nFROM a'), DockerfileErrorCode.DIRECTIVE, 2);
    expectDockerfileError(() => parseDockerfile('# syntax=a\n# SYNTAX=b\nFROM a'), DockerfileErrorCode.DIRECTIVE, 2);
    expectDockerfileError(() => parseDockerfile('# escape=x\nFROM a'), DockerfileErrorCode.DIRECTIVE, 1);
  });

  it('uses the backtick for continuation and escapes when asked', () => {
    expect(dump('# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo hi\n')).toBe('(from "a")\n(run "dir c:\\\\   && echo hi")\n');
  });
});

describe('lines', () => {
  it('accepts CRLF line endings and a UTF-8 BOM', () => {
    const text = '\ufeffFROM a\r\nRUN echo \\\r\n  hi\r\nLABEL x=y\r\n';
    expect(dump(text)).toBe('(from "a")\n(run "echo   hi")\n(label "x" "y" "=")\n');
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('FROM a\n')]);
    expect(dumpAst(parseDockerfile(bytes))).toBe('(from "a")\n');
  });

  it('drops comments inside a continued instruction and warns on empty continuation lines', () => {
    const parsed = parseDockerfile('FROM a\nRUN a \\\n# comment\n\n  b\n');
    expect(dumpAst(parsed)).toBe('(from "a")\n(run "a   b")\n');
    expect(parsed.instructions[1]).toMatchObject({ startLine: 2, endLine: 5 });
    expect(parsed.warnings).toEqual([expect.objectContaining({ rule: 'NoEmptyContinuation', startLine: 5 })]);
  });

  it('keeps a trailing continuation at end of file', () => {
    expect(dump('FROM a\nRUN x \\')).toBe('(from "a")\n(run "x")\n');
  });

  it('does not continue after an escaped escape', () => {
    expect(dump('FROM a\nENV A b\\\\\nENV C d\n')).toBe('(from "a")\n(env "A" "b\\\\\\\\" "")\n(env "C" "d" "")\n');
  });

  it('takes instruction names in any case and keeps the keyword as written', () => {
    const parsed = parseDockerfile('from a\nRuN x\n');
    expect(parsed.instructions.map((n) => [n.keyword, n.name])).toEqual([
      ['from', 'from'],
      ['RuN', 'run'],
    ]);
  });
});

describe('JSON forms', () => {
  it('parses string arrays and marks them', () => {
    const parsed = parseDockerfile('CMD ["a", "b c"]\nCMD a b\n');
    expect(parsed.instructions.map((n) => [n.json, n.args])).toEqual([
      [true, ['a', 'b c']],
      [false, ['a b']],
    ]);
  });

  it('falls back to the shell form on invalid JSON, as BuildKit does', () => {
    expect(dump("CMD ['a']\n")).toBe('(cmd "[\'a\']")\n');
    expect(dump('CMD ["a",]\n')).toBe('(cmd "[\\"a\\",]")\n');
    expect(dump('CMD ["a"] trailing\n')).toBe('(cmd "[\\"a\\"] trailing")\n');
    expect(dump('COPY [a b\n')).toBe('(copy "[a" "b")\n');
    // Go's decoder cannot hold 1e400 in a float64; BuildKit falls back rather than failing.
    expect(dump('CMD [1e400]\n')).toBe('(cmd "[1e400]")\n');
  });

  it('rejects arrays of anything but strings', () => {
    expectDockerfileError(() => parseDockerfile('FROM a\nRUN ["a", 1]\n'), DockerfileErrorCode.JSON, 2);
    expectDockerfileError(() => parseDockerfile('FROM a\nVOLUME [null]\n'), DockerfileErrorCode.JSON, 2);
  });

  it('survives deeply nested brackets', () => {
    expect(dump(`CMD ${'['.repeat(100000)}\n`)).toContain('(cmd "[[[');
  });
});

describe('flags', () => {
  it('extracts leading --flags with quotes, escapes and the -- terminator', () => {
    const parsed = parseDockerfile('COPY --from="a b" --chown=1:1 -- --not-a-flag /x\nRUN --mount=type=secret,id=x\\,y cat\n');
    expect(parsed.instructions[0]!.flags).toEqual(['--from=a b', '--chown=1:1']);
    expect(parsed.instructions[0]!.args).toEqual(['--not-a-flag', '/x']);
    expect(parsed.instructions[1]!.flags).toEqual(['--mount=type=secret,id=x,y']);
  });
});

describe('heredocs', () => {
  it('reads heredoc bodies for RUN, COPY and ADD and advances the line count', () => {
    const parsed = parseDockerfile('FROM a\nRUN <<EOF\necho hi\nEOF\nCOPY <<one <<"two" /dest/\n1\none\n$x\ntwo\nUSER me\n');
    const [, run, copy, user] = parsed.instructions;
    expect(run).toMatchObject({ startLine: 2, endLine: 4, heredocs: [{ name: 'EOF', content: 'echo hi\n', expand: true, chomp: false }] });
    expect(copy!.heredocs.map((h) => [h.name, h.content, h.expand])).toEqual([
      ['one', '1\n', true],
      ['two', '$x\n', false],
    ]);
    expect(copy).toMatchObject({ startLine: 5, endLine: 9 });
    expect(user).toMatchObject({ startLine: 10, endLine: 10 });
  });

  it('strips leading tabs from the terminator with <<-', () => {
    const parsed = parseDockerfile('FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n');
    expect(parsed.instructions[1]!.heredocs[0]).toMatchObject({ name: 'EOF', chomp: true, content: '\techo hi\n' });
  });

  it('keeps CRLF inside a heredoc body but matches the terminator without it', () => {
    const parsed = parseDockerfile('FROM a\r\nRUN <<EOF\r\necho hi\r\nEOF\r\n');
    expect(parsed.instructions[1]!.heredocs[0]!.content).toBe('echo hi\r\n');
  });

  it('has no heredocs in JSON form, nor for other instructions', () => {
    const parsed = parseDockerfile('FROM a\nRUN ["cat", "<<EOF"]\nLABEL a=<<EOF\n');
    expect(parsed.instructions.map((n) => n.heredocs.length)).toEqual([0, 0, 0]);
  });

  it('attaches heredocs to an ONBUILD trigger', () => {
    const parsed = parseDockerfile('FROM a\nONBUILD RUN <<EOF\nx\nEOF\n');
    expect(dumpAst(parsed)).toBe('(from "a")\n(onbuild (run "<<EOF"))\n');
    expect(parsed.instructions[1]!.heredocs[0]!.content).toBe('x\n');
  });

  it('fails on an unterminated heredoc with its range', () => {
    const e = expectDockerfileError(() => parseDockerfile('FROM a\nRUN <<EOF\necho\n'), DockerfileErrorCode.HEREDOC, 2);
    expect(e.endLine).toBe(3);
  });
});

describe('dump', () => {
  it('quotes like Go strconv.Quote', () => {
    expect(dump('FROM a\nLABEL x="\u0001\u00a0é\u200b😀"\n')).toBe('(from "a")\n(label "x" "\\"\\x01\\u00a0é\\u200b😀\\"" "=")\n');
  });

  it('prints an unknown instruction with an empty argument, as BuildKit does', () => {
    expect(dump('FROM a\nFOO bar\n')).toBe('(from "a")\n(foo "")\n');
  });
});
