import { describe, expect, it } from 'vitest';
import {
  InvalidDigestError,
  InvalidReferenceError,
  digestOf,
  familiarName,
  familiarString,
  formatReference,
  isValidTag,
  parseReference,
  referenceName,
  withDigest,
  withTag,
  type Reference,
} from '../../src/oci/index.js';

const D = digestOf('hello');
const D512 = digestOf('hello', 'sha512');
const HEX = D.slice('sha256:'.length);

// input → expected normalised reference (registry, repository, tag, digest).
const VALID: Array<[string, Reference]> = [
  ['alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
  ['alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
  ['library/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
  ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
  ['docker.io/library/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
  ['index.docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
  ['index.docker.io/myorg/app:v1', { registry: 'docker.io', repository: 'myorg/app', tag: 'v1' }],
  ['myorg/app', { registry: 'docker.io', repository: 'myorg/app', tag: 'latest' }],
  ['myorg/team/app', { registry: 'docker.io', repository: 'myorg/team/app', tag: 'latest' }],
  ['localhost/x', { registry: 'localhost', repository: 'x', tag: 'latest' }],
  ['localhost:5000/x', { registry: 'localhost:5000', repository: 'x', tag: 'latest' }],
  ['localhost:5000/a/b:t', { registry: 'localhost:5000', repository: 'a/b', tag: 't' }],
  ['a.b/c', { registry: 'a.b', repository: 'c', tag: 'latest' }],
  ['x:5000/c', { registry: 'x:5000', repository: 'c', tag: 'latest' }],
  ['127.0.0.1:5000/c:1', { registry: '127.0.0.1:5000', repository: 'c', tag: '1' }],
  ['[::1]:5000/x', { registry: '[::1]:5000', repository: 'x', tag: 'latest' }],
  ['[::1]/x:t', { registry: '[::1]', repository: 'x', tag: 't' }],
  ['[2001:db8::1]:443/org/x', { registry: '[2001:db8::1]:443', repository: 'org/x', tag: 'latest' }],
  ['ghcr.io/org/app:v1.2.3', { registry: 'ghcr.io', repository: 'org/app', tag: 'v1.2.3' }],
  // A single element is never a registry: `x:5000` is repository x with tag 5000 (as in Docker).
  ['x:5000', { registry: 'docker.io', repository: 'library/x', tag: '5000' }],
  ['localhost:5000', { registry: 'docker.io', repository: 'library/localhost', tag: '5000' }],
  ['localhost', { registry: 'docker.io', repository: 'library/localhost', tag: 'latest' }],
  // An uppercase first element cannot be a namespace, so Docker takes it for a registry host.
  ['Registry/app', { registry: 'Registry', repository: 'app', tag: 'latest' }],
  ['REG.example.com:5000/app', { registry: 'REG.example.com:5000', repository: 'app', tag: 'latest' }],
  // Separators inside path components.
  ['a/b_c', { registry: 'docker.io', repository: 'a/b_c', tag: 'latest' }],
  ['a/b__c', { registry: 'docker.io', repository: 'a/b__c', tag: 'latest' }],
  ['a/b---c.d', { registry: 'docker.io', repository: 'a/b---c.d', tag: 'latest' }],
  // Tags: word characters, dots and dashes, up to 128, not starting with '.' or '-'.
  ['a:_x', { registry: 'docker.io', repository: 'library/a', tag: '_x' }],
  ['a:V1.0-RC_2', { registry: 'docker.io', repository: 'library/a', tag: 'V1.0-RC_2' }],
  [`a:${'t'.repeat(128)}`, { registry: 'docker.io', repository: 'library/a', tag: 't'.repeat(128) }],
  // Digests: no default tag is added; tag and digest are both kept.
  [`alpine@${D}`, { registry: 'docker.io', repository: 'library/alpine', digest: D }],
  [`alpine:3@${D}`, { registry: 'docker.io', repository: 'library/alpine', tag: '3', digest: D }],
  [`localhost:5000/x@${D}`, { registry: 'localhost:5000', repository: 'x', digest: D }],
  [`localhost:5000/x:t@${D512}`, { registry: 'localhost:5000', repository: 'x', tag: 't', digest: D512 }],
  // The 255-character limit is on the path, not the registry.
  [`example.com/${'a'.repeat(255)}`, { registry: 'example.com', repository: 'a'.repeat(255), tag: 'latest' }],
];

// input → a fragment of the reason.
const INVALID: Array<[string, RegExp]> = [
  ['', /empty reference/],
  [' alpine', /whitespace/],
  ['alpine ', /whitespace/],
  ['al pine', /whitespace/],
  ['alpine\n', /whitespace/],
  ['Alpine', /repository name "library\/Alpine" must be lowercase/],
  ['myorg/App', /must be lowercase/],
  ['localhost:5000/App:v1', /must be lowercase/],
  [HEX, /image ID, not a repository name/],
  [`@${D}`, /missing repository name before "@"/],
  [':latest', /missing repository name/],
  ['alpine@sha256:abc', /invalid digest.*sha256 needs 64 hex characters, got 3/],
  [`alpine@sha256:${'A'.repeat(64)}`, /invalid digest.*lowercase hex/],
  [`alpine@md5:${'a'.repeat(32)}`, /invalid digest.*unsupported algorithm/],
  ['alpine@', /invalid digest/],
  [`alpine@${D}@${D}`, /invalid digest/],
  ['alpine:', /empty tag/],
  [`a:${'t'.repeat(129)}`, /tag longer than 128 characters/],
  ['a:.x', /invalid tag ".x"/],
  ['a:-x', /invalid tag "-x"/],
  // Docker decides "registry" before it looks for a tag.
  ['a:x/y', /registry "a:x" is not a valid host/],
  ['a:b:c', /invalid tag "b:c"/],
  ['a//b', /empty path component/],
  ['a/', /empty path component/],
  ['/a', /empty path component/],
  ['localhost:5000/', /missing repository name/],
  ['a/-b', /path component "-b" is invalid/],
  ['a/b-', /path component "b-" is invalid/],
  ['a/b..c', /path component "b..c" is invalid/],
  ['a/b___c', /path component "b___c" is invalid/],
  ['a/b_.c', /path component "b_.c" is invalid/],
  [`example.com/${'a'.repeat(256)}`, /repository name longer than 255 characters/],
  ['-x.com/app', /registry "-x.com" is not a valid host/],
  ['x.com:port/app', /registry "x.com:port" is not a valid host/],
  ['[fe80::1%eth0]:5000/x', /registry .* is not a valid host/],
  ['my_host.com/app', /registry "my_host.com" is not a valid host/],
];

describe('parseReference', () => {
  it.each(VALID)('%s', (input, expected) => {
    expect(parseReference(input)).toStrictEqual(expected);
  });

  it.each(INVALID)('rejects %j', (input, reason) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidReferenceError);
    expect((caught as InvalidReferenceError).code).toBe('INVALID_REFERENCE');
    expect((caught as Error).message).toMatch(reason);
  });

  it('adds no default tag when asked not to', () => {
    expect(parseReference('alpine', { defaultTag: false })).toStrictEqual({ registry: 'docker.io', repository: 'library/alpine' });
    expect(parseReference('alpine:3', { defaultTag: false }).tag).toBe('3');
  });

  it('round-trips through formatReference', () => {
    for (const [input] of VALID) {
      const ref = parseReference(input);
      expect(parseReference(formatReference(ref))).toStrictEqual(ref);
    }
  });
});

describe('formatting', () => {
  it('formats the full, the name-only and the familiar forms', () => {
    const hub = parseReference('alpine');
    expect(formatReference(hub)).toBe('docker.io/library/alpine:latest');
    expect(referenceName(hub)).toBe('docker.io/library/alpine');
    expect(familiarName(hub)).toBe('alpine');
    expect(familiarString(hub)).toBe('alpine:latest');

    const pinned = parseReference(`localhost:5000/x:t@${D}`);
    expect(formatReference(pinned)).toBe(`localhost:5000/x:t@${D}`);
    expect(familiarName(pinned)).toBe('localhost:5000/x');

    expect(familiarName(parseReference('myorg/app'))).toBe('myorg/app');
    // library/ is only dropped for a single-level official name.
    expect(familiarName(parseReference('library/a/b'))).toBe('library/a/b');
    expect(familiarString(parseReference(`alpine@${D}`))).toBe(`alpine@${D}`);
  });

  it('replaces tag and digest', () => {
    const ref = parseReference('localhost:5000/x:t');
    expect(withDigest(ref, D)).toStrictEqual({ registry: 'localhost:5000', repository: 'x', tag: 't', digest: D });
    expect(withTag(withDigest(ref, D), 'u')).toStrictEqual({ registry: 'localhost:5000', repository: 'x', tag: 'u', digest: D });
    expect(() => withDigest(ref, 'sha256:zz')).toThrow(InvalidDigestError);
    expect(() => withTag(ref, '.bad')).toThrow(/invalid tag ".bad"/);
    expect(() => withTag(ref, 'x'.repeat(129))).toThrow(InvalidReferenceError);
  });

  it('validates tags on their own', () => {
    expect(isValidTag('v1.0')).toBe(true);
    expect(isValidTag('')).toBe(false);
    expect(isValidTag('-x')).toBe(false);
    expect(isValidTag('a'.repeat(129))).toBe(false);
  });
});
