import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The dependency direction of ../shared/STYLE.md, as data. A module may import itself, the
// modules listed here, and the shared `errors.ts`. `index` is the public barrel src/index.ts.
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  oci: [],
  layers: ['oci'],
  registry: ['oci'],
  dockerfile: ['oci'],
  build: ['oci', 'layers', 'registry', 'dockerfile'],
  subassembly: ['oci', 'layers', 'registry'],
  service: ['oci', 'layers', 'registry', 'dockerfile', 'build', 'subassembly'],
  api: ['index'],
  // The CLI is the top: it may start the gRPC adapter (`stevedore serve`).
  cli: ['index', 'api'],
  index: ['oci', 'layers', 'registry', 'dockerfile', 'build', 'subassembly', 'service'],
};

const srcRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'gen' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The module a source file belongs to: its first folder under src/, or `index`/`errors`. */
function moduleOf(file: string): string {
  const rel = relative(srcRoot, file).split(sep);
  if (rel.length === 1) return rel[0] === 'index.ts' ? 'index' : 'errors';
  return rel[0]!;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/g)) specifiers.push(m[1]!);
  for (const m of text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g)) specifiers.push(m[1]!);
  return specifiers;
}

const files = sourceFiles(srcRoot);

describe('module boundaries (STYLE.md "Layout and dependency direction")', () => {
  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  for (const file of files) {
    const from = moduleOf(file);
    const rel = relative(srcRoot, file);
    it(`${rel} imports only what its module may`, () => {
      const violations: string[] = [];
      for (const spec of importsOf(file)) {
        if (spec.startsWith('@grpc/') && from !== 'api') violations.push(`${spec}: only src/api/ may import gRPC`);
        if (!spec.startsWith('.')) continue;
        const target = resolve(dirname(file), spec);
        const to = moduleOf(target);
        if (to === from || to === 'errors') continue;
        if (!(ALLOWED[from] ?? []).includes(to)) {
          violations.push(`${spec}: ${from} must not import ${to}`);
          continue;
        }
        // Across modules, go through the module's public barrel.
        if (to !== 'index' && relative(join(srcRoot, to), target) !== 'index.js') {
          violations.push(`${spec}: import ${to} through ${to}/index.js`);
        }
      }
      expect(violations).toEqual([]);
    });
  }
});
