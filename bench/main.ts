// `npm run bench -- NAME [ARGS]`: dispatches to bench/NAME.ts, which exports `run(args)`.
// Benchmarks live apart from the tests: nothing here is asserted, everything is printed and
// written as JSON next to a note of the machine it ran on.
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== 'main.ts')
  .map((f) => f.slice(0, -3))
  .sort();

const [name, ...args] = process.argv.slice(2);
if (name === undefined || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [ARGS]\navailable: ${available.join(', ')}`);
  process.exit(name === undefined ? 0 : 2);
}
const bench = (await import(pathToFileURL(`${here}/${name}.ts`).href)) as { run(args: string[]): Promise<void> };
await bench.run(args);
