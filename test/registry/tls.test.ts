import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyGraph } from '../../src/oci/index.js';
import { RegistryClient } from '../../src/registry/index.js';
import { makeImage, startRegistry, storeOf, type TestRegistry } from '../harness/index.js';

let tls: TestRegistry;
let mutual: TestRegistry;

beforeAll(async () => {
  [tls, mutual] = await Promise.all([startRegistry({ tls: true, auth: 'basic' }), startRegistry({ tls: true, clientAuth: true })]);
});

afterAll(async () => {
  await Promise.all([tls?.stop(), mutual?.stop()]);
});

describe('TLS registries', () => {
  it('pushes over HTTPS when given the CA', async () => {
    const client = new RegistryClient(tls.host, { credentials: tls.credentials, tls: { caFile: tls.caFile } });
    try {
      expect(await client.ping()).toEqual({ origin: `https://${tls.host}`, auth: 'basic' });
      const image = await makeImage();
      const repo = client.repository('tls/app');
      await copyGraph(await storeOf([image]), repo, image.descriptor);
      expect(await repo.resolve(image.descriptor.digest)).toEqual(image.descriptor);
    } finally {
      await client.close();
    }
  });

  it('fails with TLS_ERROR without the CA, and never falls back to plain HTTP (even on loopback)', async () => {
    const client = new RegistryClient(tls.host, { credentials: tls.credentials });
    try {
      const err = await client.ping().catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TLS_ERROR' });
      expect((err as Error).message).toMatch(/CA/);
    } finally {
      await client.close();
    }
  });

  it('skips verification only for hosts listed as insecure', async () => {
    const client = new RegistryClient(tls.host, { credentials: tls.credentials, insecureRegistries: [tls.host] });
    try {
      expect(await client.ping()).toMatchObject({ origin: `https://${tls.host}` });
    } finally {
      await client.close();
    }
  });

  it('presents a client certificate to a registry that requires one', async () => {
    const withCert = new RegistryClient(mutual.host, {
      tls: { caFile: mutual.caFile, certFile: mutual.clientCertFile, keyFile: mutual.clientKeyFile },
    });
    const without = new RegistryClient(mutual.host, { tls: { caFile: mutual.caFile } });
    try {
      expect(await withCert.ping()).toEqual({ origin: `https://${mutual.host}`, auth: 'none' });
      const image = await makeImage();
      await copyGraph(await storeOf([image]), withCert.repository('mtls/app'), image.descriptor);
      await expect(without.ping()).rejects.toMatchObject({ code: 'TLS_ERROR' });
    } finally {
      await withCert.close();
      await without.close();
    }
  });
});
