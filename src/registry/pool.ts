import type { Reference } from '../oci/index.js';
import { RegistryClient } from './client.js';
import { apiHost } from './hosts.js';
import type { RegistryClientOptions } from './options.js';
import type { RegistryRepository } from './repository.js';

/**
 * One `RegistryClient` per registry host, created on first use with shared options, so that a
 * copy between two registries, or many resolutions against one, reuse connections and tokens.
 */
export class RegistryClientPool {
  readonly options: RegistryClientOptions;
  readonly #clients = new Map<string, RegistryClient>();

  constructor(options: RegistryClientOptions = {}) {
    this.options = options;
  }

  client(registry: string): RegistryClient {
    const key = apiHost(registry);
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = new RegistryClient(registry, this.options);
      this.#clients.set(key, client);
    }
    return client;
  }

  /** The repository a reference names (its tag and digest are the caller's business). */
  repository(ref: Pick<Reference, 'registry' | 'repository'>): RegistryRepository {
    return this.client(ref.registry).repository(ref.repository);
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map((c) => c.close()));
  }
}
