// server.grpc.tls: TLS with the configured certificate, and mutual TLS when a CA is configured.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type StevedoreServer } from '../../src/api/index.js';
import { parseServiceConfig } from '../../src/index.js';
import { makeCertificates, tempDir, type TestCertificates } from '../harness/index.js';
import { connect, unary } from './helpers.js';

let scratch: Awaited<ReturnType<typeof tempDir>>;
let certs: TestCertificates;
let ca: Buffer;

beforeAll(async () => {
  scratch = await tempDir('stevedore-api-tls-');
  certs = await makeCertificates(scratch.path);
  ca = await readFile(certs.caFile);
});
afterAll(async () => {
  await scratch?.remove();
});

async function serve(tls: Record<string, string>): Promise<StevedoreServer> {
  const { config } = parseServiceConfig({
    orchestrator: { baseImageRepository: '127.0.0.1:5000/base', workspaceImageRepository: '127.0.0.1:5000/workspace' },
    server: { services: { grpc: { address: '127.0.0.1:0', tls }, http: { address: '127.0.0.1:0' } } },
    stevedore: { workDir: join(scratch.path, 'work'), cacheDir: join(scratch.path, 'cache') },
  });
  return startServer(config);
}

async function check(server: StevedoreServer, channel: ReturnType<typeof credentials.createSsl>): Promise<string> {
  // By name: the certificate's subjectAltName has localhost, and TLS SNI takes no IP address.
  const clients = connect(server.grpcAddress.replace('127.0.0.1', 'localhost'), channel);
  try {
    return (await unary(clients.health, clients.health.Check, { service: 'builder.ImageBuilder' })).status;
  } finally {
    clients.close();
  }
}

describe('gRPC over TLS', () => {
  it('serves TLS with the configured certificate', async () => {
    const server = await serve({ certPath: certs.certFile, keyPath: certs.keyFile });
    try {
      expect(await check(server, credentials.createSsl(ca))).toBe('SERVING');
    } finally {
      await server.close(0);
    }
  });

  it('requires a client certificate signed by the configured CA', async () => {
    const server = await serve({ certPath: certs.certFile, keyPath: certs.keyFile, caPath: certs.caFile });
    try {
      const [clientKey, clientCert] = await Promise.all([readFile(certs.clientKeyFile), readFile(certs.clientCertFile)]);
      expect(await check(server, credentials.createSsl(ca, clientKey, clientCert))).toBe('SERVING');
      const refused = await check(server, credentials.createSsl(ca)).catch((err: ServiceError) => err);
      expect((refused as ServiceError).code).toBe(status.UNAVAILABLE);
    } finally {
      await server.close(0);
    }
  });
});
