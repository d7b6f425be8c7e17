import { describe, expect, it } from 'vitest';
import { DockerfileError, expandShell, expandWord, expandWords } from '../../src/dockerfile/index.js';

describe('expandWord', () => {
  const env = { FOO: 'xxyy', EMPTY: '', PATHY: '/tmp/tmp/bar.txt', URL: 'http://google.de' };

  it.each([
    ['${FOO:-a} ${EMPTY:-b} ${UNSET:-c}', 'xxyy b c'],
    ['${FOO-a} ${EMPTY-b} ${UNSET-c}', 'xxyy  c'],
    ['${FOO:+a}|${EMPTY:+b}|${UNSET:+c}', 'a||'],
    ['${FOO+a}|${EMPTY+b}|${UNSET+c}', 'a|b|'],
    ['${FOO#x}', 'xyy'],
    ['${FOO##*x}', 'yy'],
    ['${FOO%y}', 'xxy'],
    ['${FOO%%y*}', 'xx'],
    ['${FOO#?\\?}', 'xxyy'],
    ['${PATHY/\\/tmp/}', '/tmp/bar.txt'],
    ['${PATHY//\\/tmp/}', '/bar.txt'],
    ['${URL/http:\\/\\//https://}', 'https://google.de'],
    // $$ is the (unset) special parameter; a \$0 reaches Go's ReplaceAll template as the match.
    ['${FOO//y/$$}', 'xx'],
    ['${FOO//y/\\$0}', 'xx\\y\\y'],
    ['${FOO/y/\\$0}', 'xx\\$0y'],
    ['${FOO//y/z}', 'xxzz'],
    ['${FOO/$EMPTY/ww}', 'wwxxyy'],
    ['${FOO?} ${EMPTY?}', 'xxyy '],
    ["'$FOO' \"$FOO\" \\$FOO", '$FOO xxyy $FOO'],
  ])('%s → %s', (input, expected) => {
    expect(expandWord(input, env).value).toBe(expected);
  });

  it('reports the unresolved names in order, and uses only the environment it is given', () => {
    const r = expandWord('$B ${A:-x} ${B} $FOO $1', env);
    expect(r.value).toBe(' x  xxyy ');
    expect(r.unresolved).toEqual(['B', 'A', '1']);
    expect(expandShell('$FOO $HOME', env).resolved).toEqual(['FOO']);
  });

  it('fails on ${v:?msg} with the message, and on bad substitutions', () => {
    expect(() => expandWord('${EMPTY:?must be set}', env)).toThrow(/EMPTY: must be set/);
    expect(() => expandWord('${UNSET?}', env)).toThrow(/UNSET: is not allowed to be unset/);
    for (const bad of ['${}', '${FOO', '${FOO:=x}', '${FOO//x}', "'open", '${FOO#\\x}']) {
      expect(() => expandWord(bad, env), bad).toThrow(DockerfileError);
    }
  });

  it('honours the backtick escape token', () => {
    expect(expandWord('C:\\dir `$FOO', env, { escapeToken: '`' }).value).toBe('C:\\dir $FOO');
    expect(expandWord('"a`"b"', env, { escapeToken: '`' }).value).toBe('a"b');
  });

  it('accepts a Map or a lookup function as the environment', () => {
    expect(expandWord('$A', new Map([['A', '1']])).value).toBe('1');
    expect(expandWord('$A', (n) => (n === 'A' ? '2' : undefined)).value).toBe('2');
    // A record's prototype is not an environment.
    expect(expandWord('$constructor', {}).value).toBe('');
  });

  it('can leave unset variables and quotes as they are (heredoc delimiter mode)', () => {
    expect(expandWord('"$X" ${Y:-z}', {}, { skipUnsetEnv: true, rawQuotes: true }).value).toBe('"$X" ${Y:-z}');
    expect(expandWord('say "hi $FOO"', env, { skipProcessQuotes: true }).value).toBe('say "hi xxyy"');
  });
});

describe('expandWords', () => {
  it('splits after expansion, except inside quotes', () => {
    const env = { S: 'a  b' };
    expect(expandWords('x$S "y$S" z', env).words).toEqual(['xa', 'b', 'ya  b', 'z']);
    expect(expandWords('"" a \'\'', env).words).toEqual(['a']);
  });
});
