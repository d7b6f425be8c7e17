import { describe, expect, it } from 'vitest';
import { DockerignoreError, DockerignoreMatcher, dockerignoreCandidates, dockerignoreMatcher, parseDockerignore } from '../../src/dockerfile/index.js';

const excluded = (patterns: string[], paths: string[]): string[] => {
  const m = new DockerignoreMatcher(parseDockerignore(patterns.join('\n')));
  return paths.filter((p) => m.matches(p));
};

describe('.dockerignore file format', () => {
  it('drops comments and blank lines, trims, and cleans paths', () => {
    expect(parseDockerignore('\ufeff# comment\r\n\r\n  /foo/  \r\n./bar\r\n !/baz/../qux\n #not-a-comment\na//b/./c\n')).toEqual([
      'foo',
      'bar',
      '!qux',
      '#not-a-comment',
      'a/b/c',
    ]);
  });
});

describe('matching (moby/patternmatcher semantics)', () => {
  it('anchors patterns at the context root', () => {
    expect(excluded(['foo'], ['foo', 'foo/bar', 'a/foo', 'foobar'])).toEqual(['foo', 'foo/bar']);
  });

  it('keeps * and ? inside one path segment, unlike .gitignore', () => {
    expect(excluded(['*.md'], ['a.md', 'docs/a.md'])).toEqual(['a.md']);
    expect(excluded(['*/temp?'], ['x/temp1', 'temp1', 'x/y/temp1', 'x/temp12'])).toEqual(['x/temp1']);
  });

  it('lets ** cross directories, including none', () => {
    expect(excluded(['**/*.go'], ['a.go', 'x/y/b.go', 'x/c.txt'])).toEqual(['a.go', 'x/y/b.go']);
    expect(excluded(['a/**/b'], ['a/b', 'a/x/y/b', 'a/b/c', 'ab'])).toEqual(['a/b', 'a/x/y/b', 'a/b/c']);
    expect(excluded(['a/**'], ['a', 'a/b'])).toEqual(['a/b']);
    expect(excluded(['**'], ['a', 'a/b'])).toEqual(['a', 'a/b']);
  });

  it('excludes the children of an excluded directory', () => {
    expect(excluded(['node_modules'], ['node_modules/x/index.js'])).toEqual(['node_modules/x/index.js']);
    expect(excluded(['foo/*'], ['foo', 'foo/bar', 'foo/bar/baz'])).toEqual(['foo/bar', 'foo/bar/baz']);
  });

  it('lets later patterns win, and ! re-include', () => {
    expect(excluded(['*.md', '!README.md'], ['a.md', 'README.md'])).toEqual(['a.md']);
    expect(excluded(['!README.md', '*.md'], ['a.md', 'README.md'])).toEqual(['a.md', 'README.md']);
    expect(excluded(['docs', '!docs/keep', 'docs/keep/tmp'], ['docs/a', 'docs/keep/b', 'docs/keep/tmp/c'])).toEqual(['docs/a', 'docs/keep/tmp/c']);
  });

  it('supports character classes and escapes', () => {
    expect(excluded(['[a-c]*'], ['b1', 'd1'])).toEqual(['b1']);
    expect(excluded(['[^a]x'], ['ax', 'bx'])).toEqual(['bx']);
    expect(excluded(['a\\*b'], ['a*b', 'axb'])).toEqual(['a*b']);
    expect(excluded(['\\#x'], ['#x'])).toEqual(['#x']);
    expect(excluded(['a.b'], ['a.b', 'axb'])).toEqual(['a.b']);
  });

  it('rejects malformed patterns', () => {
    for (const bad of ['[a-', 'x[', 'a\\', '!']) {
      expect(() => new DockerignoreMatcher([bad]), bad).toThrow(DockerignoreError);
    }
  });
});

describe('walk decisions (BuildKit context transfer)', () => {
  it('descends into an excluded directory only when an exception starts inside it', () => {
    const m = dockerignoreMatcher('docs\n!docs/keep.md\n');
    expect(m.decide('docs', true)).toBe('descend');
    expect(m.decide('docs/a.md', false)).toBe('exclude');
    expect(m.decide('docs/keep.md', false)).toBe('include');
    expect(m.decide('src', true)).toBe('include');
  });

  it('skips an excluded directory whose exceptions are wildcards, though path matching alone would keep a file', () => {
    const m = dockerignoreMatcher('docs\n!**/*.md\n');
    expect(m.matches('docs/a.md')).toBe(false);
    expect(m.decide('docs', true)).toBe('exclude');
  });

  it('skips excluded directories outright when there are no exceptions', () => {
    expect(dockerignoreMatcher('build\n').decide('build', true)).toBe('exclude');
  });
});

describe('which ignore file', () => {
  it('prefers <Dockerfile>.dockerignore next to the Dockerfile', () => {
    expect(dockerignoreCandidates('docker/app.Dockerfile')).toEqual([
      { path: 'docker/app.Dockerfile.dockerignore', relativeTo: 'dockerfile' },
      { path: '.dockerignore', relativeTo: 'context' },
    ]);
  });
});
