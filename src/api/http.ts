// The HTTP listener beside the gRPC server: Prometheus metrics, liveness and readiness, the build
// log that `log_info` points at, and subassembly downloads (with Range requests, so a consumer
// can resume). Every answer comes from one library call; errors go through status.ts.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { isDigest, LOG_TOKEN_HEADER, type Digest, type ImageBuilderService, type SubassemblyManager } from '../index.js';
import { formatHostPort, parseListenAddress } from './address.js';
import { ListenError } from './errors.js';
import { httpFailureOf } from './status.js';

/** What the routes answer from; set once the services exist (they need the bound URL first). */
export interface HttpRoutes {
  readonly service: ImageBuilderService;
  readonly subassemblies: SubassemblyManager | undefined;
}

export interface HttpListener {
  /** `http://host:port` as bound (port 0 resolved). */
  readonly url: string;
  serve(routes: HttpRoutes): void;
  /** Stops accepting; open responses get `graceMs` to finish before their sockets are closed. */
  close(graceMs: number): Promise<void>;
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

function sendText(res: ServerResponse, statusCode: number, text: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(text.endsWith('\n') ? text : `${text}\n`);
  res.writeHead(statusCode, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendError(res: ServerResponse, err: unknown): void {
  const { statusCode, message } = httpFailureOf(err);
  if (res.headersSent) res.destroy();
  else sendText(res, statusCode, message);
}

/** An AbortSignal that fires when the client goes away before the response is complete. */
function clientSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('the client closed the connection'));
  });
  return controller.signal;
}

/**
 * A build's log token: from the header the library names in `log_info.headers` (mk3's, which the
 * Gitpod server sends back verbatim), or `Authorization: Bearer TOKEN`.
 */
function tokenOf(req: IncomingMessage): string | undefined {
  const header = req.headers[LOG_TOKEN_HEADER.toLowerCase()];
  if (typeof header === 'string' && header !== '') return header;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return bearer?.[1];
}

/** Resolves when the response wants more, or is gone (a closed response never drains). */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

/** Streams a build's censored log as plain text, as long as the build runs. */
async function serveBuildLog(service: ImageBuilderService, buildId: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const signal = clientSignal(res);
  const chunks = service.buildLog(buildId, tokenOf(req), signal)[Symbol.asyncIterator]();
  // The first chunk decides the status line: an unknown build or a bad token fails here.
  let next: IteratorResult<Uint8Array>;
  try {
    next = await chunks.next();
  } catch (err) {
    sendError(res, err);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  try {
    while (!next.done && !signal.aborted) {
      if (!res.write(next.value)) await drained(res);
      next = await chunks.next();
    }
    res.end();
  } catch (err) {
    // Headers are out: the only way left to say "incomplete" is to cut the connection.
    if (!signal.aborted) sendError(res, err);
  } finally {
    await chunks.return?.();
  }
}

type ByteRange = { readonly start: number; readonly end: number };

/**
 * A single `bytes=` range against a file of `size` bytes (RFC 9110 14.1.2): the inclusive range,
 * 'unsatisfiable', or undefined when the header should be ignored (absent, malformed, or several
 * ranges, which a server may answer with the whole file).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (match[2] !== '' && Number(match[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

async function serveSubassembly(manager: SubassemblyManager | undefined, digest: Digest, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const whole = manager === undefined ? undefined : await manager.openFile(digest);
  if (manager === undefined || whole === undefined) {
    sendText(res, 404, `subassembly file ${digest} is not stored here`);
    return;
  }
  const common = { 'accept-ranges': 'bytes', etag: `"${digest}"`, 'cache-control': 'public, max-age=31536000, immutable' };
  const range = parseRange(req.headers.range, whole.size);
  if (range === 'unsatisfiable') {
    destroy(whole.stream);
    sendText(res, 416, `range ${req.headers.range ?? ''} is outside the file's ${whole.size} bytes`, { ...common, 'content-range': `bytes */${whole.size}` });
    return;
  }
  let body = whole.stream;
  if (range === undefined) {
    res.writeHead(200, { ...common, 'content-type': 'application/octet-stream', 'content-length': String(whole.size) });
  } else {
    destroy(whole.stream);
    const part = await manager.openFile(digest, range);
    if (part === undefined) {
      sendText(res, 404, `subassembly file ${digest} is not stored here`);
      return;
    }
    body = part.stream;
    res.writeHead(206, {
      ...common,
      'content-type': 'application/octet-stream',
      'content-length': String(range.end - range.start + 1),
      'content-range': `bytes ${range.start}-${range.end}/${whole.size}`,
    });
  }
  if (req.method === 'HEAD') {
    destroy(body);
    res.end();
    return;
  }
  await pipeline(body, res);
}

function destroy(stream: NodeJS.ReadableStream): void {
  (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

async function route(routes: HttpRoutes | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    sendText(res, 405, `${method} is not supported`, { allow: 'GET, HEAD' });
    return;
  }
  if (path === '/live') return sendText(res, 200, 'ok');
  if (routes === undefined) return sendText(res, 503, 'starting');
  if (path === '/ready') return routes.service.ready ? sendText(res, 200, 'ready') : sendText(res, 503, 'not ready');
  if (path === '/metrics') return sendText(res, 200, routes.service.metrics.render(), { 'content-type': PROMETHEUS_CONTENT_TYPE });
  const log = /^\/builds\/([^/]+)\/log$/.exec(path);
  if (log !== null) return serveBuildLog(routes.service, decodeURIComponent(log[1]!), req, res);
  const file = /^\/subassemblies\/([^/]+)$/.exec(path);
  if (file !== null) {
    const digest = decodeURIComponent(file[1]!);
    if (!isDigest(digest)) return sendText(res, 400, `${JSON.stringify(digest)} is not a digest`);
    return serveSubassembly(routes.subassemblies, digest, req, res);
  }
  sendText(res, 404, `no such endpoint: ${path}`);
}

/** Binds the listener (`host:port`, port 0 = any) before the services exist, so they can be told its URL. */
export async function listenHttp(address: string, publicUrl?: string): Promise<HttpListener> {
  let routes: HttpRoutes | undefined;
  const server: Server = createServer((req, res) => {
    route(routes, req, res).catch((err: unknown) => sendError(res, err));
  });
  const { host, port } = parseListenAddress(address);
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => reject(new ListenError('HTTP', address, err.code ?? err.message, { cause: err }));
    server.once('error', failed);
    server.listen({ host, port }, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const url = (publicUrl ?? `http://${formatHostPort(bound.address, bound.port)}`).replace(/\/+$/, '');
  return {
    url,
    serve(next) {
      routes = next;
    },
    close(graceMs) {
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
