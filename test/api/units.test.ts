// The adapter's pure pieces: listen addresses, Range headers, and the wire ⇄ library codec.
import { describe, expect, it } from 'vitest';
import { formatHostPort, parseListenAddress } from '../../src/api/address.js';
import { decodeAuth, decodeBuildRequest, decodeInitializer, encodeBuildUpdate, encodeSubassemblyStatus } from '../../src/api/codec.js';
import { parseRange } from '../../src/api/http.js';
import { grpcFailureOf } from '../../src/api/status.js';
import { status } from '@grpc/grpc-js';
import { ServiceError } from '../../src/index.js';

describe('listen addresses', () => {
  it('reads host:port, [v6]:port and :port', () => {
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:8080')).toEqual({ host: '::1', port: 8080 });
    expect(parseListenAddress(':9500')).toEqual({ host: '::', port: 9500 });
    expect(parseListenAddress('localhost:65535')).toEqual({ host: 'localhost', port: 65535 });
  });

  it('rejects what is not one', () => {
    for (const bad of ['127.0.0.1', '127.0.0.1:65536', 'host:port', '::1:80', '']) expect(() => parseListenAddress(bad), bad).toThrow(/invalid listen address/);
  });

  it('brackets IPv6 hosts when formatting', () => {
    expect(formatHostPort('::', 80)).toBe('[::]:80');
    expect(formatHostPort('127.0.0.1', 80)).toBe('127.0.0.1:80');
  });
});

describe('Range headers (RFC 9110)', () => {
  it('reads first-last, first- and -suffix', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=50-1000', 100)).toEqual({ start: 50, end: 99 });
  });

  it('says unsatisfiable past the end', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=100-200', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-0', 0)).toBe('unsatisfiable');
  });

  it('ignores what it may ignore: absent, malformed, several ranges, last < first', () => {
    for (const header of [undefined, 'bytes=', 'bytes=-', 'items=0-1', 'bytes=0-1,5-6', 'bytes=9-3']) expect(parseRange(header, 100), String(header)).toBeUndefined();
  });
});

describe('wire → library', () => {
  it('decodes registry auth modes and keeps `additional` whatever the mode', () => {
    expect(decodeAuth(null)).toBeUndefined();
    expect(decodeAuth({ mode: 'total', total: { allow_all: true }, additional: { 'a.io': 'dTpw' } })).toEqual({ mode: { kind: 'total', allowAll: true }, additional: { 'a.io': 'dTpw' } });
    expect(decodeAuth({ mode: 'selective', selective: { allow_baserep: true, allow_workspacerep: false, any_of: ['x.io'] }, additional: {} })).toEqual({
      mode: { kind: 'selective', allowBaseRepository: true, allowWorkspaceRepository: false, anyOf: ['x.io'] },
      additional: {},
    });
    expect(decodeAuth({ additional: { h: 'v' } })).toEqual({ mode: undefined, additional: { h: 'v' } });
  });

  it('decodes every initializer kind with the wire spellings', () => {
    const git = decodeInitializer({
      spec: 'git',
      git: {
        remote_uri: 'https://example.invalid/r.git',
        upstream_Remote_uri: 'https://example.invalid/u.git',
        target_mode: 'REMOTE_BRANCH',
        clone_taget: 'feature',
        checkout_location: 'r',
        config: { custom_config: { 'http.sslVerify': 'false' }, authentication: 'BASIC_AUTH', auth_user: 'u', auth_password: 'p', auth_ots: '' },
        full_clone: true,
      },
    });
    expect(git).toEqual({
      kind: 'git',
      remoteUri: 'https://example.invalid/r.git',
      upstreamRemoteUri: 'https://example.invalid/u.git',
      targetMode: 'REMOTE_BRANCH',
      cloneTarget: 'feature',
      checkoutLocation: 'r',
      config: { customConfig: { 'http.sslVerify': 'false' }, authentication: 'BASIC_AUTH', authUser: 'u', authPassword: 'p', authOts: '' },
      fullClone: true,
    });
    expect(
      decodeInitializer({
        spec: 'composite',
        composite: { initializer: [{ spec: 'empty', empty: {} }, { spec: 'download', download: { files: [{ url: 'u', file_path: 'f', digest: 'sha256:00' }], target_location: 't' } }] },
      }),
    ).toEqual({ kind: 'composite', initializers: [{ kind: 'empty' }, { kind: 'download', files: [{ url: 'u', filePath: 'f', digest: 'sha256:00' }], targetLocation: 't' }] });
    for (const kind of ['snapshot', 'prebuild', 'backup'] as const) expect(decodeInitializer({ spec: kind })).toEqual({ kind });
    expect(decodeInitializer({})).toBeUndefined();
  });

  it('answers INVALID_ARGUMENT for what the library types cannot hold', () => {
    const unknownMode = () =>
      decodeInitializer({
        spec: 'git',
        git: { remote_uri: '', upstream_Remote_uri: '', target_mode: 7 as never, clone_taget: '', checkout_location: '', config: null, full_clone: false },
      });
    expect(unknownMode).toThrow(ServiceError);
    expect(grpcFailureOf(catchError(unknownMode))).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('source.git.target_mode') });
    const emptyChild = () => decodeInitializer({ spec: 'composite', composite: { initializer: [{}] } });
    expect(grpcFailureOf(catchError(emptyChild))).toMatchObject({ code: status.INVALID_ARGUMENT, details: expect.stringContaining('composite.initializer[0]') });
  });

  it('decodes a BuildRequest without a source as "no source" (the library answers INVALID_ARGUMENT)', () => {
    const request = decodeBuildRequest({
      source: null,
      auth: null,
      force_rebuild: true,
      triggered_by: 'user',
      supervisor_ref: '',
      base_image_name_resolved: '',
      use_retry_client: false,
    });
    expect(request.source).toBeUndefined();
    expect(request.forceRebuild).toBe(true);
  });
});

describe('library → wire', () => {
  it('mirrors info in a BuildResponse and leaves it null when absent', () => {
    const info = { ref: 'w:1', baseRef: 'b:1', status: 'running' as const, startedAt: 1700000000, buildId: 'id', logInfo: { url: 'http://x/builds/id/log', headers: { 'x-gitpod-owner-token': 't' } } };
    expect(encodeBuildUpdate({ ref: 'w:1', baseRef: 'b:1', status: 'running', message: '', info })).toEqual({
      ref: 'w:1',
      base_ref: 'b:1',
      status: 'running',
      message: '',
      info: { ref: 'w:1', base_ref: 'b:1', status: 'running', started_at: 1700000000, build_id: 'id', log_info: { url: 'http://x/builds/id/log', headers: { 'x-gitpod-owner-token': 't' } } },
    });
    expect(encodeBuildUpdate({ ref: 'w', baseRef: 'b', status: 'done_success', message: '' }).info).toBeNull();
  });

  it('names subassembly phases as the proto does and fills only what is known', () => {
    expect(encodeSubassemblyStatus({ phase: 'CREATING', message: 'pulling' })).toEqual({ phase: 'SUBASSEMBLY_PHASE_CREATING', message: 'pulling', digest: '', url: '', manifest: Buffer.alloc(0) });
    const available = encodeSubassemblyStatus({ phase: 'AVAILABLE', message: '', digest: `sha256:${'a'.repeat(64)}` as never, url: 'http://x', manifest: new TextEncoder().encode('{}') });
    expect(available.phase).toBe('SUBASSEMBLY_PHASE_AVAILABLE');
    expect(Buffer.from(available.manifest as Buffer).toString()).toBe('{}');
  });
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}
