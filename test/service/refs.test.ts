import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { baseRefFields, dockerfileBaseRef, hashFields, refCensorWords, ServiceError, workspaceImageRef, type DockerfileBuildSource } from '../../src/service/index.js';

// SPEC-gitpod.md §3: the reference hashing must match mk3 byte for byte, or an existing registry
// of built images would be rebuilt from scratch.

/** The inputs of mk3's example-build.json. */
const exampleBuild: DockerfileBuildSource = {
  kind: 'file',
  dockerfileVersion: '',
  dockerfilePath: '.gitpod.dockerfile',
  contextPath: '.',
  initializer: {
    kind: 'git',
    remoteUri: 'https://github.com/AlexTugarev/test.repo',
    upstreamRemoteUri: '',
    targetMode: 'REMOTE_COMMIT',
    cloneTarget: 'good-workspace-image',
    checkoutLocation: '',
    fullClone: false,
  },
};

describe('reference hashing (SPEC-gitpod.md §3)', () => {
  it('hashes the sorted "Key: value" lines plus one trailing newline', () => {
    const text = 'CloneTarget: good-workspace-image\nContextPath: .\nDockerfilePath: .gitpod.dockerfile\nDockerfileVersion: \nRemoteURI: https://github.com/AlexTugarev/test.repo\nSource: git\n\n';
    expect(hashFields(baseRefFields(exampleBuild))).toBe(createHash('sha256').update(text).digest('hex'));
  });

  it('gives the base ref of the §3.1 vector', () => {
    expect(dockerfileBaseRef(exampleBuild, 'eu.gcr.io/gitpod-core-dev/build/base-images')).toBe(
      'eu.gcr.io/gitpod-core-dev/build/base-images:3efd79682470adfce9a2d4ddbc1a96e0ef592d0ca0b7c4b3be932a108cb9a4d4',
    );
  });

  it('gives the workspace ref of orchestrator_test.go', () => {
    expect(workspaceImageRef('source-image:latest', 'registry/workspace')).toBe('registry/workspace:2b1325adbf901167f47a914a62d377c98f1e32e0837dafb95ca86ca9d08ab14e');
  });

  it('gives the derived workspace ref of the §3.1 vector', () => {
    const base = dockerfileBaseRef(exampleBuild, 'eu.gcr.io/gitpod-core-dev/build/base-images');
    expect(workspaceImageRef(base, 'eu.gcr.io/gitpod-core-dev/build/workspace-images')).toBe(
      'eu.gcr.io/gitpod-core-dev/build/workspace-images:1f25f4b5378de5b8ed40f7b7a90e4163051c3c5ea4a32e00ac2c92cdf61d9248',
    );
  });

  it('does not hash target mode, checkout location, full clone, upstream or git credentials', () => {
    const other: DockerfileBuildSource = {
      ...exampleBuild,
      initializer: {
        kind: 'git',
        remoteUri: 'https://github.com/AlexTugarev/test.repo',
        upstreamRemoteUri: 'https://github.com/upstream/test.repo',
        targetMode: 'REMOTE_BRANCH',
        cloneTarget: 'good-workspace-image',
        checkoutLocation: 'elsewhere',
        fullClone: true,
        config: { customConfig: { 'core.autocrlf': 'false' }, authentication: 'BASIC_AUTH', authUser: 'u', authPassword: 'secret', authOts: '' },
      },
    };
    expect(dockerfileBaseRef(other, 'r/base')).toBe(dockerfileBaseRef(exampleBuild, 'r/base'));
  });

  it('hashes the Dockerfile version, path, context and commit', () => {
    const base = dockerfileBaseRef(exampleBuild, 'r/base');
    expect(dockerfileBaseRef({ ...exampleBuild, dockerfileVersion: 'abc' }, 'r/base')).not.toBe(base);
    expect(dockerfileBaseRef({ ...exampleBuild, contextPath: 'sub' }, 'r/base')).not.toBe(base);
    expect(dockerfileBaseRef({ ...exampleBuild, dockerfilePath: 'Dockerfile' }, 'r/base')).not.toBe(base);
  });

  it('hashes download initializers by their digests, under keys mk3 never uses', () => {
    const download = (digest: string): DockerfileBuildSource => ({
      ...exampleBuild,
      initializer: { kind: 'download', targetLocation: '.', files: [{ url: 'http://x/y', filePath: 'Dockerfile', digest }] },
    });
    const a = dockerfileBaseRef(download(`sha256:${'a'.repeat(64)}`), 'r/base');
    expect(a).not.toBe(dockerfileBaseRef(download(`sha256:${'b'.repeat(64)}`), 'r/base'));
    expect(baseRefFields(download(`sha256:${'a'.repeat(64)}`))).toHaveProperty('StevedoreInitializer');
  });

  it('refuses snapshot, prebuild and backup initializers, also inside a composite', () => {
    for (const kind of ['snapshot', 'prebuild', 'backup'] as const) {
      const error = (() => {
        try {
          dockerfileBaseRef({ ...exampleBuild, initializer: { kind: 'composite', initializers: [{ kind: 'empty' }, { kind }] } }, 'r/base');
        } catch (err) {
          return err;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(ServiceError);
      expect((error as ServiceError).status).toBe('INVALID_ARGUMENT');
      expect((error as ServiceError).message).toContain(kind);
    }
  });

  it('censors both refs and their repository names', () => {
    const words = refCensorWords('127.0.0.1:5000/ws:abc', '127.0.0.1:5000/base@sha256:' + '0'.repeat(64));
    expect(words).toEqual(expect.arrayContaining(['127.0.0.1:5000/ws:abc', '127.0.0.1:5000/ws', '127.0.0.1:5000/base']));
    expect(words).not.toContain('127.0.0.1');
  });
});
