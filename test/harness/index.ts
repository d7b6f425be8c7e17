// Test infrastructure shared by every suite that needs a registry: real `docker-registry`
// instances (plain, Basic, Bearer token, TLS), a fault-injecting proxy, test images, processes.
//
//   let registry: TestRegistry;
//   beforeAll(async () => { registry = await startRegistry({ auth: 'token', tls: false }); });
//   afterAll(async () => { await registry?.stop(); });
//   ... new RegistryClient(registry.host, { credentials: registry.credentials, tls: { caFile: registry.caFile } })
//   ... `skopeo copy --src-tls-verify=false docker://${registry.host}/repo:tag oci:DIR:tag`
//
// Everything listens on 127.0.0.1 on ephemeral ports; `stop()` kills the process and removes its
// files. `findDanglingReferences(registry.rootDirectory)` checks the no-manifest-without-blobs
// invariant; `startFaultProxy(registry.url, plan)` sits in front with a bounded fault plan.
export { startRegistry, type StartRegistryOptions, type TestRegistry, type RegistryAuth, type RegistryCredentials } from './registry.js';
export { startFaultProxy, type FaultProxy, type FaultRule, type FaultAction, type ProxyLogEntry, type FaultProxyOptions } from './fault-proxy.js';
export { startTokenServer, type TokenServer, type TokenServerOptions, type TokenRequestRecord } from './token-server.js';
export { makeCertificates, makeSigningCertificate, type TestCertificates } from './certificates.js';
export { run, spawnTracked, stopChild, tempDir, freePort, waitForPort } from './processes.js';
export {
  makeTar,
  makeLayer,
  makeImage,
  makeIndex,
  storeOf,
  readStream,
  diffIdOf,
  sha256,
  type TestFile,
  type TestLayer,
  type TestImage,
  type TestIndex,
  type MakeImageOptions,
} from './image.js';
export { findDanglingReferences } from './consistency.js';
