import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does to a matching request instead of (or while) forwarding it.
 * - `status`: answer with this status (500/502/503/429 + `Retry-After`, ...) without forwarding;
 * - `reset-request`: read `afterBytes` of the request body, then reset the connection; the
 *   registry never sees the request (a connection dropped during an upload);
 * - `reset-response`: forward, then reset after `afterBytes` of the response body;
 * - `truncate`: forward, send `afterBytes` of the body and end cleanly (no Content-Length);
 * - `drop-response`: forward the whole request, let the registry answer, reset instead of
 *   passing the answer on (the registry did the work, the client cannot know);
 * - `delay`: forward after `ms` (slow headers);
 * - `throttle`: forward, pacing the response body at `bytesPerSecond`;
 * - `redirect`: answer 307 to the same path on another origin (`to`).
 */
export type FaultAction =
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>>; readonly body?: string }
  | { readonly kind: 'reset-request'; readonly afterBytes?: number }
  | { readonly kind: 'reset-response'; readonly afterBytes: number }
  | { readonly kind: 'truncate'; readonly afterBytes: number }
  | { readonly kind: 'drop-response' }
  | { readonly kind: 'delay'; readonly ms: number }
  | { readonly kind: 'throttle'; readonly bytesPerSecond: number }
  | { readonly kind: 'redirect'; readonly to: string };

export interface FaultRule {
  readonly method?: string;
  readonly path?: RegExp;
  /** Let this many matching requests through untouched first. */
  readonly skip?: number;
  /** Apply the fault this many times (default 1, at most 100). */
  readonly times?: number;
  readonly action: FaultAction;
}

export interface ProxyLogEntry {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  /** Whether the client sent an Authorization header. */
  readonly authorization: boolean;
  /** The request's Range and Content-Range headers, when sent. */
  readonly range?: string;
  readonly contentRange?: string;
  /** The fault applied, if any. */
  readonly fault?: FaultAction['kind'];
  /** The status the client saw (undefined when the connection was cut). */
  status?: number | undefined;
}

export interface FaultProxyOptions {
  /**
   * Requests that arrive under another Host than the proxy's own (i.e. after a `redirect` to an
   * alias such as `localhost:PORT`) are forwarded with this Authorization instead of the
   * client's: the alias plays object storage with signed URLs.
   */
  readonly aliasAuthorization?: string;
}

export interface FaultProxy {
  readonly host: string;
  readonly url: string;
  /** Every request seen, in order. */
  readonly log: ProxyLogEntry[];
  /** Replaces the plan; the fault count and the log start again. */
  setPlan(plan: readonly FaultRule[]): void;
  /** Faults applied so far. */
  applied(): number;
  stop(): Promise<void>;
}

const MAX_TIMES = 100;
const MAX_DELAY_MS = 30_000;

/**
 * An HTTP proxy on 127.0.0.1 in front of a registry that injects a bounded plan of faults. Host
 * headers pass through unchanged, so the registry's upload `Location`s point back at the proxy.
 */
export async function startFaultProxy(target: string, plan: readonly FaultRule[] = [], options: FaultProxyOptions = {}): Promise<FaultProxy> {
  const upstream = new URL(target);
  if (upstream.protocol !== 'http:') throw new Error('the fault proxy forwards to plain-HTTP registries only');
  let rules: { rule: FaultRule; seen: number; used: number }[] = [];
  let applied = 0;
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<Socket>();
  let ownHost = '';

  const setPlan = (next: readonly FaultRule[]): void => {
    rules = next.map((rule) => ({ rule, seen: 0, used: 0 }));
    applied = 0;
    log.length = 0;
  };
  setPlan(plan);

  const pick = (req: IncomingMessage): FaultAction | undefined => {
    const path = req.url ?? '/';
    for (const entry of rules) {
      const { rule } = entry;
      if (rule.method !== undefined && rule.method !== req.method) continue;
      if (rule.path !== undefined && !rule.path.test(path)) continue;
      entry.seen++;
      if (entry.seen <= (rule.skip ?? 0)) continue;
      if (entry.used >= Math.min(rule.times ?? 1, MAX_TIMES)) continue;
      entry.used++;
      applied++;
      return rule.action;
    }
    return undefined;
  };

  const reset = (socket: Socket): void => {
    if (!socket.destroyed) socket.resetAndDestroy();
  };

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxyLogEntry, action: FaultAction | undefined): void => {
    const headers = { ...req.headers };
    const viaAlias = req.headers.host !== ownHost;
    if (viaAlias && options.aliasAuthorization !== undefined) headers.authorization = options.aliasAuthorization;
    const outgoing = httpRequest({
      host: upstream.hostname,
      port: upstream.port,
      method: req.method,
      path: req.url,
      headers,
    });
    outgoing.on('error', () => reset(req.socket));
    outgoing.on('response', (incoming) => {
      const send = (): void => {
        if (action?.kind === 'drop-response') {
          incoming.resume();
          incoming.on('end', () => reset(req.socket));
          return;
        }
        const responseHeaders = { ...incoming.headers };
        if (action?.kind === 'truncate') {
          delete responseHeaders['content-length'];
          responseHeaders['transfer-encoding'] = 'chunked';
        }
        res.writeHead(incoming.statusCode ?? 502, responseHeaders);
        entry.status = incoming.statusCode;
        if (action?.kind === 'reset-response' || action?.kind === 'truncate') {
          let sent = 0;
          const limit = action.afterBytes;
          incoming.on('data', (chunk: Buffer) => {
            if (sent >= limit) return;
            const piece = chunk.subarray(0, limit - sent);
            sent += piece.length;
            res.write(piece);
            if (sent >= limit) {
              incoming.destroy();
              if (action.kind === 'truncate') res.end();
              // Give the bytes written a moment to leave, then cut the connection.
              else setTimeout(() => reset(req.socket), 20);
            }
          });
          incoming.on('end', () => {
            if (sent < limit) res.end();
          });
          return;
        }
        if (action?.kind === 'throttle') {
          const rate = Math.max(1, action.bytesPerSecond);
          incoming.on('data', (chunk: Buffer) => {
            incoming.pause();
            res.write(chunk);
            setTimeout(() => incoming.resume(), Math.min(MAX_DELAY_MS, (chunk.length / rate) * 1000));
          });
          incoming.on('end', () => res.end());
          return;
        }
        incoming.pipe(res);
      };
      if (action?.kind === 'delay') setTimeout(send, Math.min(action.ms, MAX_DELAY_MS));
      else send();
    });
    req.pipe(outgoing);
  };

  const server = createServer((req, res) => {
    const action = pick(req);
    const entry: ProxyLogEntry = {
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      authorization: req.headers.authorization !== undefined,
      ...(req.headers.range === undefined ? {} : { range: req.headers.range }),
      ...(typeof req.headers['content-range'] === 'string' ? { contentRange: req.headers['content-range'] } : {}),
      ...(action === undefined ? {} : { fault: action.kind }),
    };
    log.push(entry);
    switch (action?.kind) {
      case 'status': {
        req.resume();
        req.on('end', () => {
          const body = action.body ?? JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `injected ${action.status}` }] });
          res.writeHead(action.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...action.headers });
          res.end(body);
          entry.status = action.status;
        });
        return;
      }
      case 'reset-request': {
        const limit = action.afterBytes ?? 0;
        let seen = 0;
        if (limit === 0) {
          reset(req.socket);
          return;
        }
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen >= limit) reset(req.socket);
        });
        req.on('end', () => reset(req.socket));
        return;
      }
      case 'redirect': {
        req.resume();
        res.writeHead(307, { location: `${action.to}${req.url ?? '/'}`, 'content-length': 0 });
        res.end();
        entry.status = 307;
        return;
      }
      default:
        forward(req, res, entry, action);
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  ownHost = `127.0.0.1:${port}`;
  return {
    host: ownHost,
    url: `http://${ownHost}`,
    log,
    setPlan,
    applied: () => applied,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
