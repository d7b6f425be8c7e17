import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './processes.js';

export interface TestCertificates {
  /** The self-signed CA that signed the server and client certificates. */
  readonly caFile: string;
  /** Server certificate for 127.0.0.1 and localhost. */
  readonly certFile: string;
  readonly keyFile: string;
  /** A client certificate (extendedKeyUsage clientAuth) for mutual TLS. */
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
}

/**
 * Generates, with the openssl CLI, a throwaway CA (EC P-256, valid 2 days) and a server and a
 * client certificate it signed, in `dir`. Go's TLS (the registry) requires subjectAltName.
 */
export async function makeCertificates(dir: string): Promise<TestCertificates> {
  const file = (name: string): string => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=stevedore-test-ca', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  await writeFile(file('client.ext'), 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  for (const [name, subject] of [['server', '/CN=127.0.0.1'], ['client', '/CN=stevedore-test-client']] as const) {
    await run('openssl', ['req', ...ec, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', subject]);
    await run('openssl', ['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial', '-out', file(`${name}.crt`), '-days', '2', '-extfile', file(`${name}.ext`)]);
  }
  return {
    caFile: file('ca.crt'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    clientCertFile: file('client.crt'),
    clientKeyFile: file('client.key'),
  };
}

/** An RSA key and a self-signed certificate for it (the token issuer's signing material). */
export async function makeSigningCertificate(dir: string): Promise<{ keyFile: string; certFile: string }> {
  const keyFile = join(dir, 'token.key');
  const certFile = join(dir, 'token.crt');
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=stevedore-test-token-issuer']);
  return { keyFile, certFile };
}
