// `npm run bench -- service [--size 32M] [--files 500] [--runs 3] [--requests 1000] [--json FILE]`
//
// The gRPC service (`stevedore serve`'s server, started in this process) against a local
// docker-registry and a bare git repository reached over file://:
//   1. requests/s and p50/p99 latency of ResolveWorkspaceImage (the workspace image exists, so
//      every call is a resolve plus a registry existence check) and of Build for an image that is
//      already built (one done_success), with 1 and with 32 concurrent clients, each client on
//      its own HTTP/2 connection;
//   2. the time from Build to done_success for the build benchmark's workload (a) (FROM busybox +
//      COPY . /app, a context of SIZE bytes in FILES files of seeded random content), against the
//      same request made to the service library in this process (what the gRPC adapter adds) and
//      against the build engine's build() on the same checked-out context (what the service adds:
//      cloning the context from git, existence checks, tagging the workspace image), to fresh
//      repositories each run, alternating, medians of RUNS. A plain `git clone --depth 1` of the
//      repository is timed too, for scale.
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { startServer, type StevedoreServer } from '../src/api/index.js';
import type { ImageBuilderClient } from '../src/api/gen/builder/ImageBuilder.js';
import type { BuildSource } from '../src/api/gen/builder/BuildSource.js';
import { build, closeDeflateWorkers, parseServiceConfig, type ImageBuildSource } from '../src/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../test/fixtures/make-busybox.js';
import { run as runProcess, startRegistry, tempDir, type TestRegistry } from '../test/harness/index.js';
import { machineNote, parseArgs, parseSize, printTable, writeJson } from './lib/report.js';

const PROTO_DIR = join(import.meta.dirname, '../src/api/proto');

interface LatencyRow {
  readonly rpc: string;
  readonly clients: number;
  readonly requests: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Medians, seconds. */
interface OverheadRow {
  /** src/build's build() on the checked-out context. */
  readonly buildSeconds: number;
  /** ImageBuilderService.build() in this process: git clone, existence checks, build, workspace tag, re-check. */
  readonly serviceSeconds: number;
  /** The same through gRPC: Build until done_success. */
  readonly grpcSeconds: number;
  /** A plain `git clone --depth 1` of the context, for scale: the service clones, build() does not. */
  readonly gitCloneSeconds: number;
}


/** `files` files of seeded pseudo-random bytes (AES-256-CTR of zeros) totalling `bytes`, 100 per directory. */
async function writeTree(dir: string, bytes: number, files: number): Promise<void> {
  const cipher = createCipheriv('aes-256-ctr', createHash('sha256').update('stevedore-bench-service').digest(), Buffer.alloc(16));
  const size = Math.max(1, Math.floor(bytes / files));
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${i}.bin`), cipher.update(Buffer.alloc(size)));
  }
}

const GIT_ENV = { ...process.env, GIT_AUTHOR_NAME: 'bench', GIT_AUTHOR_EMAIL: 'bench@stevedore.invalid', GIT_COMMITTER_NAME: 'bench', GIT_COMMITTER_EMAIL: 'bench@stevedore.invalid' };

/** The context as a git repository (bare, file://) and as a checked-out directory for the library. */
async function makeContext(dir: string, base: string, bytes: number, files: number): Promise<{ context: string; source: BuildSource; remote: string }> {
  const context = join(dir, 'context');
  await writeTree(join(context, 'data'), bytes, files);
  await writeFile(join(context, 'Dockerfile'), `FROM ${base}\nCOPY . /app\n`);
  const git = (cwd: string, ...args: string[]) => runProcess('git', args, { cwd, env: GIT_ENV });
  await git(context, 'init', '--quiet', '--initial-branch=main');
  await git(context, 'add', '.');
  await git(context, 'commit', '--quiet', '-m', 'context');
  const commit = (await git(context, 'rev-parse', 'HEAD')).stdout.trim();
  const bare = join(dir, 'context.git');
  await git(dir, 'clone', '--quiet', '--bare', context, bare);
  const source: BuildSource = {
    file: {
      source: { git: { remote_uri: `file://${bare}`, target_mode: 'REMOTE_COMMIT', clone_taget: commit, checkout_location: '.', config: { authentication: 'NO_AUTH' } } },
      dockerfile_path: 'Dockerfile',
      context_path: '.',
      dockerfile_version: commit,
    },
  };
  return { context, source, remote: `file://${bare}` };
}

async function timeGitClone(remote: string, into: string): Promise<number> {
  const started = process.hrtime.bigint();
  await runProcess('git', ['clone', '--quiet', '--depth', '1', remote, into], { env: GIT_ENV });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await rm(into, { recursive: true, force: true });
  return seconds;
}

async function startService(registry: TestRegistry, scratch: string, name: string): Promise<StevedoreServer> {
  const { config } = parseServiceConfig({
    orchestrator: { baseImageRepository: `${registry.host}/${name}/base`, workspaceImageRepository: `${registry.host}/${name}/workspace` },
    server: { services: { grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' } } },
    stevedore: { workDir: join(scratch, `${name}-work`), cacheDir: join(scratch, `${name}-cache`), concurrency: 2 },
  });
  return startServer(config);
}

function imageBuilderClients(address: string, count: number): ImageBuilderClient[] {
  const grpcObject = loadPackageDefinition(loadSync('imgbuilder.proto', { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] }));
  const constructor = ((grpcObject['builder'] as GrpcObject)['ImageBuilder'] as ServiceClientConstructor);
  // A local subchannel pool per client: each has its own connection, as separate callers would.
  return Array.from({ length: count }, () => new constructor(address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as ImageBuilderClient);
}

function resolveWorkspace(client: ImageBuilderClient, source: BuildSource): Promise<void> {
  return new Promise((resolve, reject) => {
    client.ResolveWorkspaceImage({ source }, (err: ServiceError | null, response) => {
      if (err) reject(err);
      else if (response?.status !== 'done_success') reject(new Error(`expected done_success, got ${response?.status}`));
      else resolve();
    });
  });
}

/** One Build call to its end; resolves with its last status. */
function buildCall(client: ImageBuilderClient, source: BuildSource, forceRebuild = false): Promise<string> {
  return new Promise((resolve, reject) => {
    let last = '';
    const stream = client.Build({ source, force_rebuild: forceRebuild });
    stream.on('data', (m: { status: string; message: string }) => {
      last = m.status;
      if (m.status === 'done_failure') reject(new Error(`the build failed: ${m.message}`));
    });
    stream.on('error', reject);
    stream.on('end', () => resolve(last));
  });
}

/** The library's form of the benchmark's git source (what the adapter's codec produces). */
function decodedSource(source: BuildSource): ImageBuildSource {
  const file = source.file!;
  const git = file.source!.git!;
  return {
    kind: 'file',
    initializer: {
      kind: 'git',
      remoteUri: git.remote_uri!,
      upstreamRemoteUri: '',
      targetMode: 'REMOTE_COMMIT',
      cloneTarget: git.clone_taget!,
      checkoutLocation: git.checkout_location!,
      config: { customConfig: {}, authentication: 'NO_AUTH', authUser: '', authPassword: '', authOts: '' },
      fullClone: false,
    },
    dockerfileVersion: file.dockerfile_version!,
    dockerfilePath: file.dockerfile_path!,
    contextPath: file.context_path!,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))]!;
}

/** `requests` calls spread over one concurrent loop per worker; throughput and latency percentiles. */
async function measure<W>(rpc: string, workers: readonly W[], requests: number, call: (worker: W) => Promise<unknown>): Promise<LatencyRow> {
  const latencies: number[] = [];
  let issued = 0;
  const start = process.hrtime.bigint();
  await Promise.all(
    workers.map(async (worker) => {
      while (issued < requests) {
        issued++;
        const t0 = process.hrtime.bigint();
        await call(worker);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  return { rpc, clients: workers.length, requests, perSecond: requests / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

async function timeLibraryBuild(context: string, registry: TestRegistry, scratch: string, name: string): Promise<number> {
  const started = process.hrtime.bigint();
  await build({
    context,
    outputs: [{ type: 'registry', reference: `${registry.host}/${name}/app:latest` }],
    cacheDir: join(scratch, `${name}-cache`),
    workDir: scratch,
  }).result;
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** The service library alone, in this process: what the gRPC adapter adds is the difference to timeServiceBuild. */
async function timeServiceLibraryBuild(source: ImageBuildSource, registry: TestRegistry, scratch: string, name: string): Promise<number> {
  const server = await startService(registry, scratch, name);
  try {
    const started = process.hrtime.bigint();
    let last: string | undefined;
    for await (const update of server.service.build({ source })) last = update.status;
    if (last !== 'done_success') throw new Error(`the service build ended with ${last}`);
    return Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    await server.close(0);
  }
}

async function timeServiceBuild(source: BuildSource, registry: TestRegistry, scratch: string, name: string): Promise<number> {
  const server = await startService(registry, scratch, name);
  const [client] = imageBuilderClients(server.grpcAddress, 1);
  try {
    const started = process.hrtime.bigint();
    const last = await buildCall(client!, source);
    if (last !== 'done_success') throw new Error(`the service build ended with ${last}`);
    return Number(process.hrtime.bigint() - started) / 1e9;
  } finally {
    client!.close();
    await server.close(0);
  }
}

function median(values: readonly number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

export async function run(args: string[]): Promise<void> {
  const flags = parseArgs(args);
  const bytes = parseSize(flags.get('size') ?? '32M');
  const files = Number(flags.get('files') ?? 500);
  const runs = Math.max(1, Number(flags.get('runs') ?? 3));
  const requests = Math.max(32, Number(flags.get('requests') ?? 1000));
  // A tmpfs when there is one, so the registry's fsyncs do not dominate.
  const parent = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const scratch = await tempDir('stevedore-bench-service-', parent);
  const registry = await startRegistry({ parentDirectory: parent });
  try {
    const base = `${registry.host}/library/busybox:latest`;
    await pushBusyboxImage(await makeBusyboxImage({ dir: join(scratch.path, 'busybox') }), base);
    console.log(`generating the context (${(bytes / 1024 ** 2).toFixed(0)} MiB in ${files} files) and its git repository...`);
    const { context, source, remote } = await makeContext(scratch.path, base, bytes, files);

    // 1. Throughput and latency against one server whose workspace image exists.
    const latency: LatencyRow[] = [];
    const server = await startService(registry, scratch.path, 'latency');
    try {
      const clients = imageBuilderClients(server.grpcAddress, 32);
      try {
        if ((await buildCall(clients[0]!, source)) !== 'done_success') throw new Error('the warm-up build failed');
        for (const count of [1, 32]) {
          const some = clients.slice(0, count);
          // A short warm-up so connections and JIT are not measured.
          await measure('warm-up', some, count * 4, (c) => resolveWorkspace(c, source));
          latency.push(await measure('ResolveWorkspaceImage', some, count === 1 ? requests / 4 : requests, (c) => resolveWorkspace(c, source)));
          latency.push(await measure('Build (already built)', some, count === 1 ? requests / 4 : requests, (c) => buildCall(c, source)));
          // The same question asked of the library in this process: what the adapter adds.
          const direct = decodedSource(source);
          latency.push(
            await measure('ResolveWorkspaceImage, library only', Array.from({ length: count }), count === 1 ? requests / 4 : requests, async () => {
              if ((await server.service.resolveWorkspaceImage({ source: direct })).status !== 'done_success') throw new Error('expected done_success');
            }),
          );
        }
      } finally {
        for (const client of clients) client.close();
      }
    } finally {
      await server.close(0);
    }

    // 2. A real build: through gRPC, through the service library, through build() alone, alternating.
    const buildRuns: number[] = [];
    const serviceRuns: number[] = [];
    const grpcRuns: number[] = [];
    const cloneRuns: number[] = [];
    for (let i = 0; i < runs; i++) {
      buildRuns.push(await timeLibraryBuild(context, registry, scratch.path, `build-${i}`));
      serviceRuns.push(await timeServiceLibraryBuild(decodedSource(source), registry, scratch.path, `service-${i}`));
      grpcRuns.push(await timeServiceBuild(source, registry, scratch.path, `grpc-${i}`));
      cloneRuns.push(await timeGitClone(remote, join(scratch.path, `clone-${i}`)));
    }
    const overhead: OverheadRow = { buildSeconds: median(buildRuns), serviceSeconds: median(serviceRuns), grpcSeconds: median(grpcRuns), gitCloneSeconds: median(cloneRuns) };
    const percent = (over: number, under: number): string => `${((over / under - 1) * 100).toFixed(1)}%`;

    printTable(
      ['rpc', 'clients', 'requests', 'req/s', 'p50 ms', 'p99 ms'],
      latency.map((r) => [r.rpc, String(r.clients), String(r.requests), r.perSecond.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2)]),
    );
    console.log('');
    printTable(
      ['build (a): FROM busybox + COPY . /app', 'build() s', 'service library s', 'gRPC Build s', 'gRPC vs service library', 'gRPC vs build()', 'git clone s'],
      [
        [
          `${(bytes / 1024 ** 2).toFixed(0)} MiB in ${files} files, median of ${runs}`,
          overhead.buildSeconds.toFixed(2),
          overhead.serviceSeconds.toFixed(2),
          overhead.grpcSeconds.toFixed(2),
          percent(overhead.grpcSeconds, overhead.serviceSeconds),
          percent(overhead.grpcSeconds, overhead.buildSeconds),
          overhead.gitCloneSeconds.toFixed(2),
        ],
      ],
    );
    const json = flags.get('json');
    if (json !== undefined) await writeJson(json, { benchmark: 'service', machine: machineNote(), size: bytes, files, runs, latency, overhead, buildRuns, serviceRuns, grpcRuns, cloneRuns });
  } finally {
    await registry.stop();
    await scratch.remove();
    await closeDeflateWorkers();
  }
}
