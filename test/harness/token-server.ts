import { randomBytes, sign, X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a user may do: actions granted per repository (by exact name, or '*' for all). */
export interface TokenUser {
  readonly password: string;
  /** Actions granted on every repository; default pull and push. */
  readonly actions?: readonly string[];
  /** An OAuth2 refresh token (Docker's identity token) that also authenticates this user. */
  readonly refreshToken?: string;
}

export interface TokenServerOptions {
  readonly issuer: string;
  readonly service: string;
  readonly keyFile: string;
  readonly certFile: string;
  readonly users: Readonly<Record<string, TokenUser>>;
  /** Token lifetime in seconds announced to the client (`expires_in`). */
  readonly expiresIn?: number;
  /**
   * The JWT's own `exp`, seconds from now, when it should differ from what is announced (to
   * test a client whose cached token the registry refuses). distribution allows 60 s of leeway.
   */
  readonly jwtLifetime?: number;
}

/** One request the token server answered, for assertions. */
export interface TokenRequestRecord {
  readonly method: string;
  readonly account: string | undefined;
  readonly grantType: string | undefined;
  readonly scopes: readonly string[];
  readonly status: number;
}

export interface TokenServer {
  readonly realm: string;
  readonly requests: TokenRequestRecord[];
  stop(): Promise<void>;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * A distribution token server (the part of docker/auth that the registry needs): GET with
 * `service` and `scope` and Basic credentials, or an OAuth2 POST (`grant_type=password` or
 * `refresh_token`); answers `{token, access_token, expires_in, issued_at}` with an RS256 JWT whose
 * `x5c` holds the signing certificate the registry trusts. Grants are the intersection of what
 * was asked and what the user may do; anonymous callers get a token with no access.
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(await readFile(options.keyFile));
  const certDer = new X509Certificate(await readFile(options.certFile)).raw;
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] }));
  const expiresIn = options.expiresIn ?? 300;
  const requests: TokenRequestRecord[] = [];

  const issue = (account: string | undefined, scopes: readonly string[]): string => {
    const user = account === undefined ? undefined : options.users[account];
    const allowed = new Set(user?.actions ?? (user ? ['pull', 'push'] : []));
    const access = scopes.flatMap((scope) => {
      // repository:NAME:ACTIONS — NAME may contain ':' (never in practice), split on the last.
      const first = scope.indexOf(':');
      const last = scope.lastIndexOf(':');
      if (first < 0 || last === first) return [];
      const type = scope.slice(0, first);
      const name = scope.slice(first + 1, last);
      const actions = scope.slice(last + 1).split(',').filter((a) => allowed.has(a) || (allowed.has('*') && a !== ''));
      return actions.length === 0 ? [] : [{ type, name, actions }];
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      iss: options.issuer,
      sub: account ?? '',
      // distribution 2.8 rejects an array here.
      aud: options.service,
      exp: now + (options.jwtLifetime ?? expiresIn),
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    };
    const payload = `${header}.${base64url(JSON.stringify(claims))}`;
    return `${payload}.${base64url(sign('sha256', Buffer.from(payload), key))}`;
  };

  const answer = (res: ServerResponse, status: number, body: unknown): void => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://token');
    let account: string | undefined;
    let grantType: string | undefined;
    let scopes: string[] = [];
    let ok = true;
    let refreshToken: string | undefined;
    if (req.method === 'POST') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      grantType = form.get('grant_type') ?? undefined;
      scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
      if (form.get('service') !== options.service) ok = false;
      if (grantType === 'password') {
        account = form.get('username') ?? undefined;
        ok &&= account !== undefined && options.users[account]?.password === form.get('password');
        if (ok && form.get('access_type') === 'offline') refreshToken = options.users[account!]?.refreshToken;
      } else if (grantType === 'refresh_token') {
        const token = form.get('refresh_token');
        account = Object.entries(options.users).find(([, u]) => u.refreshToken !== undefined && u.refreshToken === token)?.[0];
        ok &&= account !== undefined;
        refreshToken = token ?? undefined;
      } else {
        ok = false;
      }
    } else if (req.method === 'GET') {
      scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '');
      const authorization = req.headers.authorization;
      if (authorization !== undefined) {
        const match = /^Basic (.+)$/i.exec(authorization);
        const decoded = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
        const colon = decoded.indexOf(':');
        account = colon < 0 ? undefined : decoded.slice(0, colon);
        ok = account !== undefined && options.users[account]?.password === decoded.slice(colon + 1);
      }
      if (url.searchParams.get('service') !== options.service) ok = false;
    } else {
      answer(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'method not allowed' }] });
      return;
    }
    if (!ok) {
      requests.push({ method: req.method, account, grantType, scopes, status: 401 });
      answer(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'invalid credentials' }] });
      return;
    }
    const token = issue(account, scopes);
    requests.push({ method: req.method, account, grantType, scopes, status: 200 });
    answer(res, 200, {
      token,
      access_token: token,
      expires_in: expiresIn,
      issued_at: new Date().toISOString(),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
    });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
