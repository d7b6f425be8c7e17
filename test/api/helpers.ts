// Shared pieces of the gRPC adapter's tests: a real registry with a busybox base, a bare git
// repository reached over file://, the server started from a parsed configuration, and clients
// made from the .proto files by proto-loader (the path an existing Gitpod client takes), not from
// the server's generated descriptor.
import { createRequire } from 'node:module';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, loadPackageDefinition, type ChannelCredentials, type Client, type ClientDuplexStream, type ClientReadableStream, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { startServer, type StevedoreServer } from '../../src/api/index.js';
import type { ImageBuilderClient } from '../../src/api/gen/builder/ImageBuilder.js';
import type { SubassemblyServiceClient } from '../../src/api/gen/builder/SubassemblyService.js';
import type { BuildSource } from '../../src/api/gen/builder/BuildSource.js';
import { parseServiceConfig } from '../../src/index.js';
import { makeBusyboxImage, pushBusyboxImage } from '../fixtures/make-busybox.js';
import { run, startRegistry, tempDir, type TestRegistry } from '../harness/index.js';

export const PROTO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/api/proto');

/** How a Gitpod client decodes: wire names, enums by name, int64 as strings, defaults, oneof names. */
const CLIENT_OPTIONS: Options = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_DIR] };

function constructorOf(grpcObject: GrpcObject, path: string): ServiceClientConstructor {
  let node: unknown = grpcObject;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as ServiceClientConstructor;
}

export interface HealthClient extends Client {
  Check(request: { service: string }, callback: (err: ServiceError | null, response?: { status: string }) => void): void;
}

export interface ReflectionClient extends Client {
  ServerReflectionInfo(): ClientDuplexStream<object, Record<string, unknown>>;
}

export interface Clients {
  readonly imageBuilder: ImageBuilderClient;
  readonly subassemblies: SubassemblyServiceClient;
  /** grpc.health.v1.Health, from grpc-health-check's own .proto. */
  readonly health: HealthClient;
  /** grpc.reflection.v1.ServerReflection, from @grpc/reflection's own .proto. */
  readonly reflection: ReflectionClient;
  close(): void;
}

export function connect(address: string, channel: ChannelCredentials = credentials.createInsecure()): Clients {
  const builder = loadPackageDefinition(loadSync(['imgbuilder.proto', 'subassembly.proto'], CLIENT_OPTIONS));
  const health = loadPackageDefinition(loadSync(healthProtoPath, CLIENT_OPTIONS));
  const require = createRequire(import.meta.url);
  const reflectionProto = join(dirname(require.resolve('@grpc/reflection')), '../proto/grpc/reflection/v1/reflection.proto');
  const reflection = loadPackageDefinition(loadSync(reflectionProto, CLIENT_OPTIONS));
  const clients = {
    imageBuilder: new (constructorOf(builder, 'builder.ImageBuilder'))(address, channel) as unknown as ImageBuilderClient,
    subassemblies: new (constructorOf(builder, 'builder.SubassemblyService'))(address, channel) as unknown as SubassemblyServiceClient,
    health: new (constructorOf(health, 'grpc.health.v1.Health'))(address, channel) as unknown as HealthClient,
    reflection: new (constructorOf(reflection, 'grpc.reflection.v1.ServerReflection'))(address, channel) as unknown as ReflectionClient,
  };
  return { ...clients, close: () => Object.values(clients).forEach((c) => c.close()) };
}

type UnaryMethod<Req, Res> = (request: Req, callback: (err: ServiceError | null, response?: Res) => void) => unknown;

/** A unary call as a promise (rejects with the grpc-js ServiceError: `code`, `details`). */
export function unary<Req, Res>(client: object, method: UnaryMethod<Req, Res>, request: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, (err, response) => (err ? reject(err) : resolve(response as Res)));
  });
}

/** A unary call expected to fail: its error. */
export async function unaryError<Req, Res>(client: object, method: UnaryMethod<Req, Res>, request: Req): Promise<ServiceError> {
  try {
    await unary(client, method, request);
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('the call succeeded but was expected to fail');
}

/** Every message of a server stream and how it ended (error undefined = status OK). */
export function collect<T>(stream: ClientReadableStream<T>): Promise<{ messages: T[]; error: ServiceError | undefined }> {
  return new Promise((resolve) => {
    const messages: T[] = [];
    stream.on('data', (m: T) => messages.push(m));
    stream.on('error', (error: ServiceError) => resolve({ messages, error }));
    stream.on('end', () => resolve({ messages, error: undefined }));
  });
}

export interface GitRepository {
  /** `file:///...` of the bare repository. */
  readonly url: string;
  /** The commit of `main` holding the files. */
  readonly commit: string;
}

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Stevedore Test',
  GIT_AUTHOR_EMAIL: 'test@stevedore.invalid',
  GIT_COMMITTER_NAME: 'Stevedore Test',
  GIT_COMMITTER_EMAIL: 'test@stevedore.invalid',
  GIT_CONFIG_NOSYSTEM: '1',
  HOME: '/nonexistent',
};

/** A bare git repository (reached as file://) whose `main` holds `files` in one commit. */
export async function makeGitRepository(dir: string, files: Record<string, string>): Promise<GitRepository> {
  const work = join(dir, 'work');
  const bare = join(dir, 'repo.git');
  await mkdir(work, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(work, name)), { recursive: true });
    await writeFile(join(work, name), content);
  }
  const git = (cwd: string, ...args: string[]) => run('git', args, { cwd, env: GIT_ENV });
  await git(work, 'init', '--quiet', '--initial-branch=main');
  await git(work, 'add', '.');
  await git(work, 'commit', '--quiet', '-m', 'context');
  const commit = (await git(work, 'rev-parse', 'HEAD')).stdout.trim();
  await git(dir, 'clone', '--quiet', '--bare', work, bare);
  return { url: `file://${bare}`, commit };
}

/** A Dockerfile source as the Gitpod server sends it: one git initializer at the context commit. */
export function gitSource(repo: GitRepository, options: { dockerfilePath?: string; contextPath?: string; dockerfileVersion?: string } = {}): BuildSource {
  return {
    file: {
      source: {
        git: {
          remote_uri: repo.url,
          target_mode: 'REMOTE_COMMIT',
          clone_taget: repo.commit,
          checkout_location: '.',
          config: { authentication: 'NO_AUTH' },
        },
      },
      dockerfile_path: options.dockerfilePath ?? 'Dockerfile',
      context_path: options.contextPath ?? '.',
      dockerfile_version: options.dockerfileVersion ?? 'v1',
    },
  };
}

export interface ApiSuite {
  readonly registry: TestRegistry;
  /** `127.0.0.1:PORT/busybox:latest`. */
  readonly busybox: string;
  readonly repo: GitRepository;
  readonly server: StevedoreServer;
  readonly clients: Clients;
  /** The suite's scratch directory. */
  readonly dir: string;
  stop(): Promise<void>;
}

export interface ApiSuiteOptions {
  /** Files of the git repository (a string is a file's content); `${BASE}` is replaced by the busybox reference. */
  readonly files: Record<string, string>;
  readonly concurrency?: number;
  readonly maxReceiveMessageBytes?: number;
  /** Store subassemblies in a local directory. */
  readonly subassemblies?: boolean;
}

/** A registry with busybox, a git repository, and the server in this process, all on 127.0.0.1. */
export async function startApiSuite(options: ApiSuiteOptions): Promise<ApiSuite> {
  const scratch = await tempDir('stevedore-api-');
  const stops: (() => Promise<void>)[] = [scratch.remove];
  const stop = async (): Promise<void> => {
    for (const fn of stops.reverse()) await fn().catch(() => undefined);
  };
  try {
    const registry = await startRegistry();
    stops.push(() => registry.stop());
    const busybox = `${registry.host}/busybox:latest`;
    await pushBusyboxImage(await makeBusyboxImage({ dir: join(scratch.path, 'busybox') }), busybox);
    const files = Object.fromEntries(Object.entries(options.files).map(([name, text]) => [name, text.replaceAll('${BASE}', busybox)]));
    const repo = await makeGitRepository(join(scratch.path, 'git'), files);
    const { config } = parseServiceConfig({
      orchestrator: { baseImageRepository: `${registry.host}/base-images`, workspaceImageRepository: `${registry.host}/workspace-images` },
      server: { services: { grpc: { address: '127.0.0.1:0' }, http: { address: '127.0.0.1:0' } } },
      stevedore: {
        workDir: join(scratch.path, 'work'),
        cacheDir: join(scratch.path, 'cache'),
        concurrency: options.concurrency ?? 2,
        shutdownGrace: '5s',
        ...(options.maxReceiveMessageBytes === undefined ? {} : { maxReceiveMessageBytes: options.maxReceiveMessageBytes }),
        ...(options.subassemblies === true ? { subassembly: { directory: join(scratch.path, 'subassemblies') } } : {}),
      },
    });
    const server = await startServer(config);
    stops.push(() => server.close(5000));
    const clients = connect(server.grpcAddress);
    stops.push(async () => clients.close());
    return { registry, busybox, repo, server, clients, dir: scratch.path, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The sum of the samples of `name` whose labels include `labels` in Prometheus text (0 when none). */
export function sample(metrics: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels);
  let sum = 0;
  for (const line of metrics.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = new Map([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    if (wanted.every(([k, v]) => have.get(k) === v)) sum += Number(match[3]);
  }
  return sum;
}

export async function metricsText(server: StevedoreServer): Promise<string> {
  const response = await fetch(`${server.httpUrl}/metrics`);
  if (response.status !== 200) throw new Error(`/metrics answered ${response.status}`);
  return response.text();
}
