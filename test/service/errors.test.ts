import { describe, expect, it } from 'vitest';
import { AbortedError, StevedoreError } from '../../src/errors.js';
import { BuildStepError } from '../../src/build/index.js';
import { DockerfileError, DockerfileErrorCode } from '../../src/dockerfile/index.js';
import { InvalidDigestError, InvalidReferenceError, NotFoundError } from '../../src/oci/index.js';
import { PlatformNotFoundError, RegistryError, type RegistryErrorCode } from '../../src/registry/index.js';
import { ServiceConfigError, ServiceError, serviceStatusOf } from '../../src/service/index.js';
import { SubassemblyError } from '../../src/subassembly/index.js';

const registryError = (code: RegistryErrorCode, status?: number): RegistryError =>
  new RegistryError({ code, message: `resolve x: ${code}`, registry: 'r.io', ...(status === undefined ? {} : { status }) });

describe('serviceStatusOf: the one table from errors to gRPC status codes', () => {
  it('keeps a ServiceError\'s status and message', () => {
    expect(serviceStatusOf(new ServiceError('NOT_FOUND', 'build not found'))).toEqual({ status: 'NOT_FOUND', message: 'build not found' });
  });

  it.each([
    ['UNAUTHORIZED', 'UNAUTHENTICATED'],
    ['DENIED', 'PERMISSION_DENIED'],
    ['NAME_UNKNOWN', 'NOT_FOUND'],
    ['MANIFEST_UNKNOWN', 'NOT_FOUND'],
    ['BLOB_UNKNOWN', 'NOT_FOUND'],
    ['NOT_FOUND', 'NOT_FOUND'],
    ['TOOMANYREQUESTS', 'UNAVAILABLE'],
    ['SERVER_ERROR', 'UNAVAILABLE'],
    ['CONNECTION_FAILED', 'UNAVAILABLE'],
    ['TIMEOUT', 'UNAVAILABLE'],
    ['NAME_INVALID', 'INVALID_ARGUMENT'],
    ['UNSUPPORTED', 'UNIMPLEMENTED'],
    ['MANIFEST_INVALID', 'INTERNAL'],
    ['PROTOCOL_ERROR', 'INTERNAL'],
  ] as const)('RegistryError %s → %s', (code, status) => {
    expect(serviceStatusOf(registryError(code))).toEqual({ status, message: `resolve x: ${code}` });
  });

  it.each([
    ['INVALID_REFERENCE', 'INVALID_ARGUMENT'],
    ['NOT_FOUND', 'NOT_FOUND'],
    ['UNAUTHENTICATED', 'UNAUTHENTICATED'],
    ['UNAVAILABLE', 'UNAVAILABLE'],
    ['INTERNAL', 'INTERNAL'],
  ] as const)('SubassemblyError %s → %s', (code, status) => {
    expect(serviceStatusOf(new SubassemblyError(code, 'squash x'))).toEqual({ status, message: 'squash x' });
  });

  it('maps the library\'s own errors', () => {
    expect(serviceStatusOf(new InvalidReferenceError('A:b', 'bad')).status).toBe('INVALID_ARGUMENT');
    expect(serviceStatusOf(new InvalidDigestError('sha256:x', 'bad')).status).toBe('INVALID_ARGUMENT');
    expect(serviceStatusOf(new AbortedError()).status).toBe('CANCELLED');
    expect(serviceStatusOf(new NotFoundError('blob')).status).toBe('NOT_FOUND');
    expect(serviceStatusOf(new PlatformNotFoundError('r/x', 'linux-amd64', [])).status).toBe('INTERNAL');
    expect(serviceStatusOf(new ServiceConfigError(['a: b'])).status).toBe('FAILED_PRECONDITION');
  });

  it('a Dockerfile or build-step error keeps its location in the message', () => {
    const parse = new DockerfileError(DockerfileErrorCode.UNKNOWN_INSTRUCTION, 'unknown instruction: FORM', { file: 'Dockerfile', startLine: 3 });
    expect(serviceStatusOf(parse)).toEqual({ status: 'FAILED_PRECONDITION', message: 'Dockerfile:3: unknown instruction: FORM' });
    const step = new BuildStepError({ stage: 'stage-0', instruction: 'RUN false', file: 'Dockerfile', startLine: 2, endLine: 2 }, new Error('exit code 1'));
    expect(serviceStatusOf(step)).toEqual({ status: 'FAILED_PRECONDITION', message: 'Dockerfile:2: RUN false: exit code 1' });
  });

  it('anything unknown is INTERNAL, never UNKNOWN', () => {
    expect(serviceStatusOf(new Error('boom'))).toEqual({ status: 'INTERNAL', message: 'boom' });
    expect(serviceStatusOf(new StevedoreError('WHATEVER', 'odd'))).toEqual({ status: 'INTERNAL', message: 'odd' });
    expect(serviceStatusOf('text')).toEqual({ status: 'INTERNAL', message: 'text' });
    expect(serviceStatusOf(undefined).status).toBe('INTERNAL');
    expect(serviceStatusOf(null).status).toBe('INTERNAL');
  });
});
