import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadServiceConfig, parseGoDuration, parseServiceConfig, SERVICE_CONFIG_DEFAULTS, ServiceConfigError } from '../../src/service/index.js';
import { tempDir } from '../harness/index.js';

const minimal = { orchestrator: { baseImageRepository: '127.0.0.1:5000/base', workspaceImageRepository: '127.0.0.1:5000/ws' } };

function problemsOf(json: unknown): string[] {
  try {
    parseServiceConfig(json);
  } catch (err) {
    expect(err).toBeInstanceOf(ServiceConfigError);
    return [...(err as ServiceConfigError).problems];
  }
  throw new Error('the config was accepted');
}

describe('parseGoDuration', () => {
  it.each([
    ['6h0m0s', 6 * 3_600_000],
    ['1h30m', 5_400_000],
    ['90s', 90_000],
    ['1.5h', 5_400_000],
    ['300ms', 300],
    ['0', 0],
    ['-2m', -120_000],
    ['1h2m3s4ms5us6ns', 3_723_004.005006],
  ])('%s → %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 6);
  });

  it.each(['', '6', 'h', '1d', '1h 2m', '--1s', '1.s.s'])('rejects %j', (text) => {
    expect(parseGoDuration(text)).toBeUndefined();
  });
});

describe('parseServiceConfig (decision 10)', () => {
  it('fills every Stevedore default', () => {
    const { config, warnings } = parseServiceConfig(minimal);
    expect(warnings).toEqual([]);
    expect(config.server.grpc.address).toBe(SERVICE_CONFIG_DEFAULTS.grpcAddress);
    expect(config.server.http.address).toBe(SERVICE_CONFIG_DEFAULTS.httpAddress);
    expect(config.server.maxReceiveMessageBytes).toBe(100 * 1024 * 1024);
    expect(config.stevedore).toMatchObject({ concurrency: 2, runExecutor: 'auto', insecureRegistries: [], maxBuildMs: 3_600_000, buildRetentionMs: 3_600_000, shutdownGraceMs: 30_000 });
    expect(config.refCache).toBeUndefined();
  });

  it("reads mk3's shape and Stevedore's keys", () => {
    const { config } = parseServiceConfig({
      orchestrator: { ...minimal.orchestrator, pullSecretFile: '/config/pull-secret.json' },
      refCache: { interval: '6h0m0s', refs: ['docker.io/gitpod/workspace-full:latest'] },
      server: { services: { grpc: { address: '0.0.0.0:8080', tls: { caPath: '/ca.pem', certPath: '/tls.crt', keyPath: '/tls.key' } }, http: { address: ':9500' } } },
      stevedore: {
        workDir: '/var/lib/stevedore/work',
        cacheDir: '/var/cache/stevedore',
        concurrency: 4,
        runExecutor: 'runc',
        insecureRegistries: ['registry.local:5000'],
        buildRetention: '30m',
        maxLogBytes: 65536,
        maxBuildDuration: '2h',
        shutdownGrace: '0s',
        publicUrl: 'https://builder.example.com/',
        maxReceiveMessageBytes: 1024,
        subassembly: { repository: '127.0.0.1:5000/subassemblies', directory: '/var/lib/stevedore/subassemblies' },
      },
    });
    expect(config.refCache).toEqual({ intervalMs: 6 * 3_600_000, refs: ['docker.io/gitpod/workspace-full:latest'] });
    expect(config.server.grpc).toEqual({ address: '0.0.0.0:8080', tls: { caPath: '/ca.pem', certPath: '/tls.crt', keyPath: '/tls.key' } });
    expect(config.server.http).toEqual({ address: ':9500', publicUrl: 'https://builder.example.com' });
    expect(config.server.maxReceiveMessageBytes).toBe(1024);
    expect(config.stevedore).toMatchObject({ concurrency: 4, runExecutor: 'runc', buildRetentionMs: 1_800_000, maxBuildMs: 7_200_000, shutdownGraceMs: 0, maxLogBytes: 65536 });
    expect(config.stevedore.subassembly).toEqual({ repository: '127.0.0.1:5000/subassemblies', directory: '/var/lib/stevedore/subassemblies' });
    expect(config.orchestrator.pullSecretFile).toBe('/config/pull-secret.json');
  });

  it('accepts the mk3-only keys with a warning each', () => {
    const { warnings } = parseServiceConfig({
      orchestrator: {
        ...minimal.orchestrator,
        wsman: { address: 'ws-manager-mk2:8080', tls: { ca: '/ca', crt: '/crt', key: '/key' } },
        builderImage: 'eu.gcr.io/gitpod/image-builder-bob:latest',
        pullSecret: 'image-builder-mk3-pull-secret',
        enableAdditionalECRAuth: false,
        subassemblyBucketName: 'bucket',
        subassemblyBucketPrefix: 'prefix',
      },
    });
    expect(warnings).toHaveLength(6);
    expect(warnings.join('\n')).toContain('orchestrator.wsman');
    expect(warnings.join('\n')).toContain('orchestrator.builderImage');
  });

  it('turns the ref cache off (with a warning) unless both interval and refs are set', () => {
    const result = parseServiceConfig({ ...minimal, refCache: { interval: '1h' } });
    expect(result.config.refCache).toBeUndefined();
    expect(result.warnings.join()).toContain('refCache.refs');
  });

  it('names the path of a missing key', () => {
    expect(problemsOf({ orchestrator: { baseImageRepository: 'r/base' } })).toEqual(['orchestrator.workspaceImageRepository: required']);
    expect(problemsOf({})).toEqual(['orchestrator: required']);
  });

  it('names the path of unknown keys', () => {
    expect(problemsOf({ ...minimal, stevedore: { concurency: 2 } })).toEqual(['stevedore.concurency: unknown key']);
    expect(problemsOf({ ...minimal, server: { services: { grpc: { address: ':1', port: 2 } } } })).toEqual(['server.services.grpc.port: unknown key']);
    expect(problemsOf({ ...minimal, extra: true })).toEqual(['extra: unknown key']);
  });

  it('names the path of bad values', () => {
    expect(problemsOf({ ...minimal, server: { services: { grpc: { address: 'localhost' } } } })[0]).toMatch(/^server\.services\.grpc\.address: expected "host:port"/);
    expect(problemsOf({ ...minimal, refCache: { interval: '6 hours', refs: ['x'] } })[0]).toMatch(/^refCache\.interval: expected a Go duration/);
    expect(problemsOf({ ...minimal, refCache: { interval: '1h', refs: ['Not A Ref'] } })[0]).toMatch(/^refCache\.refs\.0: /);
    expect(problemsOf({ ...minimal, stevedore: { concurrency: 0 } })).toEqual(['stevedore.concurrency: must be greater than zero']);
    expect(problemsOf({ ...minimal, stevedore: { runExecutor: 'docker' } })[0]).toMatch(/^stevedore\.runExecutor: /);
    expect(problemsOf({ orchestrator: { ...minimal.orchestrator, baseImageRepository: 'r/base:tag' } })[0]).toMatch(/^orchestrator\.baseImageRepository: expected a repository without tag/);
    expect(problemsOf({ ...minimal, stevedore: { maxBuildDuration: '0s' } })[0]).toMatch(/^stevedore\.maxBuildDuration: must be longer than zero/);
  });

  it('reports every problem at once', () => {
    expect(problemsOf({ orchestrator: { baseImageRepository: 'r/base' }, stevedore: { concurrency: -1, bogus: 1 } })).toHaveLength(3);
  });

  it('loadServiceConfig names the file, and a JSON syntax error', async () => {
    const dir = await tempDir('stevedore-config-');
    try {
      const good = join(dir.path, 'good.json');
      await writeFile(good, JSON.stringify(minimal));
      expect((await loadServiceConfig(good)).config.orchestrator.baseImageRepository).toBe('127.0.0.1:5000/base');
      const bad = join(dir.path, 'bad.json');
      await writeFile(bad, JSON.stringify({ ...minimal, stevedore: { concurrency: 'two' } }));
      await expect(loadServiceConfig(bad)).rejects.toThrow(`invalid service configuration ${bad}: stevedore.concurrency: Expected number, received string`);
      const broken = join(dir.path, 'broken.json');
      await writeFile(broken, '{');
      await expect(loadServiceConfig(broken)).rejects.toThrow(/not valid JSON/);
      await expect(loadServiceConfig(join(dir.path, 'missing.json'))).rejects.toThrow(/ENOENT/);
    } finally {
      await dir.remove();
    }
  });
});
