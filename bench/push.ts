// `npm run bench -- push [--size 1G] [--layers 200] [--layer-size 32K] [--concurrency 8] [--json FILE] [--only large|many]`
//
// Stevedore's registry push (copyGraph from an OCI layout to a fresh local docker-registry)
// against `skopeo copy` with the same source and a fresh registry; see bench/lib/registry.ts.
import { runRegistryBench } from './lib/registry.js';

export async function run(args: string[]): Promise<void> {
  await runRegistryBench('push', args);
}
