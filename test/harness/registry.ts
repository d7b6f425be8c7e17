import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeCertificates, makeSigningCertificate } from './certificates.js';
import { freePort, run, spawnTracked, stopChild, tempDir, waitForPort } from './processes.js';
import { startTokenServer, type TokenRequestRecord } from './token-server.js';

export type RegistryAuth = 'none' | 'basic' | 'token';

export interface StartRegistryOptions {
  readonly auth?: RegistryAuth;
  /** Serve HTTPS with a certificate from a throwaway CA (`caFile` in the result). */
  readonly tls?: boolean;
  /** With `tls`: require a client certificate signed by the same CA. */
  readonly clientAuth?: boolean;
  /** Token lifetime for `auth: 'token'`, seconds. */
  readonly tokenExpiresIn?: number;
  /** The JWT `exp` for `auth: 'token'` when it should differ from the announced lifetime. */
  readonly tokenJwtLifetime?: number;
  /**
   * Where to create the registry's temp directory (default: the OS temp dir). Benchmarks pass
   * a tmpfs such as /dev/shm so the disk does not dominate the numbers.
   */
  readonly parentDirectory?: string;
}

export interface RegistryCredentials {
  readonly username: string;
  readonly password: string;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, what references name. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` or `https://…`. */
  readonly url: string;
  /** Read-write credentials (basic and token auth). */
  readonly credentials?: RegistryCredentials;
  /** Token auth only: a user whose tokens grant pull and nothing else. */
  readonly readOnlyCredentials?: RegistryCredentials;
  /** Token auth only: an OAuth2 refresh token (Docker identity token) of the read-write user. */
  readonly identityToken?: string;
  /** Token auth only: every request the token server answered. */
  readonly tokenRequests?: readonly TokenRequestRecord[];
  /** TLS only: the CA that signed the server (and client) certificate. */
  readonly caFile?: string;
  readonly clientCertFile?: string;
  readonly clientKeyFile?: string;
  /** The registry's storage directory and config file. */
  readonly rootDirectory: string;
  readonly configFile: string;
  /** Registry output so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

const SERVICE = 'stevedore-test-registry';
const ISSUER = 'stevedore-test-issuer';

/**
 * Starts Debian's `docker-registry` (CNCF distribution 2.8) on an ephemeral 127.0.0.1 port with a
 * temporary config: plain, htpasswd Basic auth, or Bearer tokens from a token server started
 * alongside; optionally over TLS with a throwaway CA. `stop()` kills it and removes every file.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = options.auth ?? 'none';
  const dir = await tempDir('stevedore-registry-', options.parentDirectory);
  const cleanups: (() => Promise<void>)[] = [dir.remove];
  const cleanup = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const rootDirectory = join(dir.path, 'data');
    await mkdir(rootDirectory);
    const config: string[] = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${rootDirectory}`,
      '  delete:',
      '    enabled: true',
      '  maintenance:',
      '    uploadpurging:',
      '      enabled: false',
    ];
    const result: {
      credentials?: RegistryCredentials;
      readOnlyCredentials?: RegistryCredentials;
      identityToken?: string;
      tokenRequests?: readonly TokenRequestRecord[];
      caFile?: string;
      clientCertFile?: string;
      clientKeyFile?: string;
    } = {};

    if (auth === 'basic') {
      const credentials = { username: 'stevedore', password: `pw-${randomBytes(9).toString('base64url')}` };
      const { stdout } = await run('htpasswd', ['-Bbn', credentials.username, credentials.password]);
      const htpasswd = join(dir.path, 'htpasswd');
      await writeFile(htpasswd, stdout);
      config.push('auth:', '  htpasswd:', '    realm: stevedore-test', `    path: ${htpasswd}`);
      result.credentials = credentials;
    } else if (auth === 'token') {
      const credentials = { username: 'stevedore', password: `pw-${randomBytes(9).toString('base64url')}` };
      const readOnly = { username: 'reader', password: `pw-${randomBytes(9).toString('base64url')}` };
      const identityToken = `refresh-${randomBytes(12).toString('hex')}`;
      const signing = await makeSigningCertificate(dir.path);
      const tokens = await startTokenServer({
        issuer: ISSUER,
        service: SERVICE,
        keyFile: signing.keyFile,
        certFile: signing.certFile,
        users: {
          [credentials.username]: { password: credentials.password, actions: ['pull', 'push', 'delete'], refreshToken: identityToken },
          [readOnly.username]: { password: readOnly.password, actions: ['pull'] },
        },
        ...(options.tokenExpiresIn === undefined ? {} : { expiresIn: options.tokenExpiresIn }),
        ...(options.tokenJwtLifetime === undefined ? {} : { jwtLifetime: options.tokenJwtLifetime }),
      });
      cleanups.push(tokens.stop);
      config.push('auth:', '  token:', `    realm: ${tokens.realm}`, `    service: ${SERVICE}`, `    issuer: ${ISSUER}`, `    rootcertbundle: ${signing.certFile}`);
      Object.assign(result, { credentials, readOnlyCredentials: readOnly, identityToken, tokenRequests: tokens.requests });
    }

    let tlsLines: string[] = [];
    if (options.tls) {
      const certs = await makeCertificates(dir.path);
      tlsLines = ['  tls:', `    certificate: ${certs.certFile}`, `    key: ${certs.keyFile}`];
      if (options.clientAuth) tlsLines.push('    clientcas:', `      - ${certs.caFile}`);
      result.caFile = certs.caFile;
      result.clientCertFile = certs.clientCertFile;
      result.clientKeyFile = certs.clientKeyFile;
    }

    // The port is free when chosen; another process may take it before the registry binds, so
    // try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const configFile = join(dir.path, 'config.yml');
      const full = [...config, 'http:', `  addr: 127.0.0.1:${port}`, `  secret: ${randomBytes(16).toString('hex')}`, ...tlsLines, ''].join('\n');
      await writeFile(configFile, full);
      const { child, output } = spawnTracked('docker-registry', ['serve', configFile]);
      try {
        await waitForPort(port, 15_000, () => child.exitCode !== null || child.signalCode !== null);
      } catch (err) {
        await stopChild(child);
        if (attempt < 3) continue;
        throw new Error(`docker-registry did not start: ${(err as Error).message}\n${output()}`);
      }
      cleanups.push(() => stopChild(child));
      const host = `127.0.0.1:${port}`;
      let stopped = false;
      return {
        host,
        url: `${options.tls ? 'https' : 'http'}://${host}`,
        rootDirectory,
        configFile,
        output,
        ...result,
        stop: async () => {
          if (stopped) return;
          stopped = true;
          await cleanup();
        },
      };
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}
