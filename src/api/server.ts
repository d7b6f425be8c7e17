// `stevedore serve`: the library's ImageBuilderService and SubassemblyManager behind a grpc-js
// server (builder.ImageBuilder, builder.SubassemblyService, grpc.health.v1.Health, server
// reflection) and an HTTP listener (metrics, health, build logs, subassembly downloads).
import { readFile } from 'node:fs/promises';
import { Server, ServerCredentials, type ServerOptions } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import {
  anonymousCredentials,
  ImageBuilderService,
  MetricsRegistry,
  PullSecret,
  RegistryClientPool,
  ServiceConfigError,
  SubassemblyManager,
  type ServiceConfig,
} from '../index.js';
import { ListenError } from './errors.js';
import { formatHostPort, parseListenAddress } from './address.js';
import { CallFactory, GrpcServerMetrics } from './calls.js';
import { imageBuilderHandlers, subassemblyHandlers } from './handlers.js';
import { listenHttp, type HttpListener } from './http.js';
import { IMAGE_BUILDER_SERVICE, imageBuilderService, LOADER_OPTIONS, packageDefinition, SUBASSEMBLY_SERVICE, subassemblyService } from './protos.js';

export interface StartServerOptions {
  /** Where the service and the gRPC server record metrics (default: a new registry). */
  readonly metrics?: MetricsRegistry | undefined;
}

export interface StevedoreServer {
  /** `host:port` the gRPC server listens on (port 0 in the configuration resolved). */
  readonly grpcAddress: string;
  /** Base URL of the HTTP listener (`server.http.publicUrl` when configured). */
  readonly httpUrl: string;
  /** The library service behind the handlers (for embedders and tests: metrics, builds). */
  readonly service: ImageBuilderService;
  /**
   * Graceful stop: health turns NOT_SERVING, no new calls are accepted, running builds get
   * `graceMs` (default `stevedore.shutdownGraceMs`) to finish and are then cancelled; streams
   * still open after that are cut. Resolves when everything, child processes included, is gone.
   */
  close(graceMs?: number): Promise<void>;
}

const SERVICES = ['', IMAGE_BUILDER_SERVICE, SUBASSEMBLY_SERVICE] as const;

/** Time streams get to deliver their last message after the builds behind them ended. */
const CLOSE_LEEWAY_MS = 1000;

/** Reflection describes our services and the health service, so `grpcurl list` shows all three. */
function reflectionDefinition(): typeof packageDefinition {
  return { ...loadSync(healthProtoPath, LOADER_OPTIONS), ...packageDefinition };
}

async function serverCredentials(tls: ServiceConfig['server']['grpc']['tls']): Promise<ServerCredentials> {
  if (tls === undefined) return ServerCredentials.createInsecure();
  // Every file is read, and every unreadable one named (in this order), as configuration errors.
  const files = [['certPath', tls.certPath], ['keyPath', tls.keyPath], ...(tls.caPath === undefined ? [] : [['caPath', tls.caPath]])] as const;
  const read = await Promise.allSettled(files.map(([, path]) => readFile(path)));
  const problems = read.flatMap((r, i) =>
    r.status === 'rejected' ? [`server.services.grpc.tls.${files[i]![0]}: cannot read ${files[i]![1]} (${(r.reason as NodeJS.ErrnoException).code ?? 'error'})`] : [],
  );
  if (problems.length > 0) throw new ServiceConfigError(problems, { cause: read.find((r) => r.status === 'rejected')?.reason });
  const [cert, key, ca] = read.map((r) => (r as PromiseFulfilledResult<Buffer>).value);
  // A CA means mutual TLS: clients must present a certificate it signed (as mk3's baseserver).
  return ServerCredentials.createSsl(ca ?? null, [{ cert_chain: cert!, private_key: key! }], ca !== undefined);
}

function bind(server: Server, address: string, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, credentials, (err, port) => (err ? reject(new ListenError('gRPC', address, err.message, { cause: err })) : resolve(port)));
  });
}

/** The registries subassemblies are pulled from (and pushed to): the installation's credentials, the configured insecure hosts. */
function subassemblyRegistries(config: ServiceConfig): RegistryClientPool {
  const pullSecret = config.orchestrator.pullSecretFile;
  return new RegistryClientPool({
    credentials: pullSecret === undefined ? anonymousCredentials : new PullSecret(pullSecret).provider,
    insecureRegistries: config.stevedore.insecureRegistries,
  });
}

export async function startServer(config: ServiceConfig, options: StartServerOptions = {}): Promise<StevedoreServer> {
  const metrics = options.metrics ?? new MetricsRegistry();
  const cleanups: (() => Promise<void>)[] = [];
  const undo = async (): Promise<void> => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    // HTTP first: the service must know the URL its logs and downloads are served at.
    const http: HttpListener = await listenHttp(config.server.http.address, config.server.http.publicUrl);
    cleanups.push(() => http.close(0));

    const service = new ImageBuilderService({ config, metrics, httpBaseUrl: http.url });
    cleanups.push(() => service.shutdown(0));

    const { directory, repository } = config.stevedore.subassembly;
    let subassemblies: SubassemblyManager | undefined;
    let registries: RegistryClientPool | undefined;
    if (directory !== undefined || repository !== undefined) {
      const pool = subassemblyRegistries(config);
      registries = pool;
      cleanups.push(() => pool.close());
      const manager = await SubassemblyManager.open({
        registries: pool,
        directory,
        repository,
        workDir: config.stevedore.workDir,
        urlFor: (digest) => `${http.url}/subassemblies/${digest}`,
      });
      subassemblies = manager;
      cleanups.push(() => manager.close(0));
    }

    const grpcOptions: ServerOptions = {
      'grpc.max_receive_message_length': config.server.maxReceiveMessageBytes,
    };
    const server = new Server(grpcOptions);
    cleanups.push(async () => server.forceShutdown());
    const grpcMetrics = new GrpcServerMetrics(metrics);
    server.addService(imageBuilderService, imageBuilderHandlers(service, new CallFactory(grpcMetrics, IMAGE_BUILDER_SERVICE)));
    server.addService(subassemblyService, subassemblyHandlers(subassemblies, new CallFactory(grpcMetrics, SUBASSEMBLY_SERVICE)));
    const health = new HealthImplementation(Object.fromEntries(SERVICES.map((name) => [name, 'NOT_SERVING' satisfies ServingStatus])));
    health.addToServer(server);
    new ReflectionService(reflectionDefinition()).addToServer(server);

    const listen = parseListenAddress(config.server.grpc.address);
    const port = await bind(server, formatHostPort(listen.host, listen.port), await serverCredentials(config.server.grpc.tls));
    const grpcAddress = formatHostPort(listen.host, port);

    await service.start();
    http.serve({ service, subassemblies });
    for (const name of SERVICES) health.setStatus(name, 'SERVING');

    const close = async (graceMs: number): Promise<void> => {
      const deadline = Date.now() + graceMs;
      for (const name of SERVICES) health.setStatus(name, 'NOT_SERVING');
      // New calls are refused from here on; the calls in flight go on.
      const drained = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await Promise.all([service.shutdown(graceMs), subassemblies?.close(graceMs)]);
      // Builds are over (finished or cancelled), so their streams are ending; a client that
      // stopped reading must not hold the process much beyond the grace period.
      let timer: NodeJS.Timeout | undefined;
      const cutOff = new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(deadline - Date.now(), CLOSE_LEEWAY_MS))));
      await Promise.race([drained, cutOff]);
      clearTimeout(timer);
      server.forceShutdown();
      await http.close(Math.max(deadline - Date.now(), 0));
      await registries?.close();
    };

    let closing: Promise<void> | undefined;
    return {
      grpcAddress,
      httpUrl: http.url,
      service,
      close(graceMs = config.stevedore.shutdownGraceMs) {
        closing ??= close(graceMs);
        return closing;
      },
    };
  } catch (err) {
    await undo();
    throw err;
  }
}
