import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClientPool } from '../../src/registry/index.js';
import {
  ImageBuilderService,
  LOG_TOKEN_HEADER,
  workspaceImageRef,
  type DockerfileBuildSource,
  type ImageBuildRequest,
  type ImageBuildUpdate,
} from '../../src/service/index.js';
import { startFaultProxy } from '../harness/index.js';
import { collectText, collectUpdates, makeGitRepo, serviceErrorOf, startHttpServer, startServiceSuite, type GitRepo, type ServiceSuite, type TestHttpServer } from './helpers.js';

// The image builder end to end in-process (SPEC-gitpod.md §4-§8 and Stevedore's decisions): a
// real registry with the busybox base, a bare git repository over file://, real builds.

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const GIT_PASSWORD = 'git-secret-pw-7731';
const SLOW = ['slow-list', 'slow-logs', 'slow-limit', 'slow-shutdown', 'slow-queued'] as const;

function slowSource(name: (typeof SLOW)[number]): DockerfileBuildSource {
  return gitSource({ dockerfilePath: `${name}/Dockerfile`, contextPath: name, dockerfileVersion: name });
}

let suite: ServiceSuite;
let repo: GitRepo;
let service: ImageBuilderService;
let files: TestHttpServer;

beforeAll(async () => {
  suite = await startServiceSuite();
  repo = await makeGitRepo(suite.dir, 'app', {
    'Dockerfile': `FROM ${suite.busybox}\nCOPY hello.txt /hello.txt\nLABEL app=hello\n`,
    'hello.txt': 'hello from git\n',
    'failing/Dockerfile': `FROM ${suite.busybox}\nCOPY missing.txt /missing.txt\n`,
    'secret/Dockerfile': `FROM ${suite.busybox}\nRUN echo "the password is ${GIT_PASSWORD}"\n`,
    // One slow Dockerfile per test that needs a RUN step in flight: the engine's step cache would
    // answer a second identical RUN without running it.
    ...Object.fromEntries(SLOW.map((name) => [`${name}/Dockerfile`, `FROM ${suite.busybox}\nRUN echo started && sleep 2 && echo finished ${name}\n`])),
    'nested/Dockerfile': `FROM ${suite.busybox}\nCOPY . /ctx/\n`,
    'nested/inner.txt': 'inner\n',
  });
  files = await startHttpServer((req, res) => {
    if (req.url === '/Dockerfile') res.writeHead(200).end(`FROM ${suite.busybox}\nLABEL from=download\n`);
    else res.writeHead(404).end();
  });
  service = new ImageBuilderService({ config: suite.config(), httpBaseUrl: 'http://127.0.0.1:9999/' });
  await service.start();
});

afterAll(async () => {
  await service?.shutdown(0);
  await files?.stop();
  await suite?.stop();
});

function gitSource(overrides: Partial<DockerfileBuildSource> = {}, password?: string): DockerfileBuildSource {
  return {
    kind: 'file',
    dockerfilePath: 'Dockerfile',
    dockerfileVersion: repo.commits[0]!,
    contextPath: '.',
    initializer: {
      kind: 'git',
      remoteUri: repo.url,
      upstreamRemoteUri: '',
      targetMode: 'REMOTE_COMMIT',
      cloneTarget: repo.commits[0]!,
      checkoutLocation: '.',
      fullClone: false,
      ...(password === undefined ? {} : { config: { customConfig: {}, authentication: 'BASIC_AUTH' as const, authUser: 'me', authPassword: password, authOts: '' } }),
    },
    ...overrides,
  };
}

/** PIDs of processes whose command line contains `text` (the RUN step of a cancelled build must be gone). */
async function processesRunning(text: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.replace(/\0/g, ' ').includes(text) && Number(pid) !== process.pid) found.push(pid);
  }
  return found;
}

function metric(name: string): number {
  const line = service.metrics
    .render()
    .split('\n')
    .find((l) => l.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

async function digestOf(ref: string): Promise<string> {
  const at = ref.indexOf('/');
  const colon = ref.lastIndexOf(':');
  const pool = new RegistryClientPool();
  try {
    const repository = pool.repository({ registry: ref.slice(0, at), repository: ref.slice(at + 1, colon) });
    return (await repository.resolve(ref.slice(colon + 1))).digest;
  } finally {
    await pool.close();
  }
}

function expectInfo(update: ImageBuildUpdate): void {
  const info = update.info!;
  expect(info).toBeDefined();
  expect(info.buildId).toMatch(UUID);
  expect(info.ref).toBe(update.ref);
  expect(info.baseRef).toBe(update.baseRef);
  expect(info.status).toBe(update.status);
  expect(info.startedAt).toBeGreaterThan(1_600_000_000);
  expect(info.startedAt).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  expect(info.logInfo?.url).toBe(`http://127.0.0.1:9999/builds/${info.buildId}/log`);
  expect(info.logInfo?.headers[LOG_TOKEN_HEADER]).toMatch(/^[A-Za-z0-9_-]{32}$/);
}

describe('Build of a Dockerfile from a git repository', () => {
  let first: ImageBuildUpdate[];

  it('ResolveWorkspaceImage before the build → unknown', async () => {
    const resolved = await service.resolveWorkspaceImage({ source: gitSource() });
    expect(resolved.status).toBe('unknown');
    expect(resolved.baseRef).toBe('');
    expect(resolved.ref).toMatch(new RegExp(`^${suite.registry.host}/workspace-images:[0-9a-f]{64}$`));
  });

  it('streams running with info, then done_success; base and workspace images share one digest', async () => {
    const started = metric('gitpod_image_builder_builds_started_total');
    first = await collectUpdates(service.build({ source: gitSource(), triggeredBy: 'user-1' }));
    expect(first[0]!.status).toBe('running');
    expectInfo(first[0]!);
    const last = first.at(-1)!;
    expect(last.status, last.message).toBe('done_success');
    expectInfo(last);
    expect(last.info!.buildId).toBe(first[0]!.info!.buildId);
    expect(last.baseRef).toMatch(new RegExp(`^${suite.registry.host}/base-images:[0-9a-f]{64}$`));
    expect(last.ref).toBe(workspaceImageRef(last.baseRef, `${suite.registry.host}/workspace-images`));
    expect(await digestOf(last.ref)).toBe(await digestOf(last.baseRef));
    expect(metric('gitpod_image_builder_builds_started_total')).toBe(started + 1);
    expect(service.listBuilds()).toEqual([]);
  });

  it('ResolveWorkspaceImage after the build → done_success', async () => {
    expect(await service.resolveWorkspaceImage({ source: gitSource() })).toEqual({ ref: first.at(-1)!.ref, baseRef: '', status: 'done_success' });
  });

  it('a second Build answers one done_success without info', async () => {
    const started = metric('gitpod_image_builder_builds_started_total');
    const again = await collectUpdates(service.build({ source: gitSource() }));
    expect(again).toEqual([{ ref: first.at(-1)!.ref, baseRef: first.at(-1)!.baseRef, status: 'done_success', message: '' }]);
    expect(metric('gitpod_image_builder_builds_started_total')).toBe(started);
  });

  it('force_rebuild builds again, to the same refs', async () => {
    const started = metric('gitpod_image_builder_builds_started_total');
    const forced = await collectUpdates(service.build({ source: gitSource(), forceRebuild: true }));
    expect(forced[0]!.status).toBe('running');
    expect(forced.at(-1)!.status).toBe('done_success');
    expect(forced.at(-1)!.ref).toBe(first.at(-1)!.ref);
    expect(forced[0]!.info!.buildId).not.toBe(first[0]!.info!.buildId);
    expect(metric('gitpod_image_builder_builds_started_total')).toBe(started + 1);
  });

  it('the logs, by ref and by id, show the steps with refs and credentials censored', async () => {
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfilePath: 'secret/Dockerfile', contextPath: 'secret' }, GIT_PASSWORD) }));
    const done = updates.at(-1)!;
    expect(done.status, done.message).toBe('done_success');
    const byId = await collectText(service.logs({ buildId: done.info!.buildId }));
    const byRef = await collectText(service.logs({ buildRef: done.ref, censored: false }));
    expect(byRef).toBe(byId);
    expect(byId).toContain('starting image build');
    expect(byId).toMatch(/#\d+ \[stage-0 1\/1\] RUN echo/);
    expect(byId).toContain('the password is ***');
    expect(byId).toContain('image build done');
    for (const secret of [GIT_PASSWORD, done.ref, done.baseRef, `${suite.registry.host}/base-images`, `${suite.registry.host}/workspace-images`]) {
      expect(byId).not.toContain(secret);
    }
    const viaToken = await collectText(service.buildLog(done.info!.buildId, done.info!.logInfo!.headers[LOG_TOKEN_HEADER]));
    expect(viaToken).toBe(byId);
  });

  it('a failing Dockerfile → done_failure naming the error and its line', async () => {
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfilePath: 'failing/Dockerfile', contextPath: 'failing' }) }));
    const done = updates.at(-1)!;
    expect(done.status).toBe('done_failure');
    expect(done.message).toContain('Dockerfile:2');
    expect(done.message).toContain('missing.txt');
    expectInfo(done);
    const log = await collectText(service.logs({ buildId: done.info!.buildId }));
    expect(log).toContain('ERROR: build failed');
    expect(metric('gitpod_image_builder_builds_done_total{success="false"}')).toBeGreaterThanOrEqual(1);
  });

  it('an empty context_path is the Dockerfile\'s directory', async () => {
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfilePath: 'nested/Dockerfile', contextPath: '' }) }));
    expect(updates.at(-1)!.status, updates.at(-1)!.message).toBe('done_success');
  });

  it('a Dockerfile path that does not exist → done_failure saying so', async () => {
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfilePath: 'nope/Dockerfile', contextPath: '' }) }));
    expect(updates.at(-1)!.status).toBe('done_failure');
    expect(updates.at(-1)!.message).toContain('does not exist');
  });
});

describe('deduplication, logs and listing', () => {
  it('10 concurrent identical builds run once; every stream ends done_success', async () => {
    const started = metric('gitpod_image_builder_builds_started_total');
    const source = gitSource({ dockerfileVersion: 'dedup-1' });
    const streams = await Promise.all(Array.from({ length: 10 }, () => collectUpdates(service.build({ source }))));
    expect(metric('gitpod_image_builder_builds_started_total')).toBe(started + 1);
    const ids = new Set(streams.map((updates) => updates[0]!.info?.buildId));
    expect(ids.size).toBe(1);
    for (const updates of streams) {
      expect(updates[0]!.status).toBe('running');
      expect(updates.at(-1)!.status).toBe('done_success');
    }
  });

  it('ListBuilds shows a running build; a client that goes away does not stop it', async () => {
    const source = slowSource('slow-list');
    const controller = new AbortController();
    const iterator = service.build({ source }, controller.signal)[Symbol.asyncIterator]();
    const firstUpdate = (await iterator.next()).value as ImageBuildUpdate;
    expect(firstUpdate.status).toBe('running');
    const listed = service.listBuilds();
    expect(listed.map((b) => b.buildId)).toContain(firstUpdate.info!.buildId);
    expect(listed.find((b) => b.buildId === firstUpdate.info!.buildId)).toMatchObject({ status: 'running', ref: firstUpdate.ref });
    expect((await service.resolveWorkspaceImage({ source })).status).toBe('running');
    // A second caller joins the running build and sees running (with info) first.
    const joined = collectUpdates(service.build({ source }));
    controller.abort();
    expect((await iterator.next()).done).toBe(true);
    const updates = await joined;
    expect(updates[0]).toMatchObject({ status: 'running', info: { buildId: firstUpdate.info!.buildId } });
    expect(updates.at(-1)!.status).toBe('done_success');
    const log = await collectText(service.logs({ buildId: firstUpdate.info!.buildId }));
    expect(log).toMatch(/#\d+ started\n/);
    expect(log).toMatch(/#\d+ finished slow-list\n/);
    expect(service.listBuilds().map((b) => b.buildId)).not.toContain(firstUpdate.info!.buildId);
  });

  it('a log subscriber that arrives during the build gets the replay and the end', async () => {
    const source = slowSource('slow-logs');
    const iterator = service.build({ source })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as ImageBuildUpdate;
    const log = await collectText(service.logs({ buildRef: first.ref }));
    expect(log.startsWith('starting image build')).toBe(true);
    expect(log).toContain('image build done');
    let last = first;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) last = next.value;
    expect(last.status).toBe('done_success');
  });

  it('unknown builds → NOT_FOUND; the HTTP log needs the token', async () => {
    expect((await serviceErrorOf(service.logs({ buildId: '00000000-0000-4000-8000-000000000000' }))).status).toBe('NOT_FOUND');
    expect((await serviceErrorOf(service.logs({ buildRef: `${suite.registry.host}/workspace-images:nope` }))).status).toBe('NOT_FOUND');
    expect((await serviceErrorOf(service.logs({}))).status).toBe('NOT_FOUND');
    expect((await serviceErrorOf(service.buildLog('nope', 'x'))).status).toBe('NOT_FOUND');
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfileVersion: 'token-1' }) }));
    const id = updates[0]!.info!.buildId;
    expect((await serviceErrorOf(service.buildLog(id, undefined))).status).toBe('UNAUTHENTICATED');
    expect((await serviceErrorOf(service.buildLog(id, 'wrong'))).status).toBe('UNAUTHENTICATED');
  });
});

describe('other sources and request checks', () => {
  it('a ref source is resolved to its digest and copied to the workspace ref', async () => {
    const updates = await collectUpdates(service.build({ source: { kind: 'ref', ref: suite.busybox }, forceRebuild: true }));
    const done = updates.at(-1)!;
    expect(done.status, done.message).toBe('done_success');
    expect(done.baseRef).toBe(`${suite.registry.host}/busybox@${suite.busyboxDigest}`);
    expect(await digestOf(done.ref)).toBe(suite.busyboxDigest);
  });

  it('base_image_name_resolved: an existing workspace image answers at once', async () => {
    const name = `${suite.registry.host}/busybox@${suite.busyboxDigest}`;
    const updates = await collectUpdates(service.build({ source: gitSource({ dockerfileVersion: 'never-built' }), baseImageNameResolved: name }));
    expect(updates).toEqual([{ ref: workspaceImageRef(name, `${suite.registry.host}/workspace-images`), baseRef: name, status: 'done_success', message: '' }]);
  });

  it('base_image_name_resolved: otherwise the name is resolved and built from', async () => {
    const updates = await collectUpdates(service.build({ source: gitSource(), baseImageNameResolved: suite.busybox }));
    expect(updates.at(-1)).toMatchObject({ status: 'done_success', baseRef: `${suite.registry.host}/busybox@${suite.busyboxDigest}` });
  });

  it('builds from a download initializer', async () => {
    const digest = `sha256:${createHash('sha256').update(`FROM ${suite.busybox}\nLABEL from=download\n`).digest('hex')}`;
    const source: DockerfileBuildSource = {
      kind: 'file',
      dockerfilePath: 'Dockerfile',
      dockerfileVersion: '',
      contextPath: '',
      initializer: { kind: 'download', targetLocation: '/workspace', files: [{ url: `${files.url}/Dockerfile`, filePath: 'Dockerfile', digest }] },
    };
    const updates = await collectUpdates(service.build({ source }));
    expect(updates.at(-1)!.status, updates.at(-1)!.message).toBe('done_success');
  });

  it('rejects bad requests on the first next()', async () => {
    const bad = async (request: ImageBuildRequest): Promise<string> => (await serviceErrorOf(service.build(request))).status;
    expect(await bad({})).toBe('INVALID_ARGUMENT');
    expect((await serviceErrorOf(service.build({}))).message).toBe('build source is missing');
    expect(await bad({ source: { kind: 'ref', ref: 'Not A Ref' } })).toBe('INVALID_ARGUMENT');
    expect(await bad({ source: { kind: 'ref', ref: `${suite.registry.host}/missing:latest` } })).toBe('NOT_FOUND');
    expect(await bad({ source: gitSource({ initializer: { kind: 'snapshot' } }) })).toBe('INVALID_ARGUMENT');
    expect(await bad({ source: gitSource({ initializer: { kind: 'composite', initializers: [{ kind: 'prebuild' }] } }) })).toBe('INVALID_ARGUMENT');
    expect(await bad({ source: gitSource({ dockerfilePath: '' }) })).toBe('INVALID_ARGUMENT');
    expect((await serviceErrorOf(service.resolveWorkspaceImage({}))).status).toBe('INVALID_ARGUMENT');
  });

  it('exposes mk3\'s metrics and Stevedore\'s', () => {
    const text = service.metrics.render();
    expect(text).toContain('# TYPE gitpod_image_builder_builds_started_total counter');
    expect(text).toMatch(/gitpod_image_builder_builds_done_total\{success="true"\} \d+/);
    expect(text).toMatch(/stevedore_image_builder_build_duration_seconds_count\{success="true"\} \d+/);
    expect(text).toMatch(/stevedore_image_builder_blobs_total\{action="pushed"\} \d+/);
    expect(text).toContain('stevedore_image_builder_builds_deduplicated_total');
  });
});

describe('limits, the post-build check and shutdown', () => {
  it('a build whose workspace image cannot be found afterwards fails (orchestrator_test.go "double check")', async () => {
    // The workspace tag is pushed (PUT passes) but never found again (HEAD and GET answer 404).
    const tag = /\/v2\/workspace-images\/manifests\/[0-9a-f]{64}$/;
    const proxy = await startFaultProxy(suite.registry.url, [
      { method: 'HEAD', path: tag, times: 100, action: { kind: 'status', status: 404 } },
      { method: 'GET', path: tag, times: 100, action: { kind: 'status', status: 404 } },
    ]);
    const checked = new ImageBuilderService({
      config: suite.config({}, { orchestrator: { baseImageRepository: `${proxy.host}/base-images`, workspaceImageRepository: `${proxy.host}/workspace-images` } }),
      httpBaseUrl: 'http://127.0.0.1:1',
    });
    try {
      const updates = await collectUpdates(checked.build({ source: { kind: 'ref', ref: suite.busybox }, forceRebuild: true }));
      expect(updates[0]!.status).toBe('running');
      expect(updates.at(-1)).toMatchObject({ status: 'done_failure', message: 'image build did not produce a workspace image' });
    } finally {
      await checked.shutdown(0);
      await proxy.stop();
    }
  });

  it('a build over maxBuildDuration fails with the limit in the message', async () => {
    const limited = new ImageBuilderService({ config: suite.config({ maxBuildDuration: '1s' }), httpBaseUrl: 'http://127.0.0.1:1' });
    await limited.start();
    try {
      const source = slowSource('slow-limit');
      const updates = await collectUpdates(limited.build({ source }));
      expect(updates.at(-1)!.status).toBe('done_failure');
      expect(updates.at(-1)!.message).toContain('time limit of 1s');
    } finally {
      await limited.shutdown(0);
    }
  });

  it('shutdown cancels a running build cleanly and refuses new ones', async () => {
    const config = suite.config({ concurrency: 1 });
    const stopping = new ImageBuilderService({ config, httpBaseUrl: 'http://127.0.0.1:1' });
    await stopping.start();
    expect(stopping.ready).toBe(true);
    const source = slowSource('slow-shutdown');
    const queuedSource = slowSource('slow-queued');
    const iterator = stopping.build({ source })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as ImageBuildUpdate;
    const queued = collectUpdates(stopping.build({ source: queuedSource }));
    // Wait until the RUN step is really running.
    const log = stopping.logs({ buildId: first.info!.buildId })[Symbol.asyncIterator]();
    let seen = '';
    while (!seen.includes('started\n')) {
      const chunk = await log.next();
      if (chunk.done === true) throw new Error(`the build ended before its RUN step started:\n${seen}`);
      seen += Buffer.from(chunk.value).toString();
    }
    await stopping.shutdown(0);
    expect(stopping.ready).toBe(false);
    let last = first;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) last = next.value;
    expect(last.status).toBe('done_failure');
    expect(last.message).toContain('shutting down');
    const queuedUpdates = await queued;
    expect(queuedUpdates[0]!.message).toBe('waiting for a free build slot');
    expect(queuedUpdates.at(-1)!.status).toBe('done_failure');
    expect(await processesRunning('finished slow-shutdown')).toEqual([]);
    expect((await serviceErrorOf(stopping.build({ source }))).status).toBe('UNAVAILABLE');
    expect(await readdir(config.stevedore.workDir)).toEqual([]);
  });
});
