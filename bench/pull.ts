// `npm run bench -- pull [--size 1G] [--layers 200] [--layer-size 32K] [--concurrency 8] [--json FILE] [--only large|many]`
//
// Stevedore's registry pull (copyGraph from a local docker-registry into a fresh OCI layout)
// against `skopeo copy` from the same registry into a fresh layout; see bench/lib/registry.ts.
import { runRegistryBench } from './lib/registry.js';

export async function run(args: string[]): Promise<void> {
  await runRegistryBench('pull', args);
}
