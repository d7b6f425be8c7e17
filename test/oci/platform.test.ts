import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PLATFORM,
  InvalidPlatformError,
  OCI,
  digestOf,
  formatPlatform,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectGitpodManifest,
  selectManifest,
  type Descriptor,
  type ImageIndex,
  type Platform,
} from '../../src/oci/index.js';

function entry(name: string, platform?: Platform): Descriptor {
  return { mediaType: OCI.manifest, digest: digestOf(name), size: name.length, ...(platform === undefined ? {} : { platform }) };
}

function index(...manifests: Descriptor[]): ImageIndex {
  return { schemaVersion: 2, mediaType: OCI.index, manifests };
}

describe('parsePlatform / formatPlatform', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86-64', { os: 'linux', architecture: 'amd64' }],
    ['linux/amd64/v1', { os: 'linux', architecture: 'amd64' }],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['linux/arm64/9', { os: 'linux', architecture: 'arm64', variant: 'v9' }],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/arm/6', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/armhf', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['linux/i386', { os: 'linux', architecture: '386' }],
    ['Linux/AMD64', { os: 'linux', architecture: 'amd64' }],
    ['macos/arm64', { os: 'darwin', architecture: 'arm64' }],
    ['linux/s390x', { os: 'linux', architecture: 's390x' }],
    ['windows(10.0.17763)/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }],
  ])('%s', (input, expected) => {
    expect(parsePlatform(input)).toStrictEqual(expected);
  });

  it.each(['', 'linux', 'linux/', '/amd64', 'linux/amd64/v8/x', 'linux/am d64', 'windows()/amd64', 'linux/arm64/'])('rejects %j', (input) => {
    expect(() => parsePlatform(input)).toThrow(InvalidPlatformError);
  });

  it('formats what it parses', () => {
    expect(formatPlatform(parsePlatform('linux/arm/v7'))).toBe('linux/arm/v7');
    expect(formatPlatform(parsePlatform('linux/arm64/v8'))).toBe('linux/arm64');
    expect(formatPlatform(DEFAULT_PLATFORM)).toBe('linux/amd64');
  });

  it('knows the host in OCI terms', () => {
    const host = hostPlatform();
    expect(host).toStrictEqual(normalizePlatform(host));
    expect(host.os).toBe(process.platform === 'win32' ? 'windows' : process.platform);
    if (process.arch === 'x64') expect(host.architecture).toBe('amd64');
    if (process.arch === 'arm64') expect(host.architecture).toBe('arm64');
  });
});

describe('platformMatches', () => {
  it.each([
    ['linux/amd64', { os: 'linux', architecture: 'amd64' }, true],
    ['linux/amd64', { os: 'linux', architecture: 'x86_64' }, true],
    ['linux/amd64', { os: 'linux', architecture: 'amd64', variant: 'v3' }, true],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64' }, false],
    ['linux/arm64', { os: 'linux', architecture: 'arm64', variant: 'v8' }, true],
    ['linux/arm64/v8', { os: 'linux', architecture: 'aarch64' }, true],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v7' }, true],
    ['linux/arm', { os: 'linux', architecture: 'arm' }, true],
    ['linux/arm', { os: 'linux', architecture: 'arm', variant: 'v6' }, false],
    ['linux/arm/v6', { os: 'linux', architecture: 'arm', variant: 'v7' }, false],
    ['linux/amd64', { os: 'windows', architecture: 'amd64' }, false],
    ['linux/amd64', { os: 'linux', architecture: 'arm64' }, false],
  ] as Array<[string, Platform, boolean]>)('%s vs %j → %s', (want, have, expected) => {
    expect(platformMatches(parsePlatform(want), have)).toBe(expected);
  });
});

describe('selectManifest', () => {
  const amd64 = entry('amd64', { os: 'linux', architecture: 'amd64' });
  const amd64v3 = entry('amd64v3', { os: 'linux', architecture: 'amd64', variant: 'v3' });
  const arm64v8 = entry('arm64v8', { os: 'linux', architecture: 'arm64', variant: 'v8' });
  const arm64v9 = entry('arm64v9', { os: 'linux', architecture: 'arm64', variant: 'v9' });
  const armv6 = entry('armv6', { os: 'linux', architecture: 'arm', variant: 'v6' });
  const armv7 = entry('armv7', { os: 'linux', architecture: 'arm', variant: 'v7' });
  const attestation = entry('att', { os: 'unknown', architecture: 'unknown' });
  const windows = entry('win', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' });
  const noPlatform = entry('none');
  const idx = index(noPlatform, attestation, windows, amd64v3, amd64, arm64v9, arm64v8, armv6, armv7);

  it('picks the exact variant before any other match', () => {
    expect(selectManifest(idx, parsePlatform('linux/amd64'))).toBe(amd64);
    expect(selectManifest(idx, parsePlatform('linux/amd64/v3'))).toBe(amd64v3);
    expect(selectManifest(idx, parsePlatform('linux/arm64'))).toBe(arm64v8);
    expect(selectManifest(idx, parsePlatform('linux/arm64/v9'))).toBe(arm64v9);
    expect(selectManifest(idx, parsePlatform('linux/arm'))).toBe(armv7);
    expect(selectManifest(idx, parsePlatform('linux/arm/v6'))).toBe(armv6);
    expect(selectManifest(idx, parsePlatform('windows/amd64'))).toBe(windows);
  });

  it('falls back to another variant only when none was asked for', () => {
    expect(selectManifest(index(amd64v3), parsePlatform('linux/amd64'))).toBe(amd64v3);
    expect(selectManifest(index(arm64v9), parsePlatform('linux/arm64'))).toBe(arm64v9);
    expect(selectManifest(index(armv6), parsePlatform('linux/arm'))).toBeUndefined();
  });

  it('finds nothing for an absent platform', () => {
    expect(selectManifest(idx, parsePlatform('linux/s390x'))).toBeUndefined();
    expect(selectManifest(index(noPlatform, attestation), DEFAULT_PLATFORM)).toBeUndefined();
  });
});

describe('selectGitpodManifest', () => {
  it('takes the first linux-amd64 entry, ignoring variants and normalisation', () => {
    const v3 = entry('v3', { os: 'linux', architecture: 'amd64', variant: 'v3' });
    const plain = entry('plain', { os: 'linux', architecture: 'amd64' });
    const alias = entry('alias', { os: 'linux', architecture: 'x86_64' });
    expect(selectGitpodManifest(index(entry('none'), alias, v3, plain))).toBe(v3);
    expect(selectGitpodManifest(index(alias))).toBeUndefined();
    expect(selectGitpodManifest(index())).toBeUndefined();
  });
});
