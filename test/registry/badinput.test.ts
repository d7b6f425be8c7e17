import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DOCKER, InvalidDocumentError, InvalidReferenceError, OCI } from '../../src/oci/index.js';
import { anonymousCredentials, noRetryPolicy, RegistryClient, resolveReference } from '../../src/registry/index.js';
import { freePort, readStream } from '../harness/index.js';

/**
 * A tiny HTTP server pretending to be a registry, for answers a real registry never gives:
 * garbage JSON, oversized or schema 1 manifests, lying digests, a broken token server. Every
 * well-behaved path is tested against the real registry elsewhere.
 */
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server;
let host: string;
const routes = new Map<string, Handler>();

function digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function serve(path: string, body: Buffer | string, headers: Record<string, string> = {}): void {
  routes.set(path, (req, res) => {
    res.writeHead(200, { 'content-length': String(Buffer.byteLength(body)), ...headers });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const handler = routes.get(path);
    if (handler) return handler(req, res);
    if (path === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function client(): RegistryClient {
  return new RegistryClient(host, { credentials: anonymousCredentials, retryPolicy: noRetryPolicy });
}

describe('malformed references', () => {
  it('are refused before any request, with the reason', async () => {
    for (const input of ['', 'registry.example/UPPER/case', 'a//b', 'name:tag:tag', 'name@sha256:short', `${'a'.repeat(300)}`]) {
      await expect(resolveReference(input)).rejects.toMatchObject({ code: expect.stringMatching(/INVALID_REFERENCE|INVALID_DIGEST/) });
    }
    const c = client();
    try {
      expect(() => c.repository('Bad_Name')).toThrow(InvalidReferenceError);
      expect(() => c.repository('a/../b')).toThrow(InvalidReferenceError);
      await expect(c.repository('ok/name').resolve('bad tag')).rejects.toBeInstanceOf(InvalidReferenceError);
      await expect(c.repository('ok/name').resolve('sha256:xyz')).rejects.toMatchObject({ code: 'INVALID_DIGEST' });
      await expect(c.repository('ok/name').tag({ mediaType: OCI.manifest, digest: digest('x') as never, size: 1 }, '-bad')).rejects.toBeInstanceOf(InvalidReferenceError);
      expect(() => new RegistryClient('host/with/slash')).toThrow(/invalid registry host/);
    } finally {
      await c.close();
    }
  });
});

describe('unreachable registries', () => {
  it('a closed port fails with CONNECTION_FAILED after trying HTTPS then HTTP', async () => {
    const port = await freePort();
    const c = new RegistryClient(`127.0.0.1:${port}`, { credentials: anonymousCredentials, retryPolicy: noRetryPolicy });
    try {
      const err = await c.repository('x/y').resolve('latest').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect((err as Error).message).toMatch(/ECONNREFUSED/);
      expect((err as Error).message).toContain(`http://127.0.0.1:${port}/v2/`);
    } finally {
      await c.close();
    }
  });

  it('an unknown host name fails with CONNECTION_FAILED naming the host', async () => {
    const c = new RegistryClient('registry.nonexistent.invalid', { credentials: anonymousCredentials, retryPolicy: noRetryPolicy });
    try {
      const err = await c.ping().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'CONNECTION_FAILED' });
      expect((err as Error).message).toMatch(/registry\.nonexistent\.invalid/);
    } finally {
      await c.close();
    }
  });

  it('a server that is not a registry is named as such', async () => {
    routes.set('/v2/', (_req, res) => {
      res.writeHead(404);
      res.end('not here');
    });
    const c = client();
    try {
      await expect(c.ping()).rejects.toThrow(/does not speak the registry API v2/);
    } finally {
      routes.delete('/v2/');
      await c.close();
    }
  });
});

describe('bad answers', () => {
  it('garbage JSON in a manifest is an InvalidDocumentError', async () => {
    const garbage = '{"schemaVersion": 2, "config": '; // cut short
    serve('/v2/bad/garbage/manifests/latest', garbage, { 'content-type': OCI.manifest, 'docker-content-digest': digest(garbage) });
    const notJson = '<html>definitely not a manifest</html>';
    serve('/v2/bad/html/manifests/latest', notJson, { 'content-type': OCI.manifest });
    const wrongShape = JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, layers: 'nope' });
    serve('/v2/bad/shape/manifests/latest', wrongShape, { 'content-type': OCI.manifest });
    const c = client();
    try {
      for (const repo of ['bad/garbage', 'bad/html', 'bad/shape']) {
        await expect(c.repository(repo).fetchManifest('latest')).rejects.toBeInstanceOf(InvalidDocumentError);
        await expect(resolveReference(`${host}/${repo}:latest`, { clientOptions: { credentials: anonymousCredentials, retryPolicy: noRetryPolicy } })).rejects.toMatchObject({ code: 'INVALID_DOCUMENT' });
      }
    } finally {
      await c.close();
    }
  });

  it('an oversized manifest is refused, announced or not', async () => {
    const big = Buffer.alloc(5 * 1024 * 1024, 0x20);
    serve('/v2/bad/big/manifests/latest', big, { 'content-type': OCI.manifest });
    routes.set('/v2/bad/bigchunked/manifests/latest', (_req, res) => {
      res.writeHead(200, { 'content-type': OCI.manifest });
      // No Content-Length: the cap applies while reading.
      let sent = 0;
      const pump = (): void => {
        while (sent < big.length) {
          sent += 64 * 1024;
          if (!res.write(big.subarray(0, 64 * 1024))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
    });
    const c = client();
    try {
      await expect(c.repository('bad/big').fetchManifest('latest')).rejects.toMatchObject({ code: 'TOO_LARGE' });
      await expect(c.repository('bad/bigchunked').fetchManifest('latest')).rejects.toMatchObject({ code: 'TOO_LARGE' });
    } finally {
      await c.close();
    }
  });

  it('a schema 1 manifest is refused clearly', async () => {
    const schema1 = JSON.stringify({ schemaVersion: 1, name: 'old/image', tag: 'latest', fsLayers: [], history: [] });
    serve('/v2/bad/schema1/manifests/latest', schema1, { 'content-type': DOCKER.schema1SignedManifest });
    serve('/v2/bad/schema1json/manifests/latest', schema1, { 'content-type': 'application/json' });
    const c = client();
    try {
      await expect(c.repository('bad/schema1').resolve('latest')).rejects.toThrow(/schema 1/);
      await expect(c.repository('bad/schema1').fetchManifest('latest')).rejects.toThrow(/schema 1/);
      await expect(c.repository('bad/schema1json').fetchManifest('latest')).rejects.toThrow(/schema 1/);
    } finally {
      await c.close();
    }
  });

  it('content that does not match its digest is refused', async () => {
    const manifest = JSON.stringify({ schemaVersion: 2, mediaType: OCI.manifest, config: { mediaType: OCI.config, digest: digest('c'), size: 1 }, layers: [] });
    const claimed = digest('something else');
    serve(`/v2/bad/lying/manifests/${claimed}`, manifest, { 'content-type': OCI.manifest });
    serve('/v2/bad/lying/manifests/latest', manifest, { 'content-type': OCI.manifest, 'docker-content-digest': claimed });
    const blob = randomBytes(1000);
    const blobDigest = digest(blob);
    serve(`/v2/bad/lying/blobs/${blobDigest}`, randomBytes(1000));
    const c = client();
    try {
      await expect(c.repository('bad/lying').fetchManifest(claimed)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      await expect(c.repository('bad/lying').fetchManifest('latest')).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      const stream = await c.repository('bad/lying').fetch({ mediaType: OCI.layerGzip, digest: blobDigest as never, size: 1000 });
      await expect(readStream(stream)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
      const longer = await c.repository('bad/lying').fetch({ mediaType: OCI.layerGzip, digest: blobDigest as never, size: 999 });
      await expect(readStream(longer)).rejects.toMatchObject({ code: 'SIZE_MISMATCH' });
    } finally {
      await c.close();
    }
  });

  it('a broken token server is a PROTOCOL_ERROR, a challenge without realm too', async () => {
    routes.set('/v2/', (_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${host}/token",service="svc"` });
      res.end();
    });
    routes.set('/token', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"not_a_token": true}');
    });
    const c = client();
    try {
      await expect(c.repository('bad/token').resolve('latest')).rejects.toMatchObject({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/no token/) });
    } finally {
      await c.close();
    }
    routes.set('/v2/', (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer service="svc"' });
      res.end();
    });
    const d = client();
    try {
      await expect(d.repository('bad/token').resolve('latest')).rejects.toMatchObject({ code: 'PROTOCOL_ERROR', message: expect.stringMatching(/realm/) });
    } finally {
      routes.delete('/v2/');
      routes.delete('/token');
      await d.close();
    }
  });
});
