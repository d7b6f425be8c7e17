import { z } from 'zod';
import { redactUrl, RegistryError } from './errors.js';
import { isIdentityTokenCredential, isPasswordCredential, type Credential } from './credentials.js';
import { groupScopes, normaliseScopes } from './scope.js';
import { errorFromResponse, readBody, type HttpTransport } from './transport.js';

/** The distribution token spec's default lifetime when the server names none. */
const DEFAULT_TOKEN_LIFETIME_S = 60;
/** A token this close to expiry is not used for a new request. */
const EXPIRY_MARGIN_MS = 10_000;
/** Token answers are small JSON objects (a JWT is a few KiB). */
const MAX_TOKEN_RESPONSE = 1024 * 1024;
/** The OAuth2 client id sent with POST token requests. */
export const OAUTH_CLIENT_ID = 'stevedore';

const tokenResponseSchema = z
  .object({
    token: z.string().optional(),
    access_token: z.string().optional(),
    expires_in: z.number().int().nonnegative().optional(),
    issued_at: z.string().optional(),
    refresh_token: z.string().optional(),
  })
  .passthrough();

export interface BearerToken {
  readonly token: string;
  /** Epoch milliseconds, computed from our clock when the answer arrived (no skew). */
  readonly expiresAt: number;
  /** The atoms requested; the server may have granted fewer (it says so with a 401 later). */
  readonly scopes: readonly string[];
  readonly refreshToken?: string;
}

export interface TokenRequest {
  readonly realm: string;
  readonly service: string | undefined;
  readonly scopes: readonly string[];
  readonly credential: Credential | undefined;
  /** POST the OAuth2 password grant even for username/password (some registries want it). */
  readonly oauth2Password: boolean;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal | undefined;
  /** The registry host, for errors. */
  readonly registry: string;
}

/**
 * Fetches a bearer token from the realm: an OAuth2 POST (`grant_type=refresh_token`) for an
 * identity token, or `grant_type=password` when asked; else a GET with `service` and `scope`
 * parameters, with Basic credentials when there are any, anonymous otherwise. A POST the server
 * does not support (400, 401, 404, 405) falls back to the GET when a password is at hand.
 */
export async function fetchToken(transport: HttpTransport, request: TokenRequest): Promise<BearerToken> {
  let realm: URL;
  try {
    realm = new URL(request.realm);
  } catch {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `the registry named an invalid token realm`, registry: request.registry });
  }
  if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `the registry named a token realm with scheme ${realm.protocol}`, registry: request.registry });
  }
  const scopes = normaliseScopes(request.scopes);
  const credential = request.credential;
  if (isIdentityTokenCredential(credential) || (request.oauth2Password && isPasswordCredential(credential))) {
    const form = new URLSearchParams();
    if (isIdentityTokenCredential(credential)) {
      form.set('grant_type', 'refresh_token');
      form.set('refresh_token', credential.identityToken);
    } else if (isPasswordCredential(credential)) {
      form.set('grant_type', 'password');
      form.set('username', credential.username);
      form.set('password', credential.password);
    }
    form.set('client_id', OAUTH_CLIENT_ID);
    if (request.service !== undefined) form.set('service', request.service);
    const grouped = groupScopes(scopes);
    if (grouped.length > 0) form.set('scope', grouped.join(' '));
    const response = await transport.send({
      method: 'POST',
      url: realm,
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', accept: 'application/json' },
      body: Buffer.from(form.toString(), 'utf8'),
      timeoutMs: request.timeoutMs,
      signal: request.signal,
    });
    const fallback = isPasswordCredential(credential) && [400, 401, 404, 405].includes(response.status);
    if (!fallback) return await tokenFromResponse(response, 'POST', scopes, request);
    await readBody(response.body, MAX_TOKEN_RESPONSE).catch(() => undefined);
  }

  const url = new URL(realm);
  if (request.service !== undefined) url.searchParams.set('service', request.service);
  for (const scope of groupScopes(scopes)) url.searchParams.append('scope', scope);
  let authorization: string | undefined;
  if (isPasswordCredential(credential)) {
    url.searchParams.set('account', credential.username);
    authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`, 'utf8').toString('base64')}`;
  }
  const response = await transport.send({
    method: 'GET',
    url,
    headers: { accept: 'application/json' },
    authorization,
    timeoutMs: request.timeoutMs,
    signal: request.signal,
    followRedirects: true,
  });
  return await tokenFromResponse(response, 'GET', scopes, request);
}

async function tokenFromResponse(
  response: Awaited<ReturnType<HttpTransport['send']>>,
  method: string,
  scopes: readonly string[],
  request: TokenRequest,
): Promise<BearerToken> {
  if (response.status !== 200) {
    const err = await errorFromResponse(response, method, { registry: request.registry, action: 'get a registry token' });
    if (response.status === 401 || response.status === 403) {
      const who = credentialOwner(request.credential);
      throw new RegistryError({
        code: 'UNAUTHORIZED',
        message: `${request.registry}: the token server refused ${who} (${method} ${redactUrl(response.url)} → ${response.status})`,
        registry: request.registry,
        method,
        url: redactUrl(response.url),
        status: response.status,
        errors: err.errors,
      });
    }
    throw err;
  }
  const body = await readBody(response.body, MAX_TOKEN_RESPONSE);
  if (body === undefined) {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `${request.registry}: the token answer exceeds ${MAX_TOKEN_RESPONSE} bytes`, registry: request.registry });
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `${request.registry}: the token answer is not JSON (${method} ${redactUrl(response.url)})`, registry: request.registry });
  }
  const parsed = tokenResponseSchema.safeParse(json);
  const token = parsed.success ? (parsed.data.access_token ?? parsed.data.token) : undefined;
  if (!parsed.success || token === undefined || token === '') {
    throw new RegistryError({ code: 'PROTOCOL_ERROR', message: `${request.registry}: the token answer holds no token (${method} ${redactUrl(response.url)})`, registry: request.registry });
  }
  const lifetime = parsed.data.expires_in ?? DEFAULT_TOKEN_LIFETIME_S;
  const refreshToken = parsed.data.refresh_token;
  return { token, expiresAt: Date.now() + lifetime * 1000, scopes, ...(refreshToken === undefined ? {} : { refreshToken }) };
}

/** Names the account in messages without ever showing a secret. */
export function credentialOwner(credential: Credential | undefined): string {
  if (credential === undefined) return 'anonymous access';
  if (isPasswordCredential(credential)) return `the credentials of user ${JSON.stringify(credential.username)}`;
  if (isIdentityTokenCredential(credential)) return 'the identity token';
  return 'the registry token';
}

/**
 * Bearer tokens per (realm, service), each valid for a set of scope atoms. A lookup is served by
 * any live token whose atoms include the requested ones, so a push token also serves pulls.
 * Concurrent requests for the same scopes share one fetch.
 */
export class TokenCache {
  readonly #tokens = new Map<string, BearerToken[]>();
  readonly #inflight = new Map<string, Promise<BearerToken>>();
  readonly #maxPerRealm: number;

  constructor(maxPerRealm = 64) {
    this.#maxPerRealm = maxPerRealm;
  }

  get(realm: string, service: string | undefined, scopes: readonly string[], now = Date.now()): BearerToken | undefined {
    const wanted = normaliseScopes(scopes);
    const list = this.#tokens.get(realmKey(realm, service));
    if (!list) return undefined;
    return list.find((t) => t.expiresAt - EXPIRY_MARGIN_MS > now && wanted.every((atom) => t.scopes.includes(atom)));
  }

  /** The cached token or one fetched by `fetch`, shared by concurrent callers. */
  async getOrFetch(realm: string, service: string | undefined, scopes: readonly string[], fetch: () => Promise<BearerToken>): Promise<BearerToken> {
    const cached = this.get(realm, service, scopes);
    if (cached) return cached;
    const key = `${realmKey(realm, service)}\n${normaliseScopes(scopes).join(' ')}`;
    const pending = this.#inflight.get(key);
    if (pending) return await pending;
    const promise = fetch().then(
      (token) => {
        this.#inflight.delete(key);
        this.put(realm, service, token);
        return token;
      },
      (err: unknown) => {
        this.#inflight.delete(key);
        throw err;
      },
    );
    this.#inflight.set(key, promise);
    return await promise;
  }

  put(realm: string, service: string | undefined, token: BearerToken, now = Date.now()): void {
    const key = realmKey(realm, service);
    const live = (this.#tokens.get(key) ?? []).filter((t) => t.expiresAt > now && t.token !== token.token);
    live.unshift(token);
    this.#tokens.set(key, live.slice(0, this.#maxPerRealm));
  }

  /** Forgets a token the registry refused. */
  invalidate(realm: string, service: string | undefined, token: string): void {
    const key = realmKey(realm, service);
    const list = this.#tokens.get(key);
    if (list) this.#tokens.set(key, list.filter((t) => t.token !== token));
  }
}

function realmKey(realm: string, service: string | undefined): string {
  return `${realm}\n${service ?? ''}`;
}
