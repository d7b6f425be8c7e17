// End to end over a real gRPC connection on 127.0.0.1: a client made from the .proto files, the
// server started from a parsed configuration, a real registry, a bare git repository via file://.
import { createHash } from 'node:crypto';
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResponse__Output } from '../../src/api/gen/builder/BuildResponse.js';
import type { BuildRequest } from '../../src/api/gen/builder/BuildRequest.js';
import { copyGraph, parseReference, RegistryClientPool } from '../../src/index.js';
import { makeImage, makeIndex, startRegistry, storeOf, type TestRegistry } from '../harness/index.js';
import { collect, gitSource, metricsText, sample, startApiSuite, unary, unaryError, type ApiSuite } from './helpers.js';

const PASSWORD = 's3cr3t-pw-4711';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let suite: ApiSuite;

beforeAll(async () => {
  suite = await startApiSuite({
    files: {
      'Dockerfile': 'FROM ${BASE}\nCOPY hello.txt /hello.txt\n',
      'hello.txt': 'hello from git\n',
      'broken/Dockerfile': 'FROM ${BASE}\nCOPY missing.txt /missing.txt\n',
      // Long enough to be seen running; its log shows the git password unless censored.
      'slow/Dockerfile': `FROM \${BASE}\nRUN echo "the password is ${PASSWORD}" && sleep 2\n`,
    },
    subassemblies: true,
    maxReceiveMessageBytes: 256 * 1024,
  });
});

afterAll(async () => {
  await suite?.stop();
});

function build(request: BuildRequest): Promise<{ messages: BuildResponse__Output[]; error: ServiceError | undefined }> {
  return collect(suite.clients.imageBuilder.Build(request));
}

/** The `name@digest` a reference resolves to, through the API. */
async function resolve(ref: string): Promise<string> {
  const { imageBuilder } = suite.clients;
  return (await unary(imageBuilder, imageBuilder.ResolveBaseImage, { ref })).ref;
}

describe('health and reflection', () => {
  it('reports every service SERVING', async () => {
    const { health } = suite.clients;
    for (const service of ['', 'builder.ImageBuilder', 'builder.SubassemblyService']) {
      const answer = await unary(health, health.Check, { service });
      expect(answer.status, service).toBe('SERVING');
    }
  });

  it('lists the services and describes ImageBuilder with its initializer types', async () => {
    const call = suite.clients.reflection.ServerReflectionInfo();
    const answers: Record<string, unknown>[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on('data', (m: Record<string, unknown>) => answers.push(m));
      call.on('end', resolve);
      call.on('error', reject);
    });
    call.write({ list_services: '*' });
    call.write({ file_containing_symbol: 'builder.ImageBuilder' });
    call.end();
    await done;
    const services = (answers[0]!['list_services_response'] as { service: { name: string }[] }).service.map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(['builder.ImageBuilder', 'builder.SubassemblyService', 'grpc.health.v1.Health']));
    const files = (answers[1]!['file_descriptor_response'] as { file_descriptor_proto: Buffer[] }).file_descriptor_proto;
    const text = Buffer.concat(files).toString('latin1');
    // The builder file and the contentservice file it depends on, wire names intact.
    expect(text).toContain('ImageBuilder');
    expect(text).toContain('clone_taget');
  });
});

describe('ResolveBaseImage', () => {
  let auth: TestRegistry;
  beforeAll(async () => {
    auth = await startRegistry({ auth: 'basic' });
  });
  afterAll(async () => {
    await auth?.stop();
  });

  it('pins a tag and a digest to name@digest', async () => {
    const pinned = await resolve(suite.busybox);
    expect(pinned).toMatch(new RegExp(`^${suite.registry.host}/busybox@sha256:[0-9a-f]{64}$`));
    expect(await resolve(pinned)).toBe(pinned);
  });

  it('picks the linux/amd64 image of an index', async () => {
    const images = await Promise.all([{ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'amd64' }].map((platform) => makeImage({ platform })));
    const index = makeIndex(images);
    const pool = new RegistryClientPool();
    try {
      const repository = pool.repository(parseReference(`${suite.registry.host}/multi:latest`));
      await copyGraph(await storeOf(images, index), repository, index.descriptor);
      await repository.tag(index.descriptor, 'latest');
    } finally {
      await pool.close();
    }
    expect(await resolve(`${suite.registry.host}/multi:latest`)).toBe(`${suite.registry.host}/multi@${images[1]!.descriptor.digest}`);
  });

  it('answers NOT_FOUND, UNAUTHENTICATED and INVALID_ARGUMENT', async () => {
    const { imageBuilder } = suite.clients;
    const call = (ref: string) => unaryError(imageBuilder, imageBuilder.ResolveBaseImage, { ref });
    expect((await call(`${suite.registry.host}/nothing-here:latest`)).code).toBe(status.NOT_FOUND);
    expect((await call(`${auth.host}/private/image:latest`)).code).toBe(status.UNAUTHENTICATED);
    const malformed = await call('Not A Reference!');
    expect(malformed.code).toBe(status.INVALID_ARGUMENT);
    expect(malformed.details).not.toBe('');
  });
});

describe('Build, ResolveWorkspaceImage, Logs, ListBuilds', () => {
  let first: BuildResponse__Output[];

  it('resolves the workspace image as unknown before the build', async () => {
    const { imageBuilder } = suite.clients;
    const answer = await unary(imageBuilder, imageBuilder.ResolveWorkspaceImage, { source: gitSource(suite.repo) });
    expect(answer.status).toBe('unknown');
    expect(answer.ref).toMatch(new RegExp(`^${suite.registry.host}/workspace-images:[0-9a-f]{64}$`));
  });

  it('streams running with info, then done_success', async () => {
    const { messages, error } = await build({ source: gitSource(suite.repo), triggered_by: 'api-test' });
    expect(error).toBeUndefined();
    first = messages;
    const running = messages[0]!;
    expect(running.status).toBe('running');
    expect(running.info?.build_id).toMatch(UUID);
    expect(running.info?.ref).toBe(running.ref);
    expect(running.info?.base_ref).toMatch(new RegExp(`^${suite.registry.host}/base-images:[0-9a-f]{64}$`));
    expect(Number(running.info?.started_at)).toBeGreaterThan(1_600_000_000);
    expect(running.info?.log_info?.url).toBe(`${suite.server.httpUrl}/builds/${running.info!.build_id}/log`);
    expect(Object.keys(running.info?.log_info?.headers ?? {})).toEqual(['x-gitpod-owner-token']);
    const last = messages.at(-1)!;
    expect(last).toMatchObject({ status: 'done_success', ref: running.ref, base_ref: running.info!.base_ref });
    // The workspace image is the base image under a second name.
    expect((await resolve(running.ref)).split('@')[1]).toBe((await resolve(running.info!.base_ref)).split('@')[1]);
  });

  it('resolves the workspace image as done_success after it', async () => {
    const { imageBuilder } = suite.clients;
    const answer = await unary(imageBuilder, imageBuilder.ResolveWorkspaceImage, { source: gitSource(suite.repo) });
    expect(answer).toMatchObject({ status: 'done_success', ref: first[0]!.ref });
  });

  it('answers a second Build with a single done_success and no info', async () => {
    const { messages, error } = await build({ source: gitSource(suite.repo) });
    expect(error).toBeUndefined();
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ status: 'done_success', ref: first[0]!.ref, base_ref: first[0]!.info!.base_ref, info: null });
  });

  it('builds again with force_rebuild', async () => {
    const { messages, error } = await build({ source: gitSource(suite.repo), force_rebuild: true });
    expect(error).toBeUndefined();
    expect(messages[0]!.status).toBe('running');
    expect(messages[0]!.info!.build_id).not.toBe(first[0]!.info!.build_id);
    expect(messages.at(-1)!.status).toBe('done_success');
  });

  it('ends a failing Dockerfile with done_failure naming the error and its line', async () => {
    const { messages, error } = await build({ source: gitSource(suite.repo, { dockerfilePath: 'broken/Dockerfile' }) });
    expect(error).toBeUndefined();
    expect(messages[0]!.status).toBe('running');
    const last = messages.at(-1)!;
    expect(last.status).toBe('done_failure');
    expect(last.message).toContain('missing.txt');
    expect(last.message).toMatch(/Dockerfile:2\b/);
  });

  it('lists a build while it runs, censors its log, and serves it to token holders only', async () => {
    const { imageBuilder } = suite.clients;
    const source = gitSource(suite.repo, { dockerfilePath: 'slow/Dockerfile' });
    source.file!.source!.git!.config = { authentication: 'BASIC_AUTH', auth_user: 'builder', auth_password: PASSWORD };
    const stream = imageBuilder.Build({ source });
    const finished = collect(stream);
    const running = await new Promise<BuildResponse__Output>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    expect(running.status).toBe('running');
    const info = running.info!;

    const listed = await unary(imageBuilder, imageBuilder.ListBuilds, {});
    expect(listed.builds.map((b) => b.build_id)).toContain(info.build_id);
    expect(listed.builds.find((b) => b.build_id === info.build_id)).toMatchObject({ status: 'running', ref: running.ref });

    // The HTTP log endpoint: 401 without the token, the log with it.
    const url = info.log_info!.url;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { 'x-gitpod-owner-token': 'wrong' } })).status).toBe(401);
    const authorised = await fetch(url, { headers: info.log_info!.headers });
    expect(authorised.status).toBe(200);
    const httpLog = await authorised.text();

    const { messages } = await finished;
    expect(messages.at(-1)!.status).toBe('done_success');
    const after = await unary(imageBuilder, imageBuilder.ListBuilds, {});
    expect(after.builds.map((b) => b.build_id)).not.toContain(info.build_id);

    // Logs by id and by workspace ref replay the whole (finished, retained) build.
    const byId = await collect(imageBuilder.Logs({ build_id: info.build_id }));
    const byRef = await collect(imageBuilder.Logs({ build_ref: running.ref, censored: false }));
    expect(byId.error).toBeUndefined();
    expect(byRef.error).toBeUndefined();
    for (const text of [httpLog, Buffer.concat(byId.messages.map((m) => m.content)).toString(), Buffer.concat(byRef.messages.map((m) => m.content)).toString()]) {
      expect(text).toContain('the password is');
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(running.ref);
      expect(text).not.toContain(info.base_ref);
      expect(text).not.toContain(`${suite.registry.host}/workspace-images`);
    }
  });

  it('answers NOT_FOUND for logs of an unknown build', async () => {
    const { imageBuilder } = suite.clients;
    for (const request of [{ build_id: '00000000-0000-4000-8000-000000000000' }, { build_ref: `${suite.registry.host}/workspace-images:unknown` }]) {
      const { error } = await collect(imageBuilder.Logs(request));
      expect(error?.code, JSON.stringify(request)).toBe(status.NOT_FOUND);
    }
    expect((await fetch(`${suite.server.httpUrl}/builds/00000000-0000-4000-8000-000000000000/log`, { headers: { 'x-gitpod-owner-token': 'x' } })).status).toBe(404);
  });
});

describe('bad input', () => {
  it('answers INVALID_ARGUMENT for a missing source, a malformed ref and an unsupported initializer', async () => {
    const missing = await build({});
    expect(missing.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(missing.error?.details).toMatch(/source/);
    expect(missing.messages).toEqual([]);

    const malformed = await build({ source: { ref: { ref: 'Not A Reference!' } } });
    expect(malformed.error?.code).toBe(status.INVALID_ARGUMENT);

    const snapshot = await build({ source: { file: { source: { snapshot: { snapshot: 'snap' } }, dockerfile_path: 'Dockerfile', context_path: '.' } } });
    expect(snapshot.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(snapshot.error?.details).toMatch(/snapshot/);

    const { imageBuilder } = suite.clients;
    const workspace = await unaryError(imageBuilder, imageBuilder.ResolveWorkspaceImage, {});
    expect(workspace.code).toBe(status.INVALID_ARGUMENT);
  });

  it('answers RESOURCE_EXHAUSTED for a request over the size limit', async () => {
    const huge = await build({ source: gitSource(suite.repo), triggered_by: 'x'.repeat(512 * 1024) });
    expect(huge.error?.code).toBe(status.RESOURCE_EXHAUSTED);
  });
});

describe('SubassemblyService and the download endpoint', () => {
  it('creates a subassembly, then serves the file whose digest it reports, with ranges', async () => {
    const { subassemblies } = suite.clients;
    const created = await unary(subassemblies, subassemblies.CreateSubassembly, { oci_reference: suite.busybox });
    expect(['SUBASSEMBLY_PHASE_CREATING', 'SUBASSEMBLY_PHASE_AVAILABLE']).toContain(created.status?.phase);

    let current = created.status!;
    for (let i = 0; i < 300 && current.phase === 'SUBASSEMBLY_PHASE_CREATING'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      current = (await unary(subassemblies, subassemblies.GetSubassembly, { oci_reference: suite.busybox })).status!;
    }
    expect(current.phase, current.message).toBe('SUBASSEMBLY_PHASE_AVAILABLE');
    expect(current.url).toBe(`${suite.server.httpUrl}/subassemblies/${current.digest}`);
    const manifest = JSON.parse(Buffer.from(current.manifest).toString('utf8')) as { mediaType: string; file: { digest: string; size: number } };
    expect(manifest.mediaType).toBe('application/vnd.stevedore.subassembly.manifest.v1+json');
    expect(manifest.file.digest).toBe(current.digest);

    const whole = await fetch(current.url);
    expect(whole.status).toBe(200);
    const bytes = Buffer.from(await whole.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(current.digest);
    expect(bytes.length).toBe(manifest.file.size);

    const part = await fetch(current.url, { headers: { range: 'bytes=10-109' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 10-109/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(10, 110))).toBe(true);

    const tail = await fetch(current.url, { headers: { range: 'bytes=-16' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 16))).toBe(true);

    const head = await fetch(current.url, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe(String(bytes.length));
    const outside = await fetch(current.url, { headers: { range: `bytes=${bytes.length}-` } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${bytes.length}`);

    // Idempotent: the same source answers AVAILABLE at once.
    const again = await unary(subassemblies, subassemblies.CreateSubassembly, { oci_reference: suite.busybox });
    expect(again.status).toMatchObject({ phase: 'SUBASSEMBLY_PHASE_AVAILABLE', digest: current.digest });
  });

  it('answers NOT_FOUND and INVALID_ARGUMENT', async () => {
    const { subassemblies } = suite.clients;
    expect((await unaryError(subassemblies, subassemblies.GetSubassembly, { oci_reference: `${suite.registry.host}/never/created:1` })).code).toBe(status.NOT_FOUND);
    expect((await unaryError(subassemblies, subassemblies.CreateSubassembly, { oci_reference: `${suite.registry.host}/nothing-here:latest` })).code).toBe(status.NOT_FOUND);
    expect((await unaryError(subassemblies, subassemblies.CreateSubassembly, { oci_reference: 'Not A Reference!' })).code).toBe(status.INVALID_ARGUMENT);
    expect((await fetch(`${suite.server.httpUrl}/subassemblies/sha256:${'0'.repeat(64)}`)).status).toBe(404);
    expect((await fetch(`${suite.server.httpUrl}/subassemblies/not-a-digest`)).status).toBe(400);
  });
});

describe('HTTP listener', () => {
  it('answers /live and /ready', async () => {
    expect((await fetch(`${suite.server.httpUrl}/live`)).status).toBe(200);
    expect((await fetch(`${suite.server.httpUrl}/ready`)).status).toBe(200);
  });

  it("serves mk3's metric names and go-grpc-prometheus's on /metrics", async () => {
    const text = await metricsText(suite.server);
    expect(text).toContain('# TYPE gitpod_image_builder_builds_started_total counter');
    expect(text).toContain('# TYPE gitpod_image_builder_builds_done_total counter');
    expect(text).toContain('# TYPE grpc_server_handling_seconds histogram');
    const build = { grpc_service: 'builder.ImageBuilder', grpc_method: 'Build', grpc_type: 'server_stream' };
    expect(sample(text, 'grpc_server_started_total', build)).toBeGreaterThan(0);
    expect(sample(text, 'grpc_server_handled_total', { ...build, grpc_code: 'OK' })).toBeGreaterThan(0);
    expect(sample(text, 'grpc_server_handled_total', { ...build, grpc_code: 'InvalidArgument' })).toBeGreaterThan(0);
    expect(sample(text, 'grpc_server_handled_total', { grpc_method: 'ResolveBaseImage', grpc_code: 'NotFound' })).toBeGreaterThan(0);
    expect(sample(text, 'grpc_server_handling_seconds_count', { grpc_method: 'ResolveBaseImage' })).toBeGreaterThan(0);
    expect(sample(text, 'grpc_server_handled_total', { grpc_code: 'Unknown' })).toBe(0);
    expect(sample(text, 'gitpod_image_builder_builds_done_total', { success: 'false' })).toBeGreaterThan(0);
  });

  it('answers 404 and 405 for what it does not serve', async () => {
    expect((await fetch(`${suite.server.httpUrl}/nope`)).status).toBe(404);
    expect((await fetch(`${suite.server.httpUrl}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});
