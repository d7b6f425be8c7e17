import { describe, expect, it } from 'vitest';
import { parseChallenges } from '../../src/registry/challenge.js';
import { codeForResponse, isTemporaryError, parseErrorBody, redactUrl, RegistryError } from '../../src/registry/errors.js';
import { apiHost, configKeyHost, dockerConfigKey, isLoopbackHost } from '../../src/registry/hosts.js';
import { backoffDelay, defaultRetryPolicy, gitpodRetryPolicy, noRetryPolicy, parseRetryAfter, withRetries } from '../../src/registry/retry.js';
import { groupScopes, normaliseScopes, repositoryScope } from '../../src/registry/scope.js';
import { TokenCache } from '../../src/registry/token.js';
import { decodeDockerAuth, encodeDockerAuth } from '../../src/registry/credentials.js';
import { nextLink } from '../../src/registry/repository.js';
import { chunksOf } from '../../src/registry/upload.js';

describe('WWW-Authenticate parsing', () => {
  it('reads a Bearer challenge with quoted parameters', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/alpine:pull' } },
    ]);
  });

  it('reads several challenges in one header and across headers, with escapes and odd spacing', () => {
    const challenges = parseChallenges(['Basic realm="a \\"quoted\\" realm" , Bearer realm=https://x/token, service = "svc",error="insufficient_scope"', 'Negotiate abc==']);
    expect(challenges.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'negotiate']);
    expect(challenges[0]!.params).toEqual({ realm: 'a "quoted" realm' });
    expect(challenges[1]!.params).toEqual({ realm: 'https://x/token', service: 'svc', error: 'insufficient_scope' });
  });

  it('never throws on garbage', () => {
    for (const input of ['', '=', ',,,', '"unterminated', 'Bearer realm="x', '\u0000\u0001']) expect(() => parseChallenges(input)).not.toThrow();
    expect(parseChallenges(undefined)).toEqual([]);
  });
});

describe('scopes', () => {
  it('normalises and groups atoms, keeping names with ports', () => {
    const atoms = normaliseScopes(['repository:a/b:push,pull', 'repository:a/b:pull', 'repository:c:pull', 'registry:catalog:*']);
    expect(atoms).toEqual(['registry:catalog:*', 'repository:a/b:pull', 'repository:a/b:push', 'repository:c:pull']);
    expect(groupScopes(atoms)).toEqual(['registry:catalog:*', 'repository:a/b:pull,push', 'repository:c:pull']);
    expect(repositoryScope('x', ['push', 'pull'])).toBe('repository:x:pull,push');
  });

  it('a cached push token serves a pull request, not the other way round', () => {
    const cache = new TokenCache();
    cache.put('realm', 'svc', { token: 'pull-only', expiresAt: Date.now() + 60_000, scopes: normaliseScopes(['repository:a:pull']) });
    expect(cache.get('realm', 'svc', ['repository:a:pull,push'])).toBeUndefined();
    cache.put('realm', 'svc', { token: 'push', expiresAt: Date.now() + 60_000, scopes: normaliseScopes(['repository:a:pull,push']) });
    expect(cache.get('realm', 'svc', ['repository:a:pull'])?.token).toBe('push');
    expect(cache.get('realm', 'other', ['repository:a:pull'])).toBeUndefined();
    cache.invalidate('realm', 'svc', 'push');
    expect(cache.get('realm', 'svc', ['repository:a:pull'])?.token).toBe('pull-only');
  });

  it('does not hand out a token about to expire', () => {
    const cache = new TokenCache();
    cache.put('r', undefined, { token: 't', expiresAt: Date.now() + 5_000, scopes: [] });
    expect(cache.get('r', undefined, [])).toBeUndefined();
  });

  it('shares one fetch between concurrent callers', async () => {
    const cache = new TokenCache();
    let fetches = 0;
    const fetch = async (): Promise<{ token: string; expiresAt: number; scopes: string[] }> => {
      fetches++;
      await new Promise((r) => setTimeout(r, 10));
      return { token: 't', expiresAt: Date.now() + 60_000, scopes: ['repository:a:pull'] };
    };
    const results = await Promise.all([1, 2, 3].map(() => cache.getOrFetch('r', 's', ['repository:a:pull'], fetch)));
    expect(results.map((r) => r.token)).toEqual(['t', 't', 't']);
    expect(fetches).toBe(1);
  });
});

describe('errors', () => {
  it('redacts query values except public ones, and user info', () => {
    expect(redactUrl('https://user:secret@s3.example/bucket/blob?X-Amz-Signature=abc&digest=sha256:1&_state=zzz')).toBe(
      'https://s3.example/bucket/blob?X-Amz-Signature=REDACTED&digest=sha256%3A1&_state=REDACTED',
    );
    expect(redactUrl('not a url')).toBe('(invalid URL)');
  });

  it('parses distribution error bodies tolerantly', () => {
    expect(parseErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}')).toEqual([
      { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'x' } },
    ]);
    expect(parseErrorBody('<html>502 Bad Gateway</html>')).toEqual([]);
    expect(parseErrorBody('{"errors":"nope"}')).toEqual([]);
    expect(parseErrorBody('{"errors":[{"message":"no code"},{"code":"DENIED"}]}')).toEqual([{ code: 'DENIED', message: '' }]);
  });

  it('derives codes from the body first, then the status', () => {
    expect(codeForResponse(404, [{ code: 'BLOB_UNKNOWN', message: '' }])).toBe('BLOB_UNKNOWN');
    expect(codeForResponse(404, [{ code: 'SOMETHING_ELSE', message: '' }])).toBe('NOT_FOUND');
    expect(codeForResponse(401, [])).toBe('UNAUTHORIZED');
    expect(codeForResponse(503, [{ code: 'UNAVAILABLE', message: '' }])).toBe('SERVER_ERROR');
  });

  it('classifies temporary failures like go-retryablehttp', () => {
    const status = (s: number): RegistryError => new RegistryError({ code: codeForResponse(s, []), message: 'x', status: s });
    expect([429, 500, 502, 503, 504, 408].every((s) => isTemporaryError(status(s)))).toBe(true);
    expect([400, 401, 403, 404, 501].some((s) => isTemporaryError(status(s)))).toBe(false);
    expect(isTemporaryError(new RegistryError({ code: 'CONNECTION_FAILED', message: 'reset' }))).toBe(true);
    expect(isTemporaryError(new RegistryError({ code: 'TLS_ERROR', message: 'bad cert' }))).toBe(false);
    expect(isTemporaryError(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true);
    expect(isTemporaryError(Object.assign(new Error('dns'), { code: 'ENOTFOUND' }))).toBe(false);
    expect(isTemporaryError(new Error('plain'))).toBe(false);
  });
});

describe('retry policies', () => {
  it('gitpod: 4 attempts, linear from 500 ms, 15 s per request', () => {
    expect(gitpodRetryPolicy.maxAttempts).toBe(4);
    expect([1, 2, 3].map((n) => backoffDelay(gitpodRetryPolicy, n))).toEqual([500, 1000, 1500]);
    expect(gitpodRetryPolicy.requestTimeoutMs).toBe(15_000);
    expect(noRetryPolicy.maxAttempts).toBe(1);
  });

  it('default: exponential with jitter within [d/2, d], capped', () => {
    for (let n = 1; n <= 10; n++) {
      const full = Math.min(defaultRetryPolicy.initialDelayMs * 2 ** (n - 1), defaultRetryPolicy.maxDelayMs);
      expect(backoffDelay(defaultRetryPolicy, n, () => 0)).toBe(full / 2);
      expect(backoffDelay(defaultRetryPolicy, n, () => 1)).toBe(full);
    }
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(new Date(Date.now() + 10_000).toUTCString(), Date.now())).toBeGreaterThan(8000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  const fast = { ...defaultRetryPolicy, initialDelayMs: 1, maxDelayMs: 2 };

  it('retries temporary errors up to the limit, then throws the last one', async () => {
    let calls = 0;
    const err = new RegistryError({ code: 'SERVER_ERROR', message: 'boom', status: 503 });
    await expect(
      withRetries(fast, async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(fast.maxAttempts);
  });

  it('does not retry permanent errors, and succeeds after transient ones', async () => {
    let calls = 0;
    await expect(
      withRetries(fast, async () => {
        calls++;
        throw new RegistryError({ code: 'DENIED', message: 'no', status: 403 });
      }),
    ).rejects.toMatchObject({ code: 'DENIED' });
    expect(calls).toBe(1);
    const retries: number[] = [];
    const value = await withRetries(
      fast,
      async (attempt) => {
        if (attempt < 3) throw new RegistryError({ code: 'CONNECTION_FAILED', message: 'reset' });
        return 'ok';
      },
      { onRetry: (info) => retries.push(info.attempt) },
    );
    expect(value).toBe('ok');
    expect(retries).toEqual([1, 2]);
  });

  it('honours Retry-After, and gives up when it exceeds the cap', async () => {
    const started = Date.now();
    let calls = 0;
    await withRetries(fast, async () => {
      if (calls++ === 0) throw new RegistryError({ code: 'TOOMANYREQUESTS', message: 'slow down', status: 429, retryAfterMs: 300 });
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    await expect(
      withRetries({ ...fast, maxRetryAfterMs: 1000 }, async () => {
        throw new RegistryError({ code: 'TOOMANYREQUESTS', message: 'come back tomorrow', status: 429, retryAfterMs: 86_400_000 });
      }),
    ).rejects.toMatchObject({ code: 'TOOMANYREQUESTS' });
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    const pending = withRetries({ ...fast, initialDelayMs: 10_000, maxDelayMs: 10_000, jitter: false }, async () => {
      throw new RegistryError({ code: 'SERVER_ERROR', message: 'x', status: 500 });
    }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('hosts and credentials', () => {
  it('knows loopback hosts and Docker Hub', () => {
    expect(['localhost:5000', '127.0.0.1:1', '127.3.2.1', '[::1]:5000', '::1'].every(isLoopbackHost)).toBe(true);
    expect(['example.com', '10.0.0.1:5000', '128.0.0.1', 'localhost.example.com'].some(isLoopbackHost)).toBe(false);
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('ghcr.io')).toBe('ghcr.io');
    expect(dockerConfigKey('docker.io')).toBe('https://index.docker.io/v1/');
    expect(configKeyHost('https://registry.example:5000/v1/')).toBe('registry.example:5000');
  });

  it('decodes Docker auth on the first colon', () => {
    expect(decodeDockerAuth(encodeDockerAuth('user', 'pa:ss:word'))).toEqual({ username: 'user', password: 'pa:ss:word' });
    expect(decodeDockerAuth('not base64!')).toBeUndefined();
    expect(decodeDockerAuth(Buffer.from('nocolon').toString('base64'))).toBeUndefined();
  });

  it('follows Link pagination', () => {
    const base = new URL('http://r/v2/x/tags/list?n=2');
    expect(nextLink('</v2/x/tags/list?n=2&last=b>; rel="next"', base)?.toString()).toBe('http://r/v2/x/tags/list?n=2&last=b');
    expect(nextLink(undefined, base)).toBeUndefined();
    expect(nextLink('<http://r/other>; rel="prev"', base)).toBeUndefined();
  });
});

describe('chunking', () => {
  it('splits any stream into exact chunks', async () => {
    async function* source(): AsyncGenerator<Buffer> {
      for (const size of [1, 7, 3, 20, 0, 5]) yield Buffer.alloc(size, size);
    }
    const chunks: Buffer[] = [];
    for await (const c of chunksOf(source(), 8)) chunks.push(c);
    expect(chunks.map((c) => c.length)).toEqual([8, 8, 8, 8, 4]);
    expect(Buffer.concat(chunks)).toEqual(Buffer.concat([1, 7, 3, 20, 0, 5].map((n) => Buffer.alloc(n, n))));
  });
});
