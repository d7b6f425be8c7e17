import { createHash } from 'node:crypto';

/**
 * Cache keys. A step's key is a SHA-256 over a canonical encoding of its named inputs, in a
 * fixed order: what it starts from (the previous step's state, or the stage's root), the build
 * args it can see, the instruction with its words expanded, and the files it reads. The inputs
 * are named so that a miss can say which one differs from the last time the same step ran
 * ("build arg VERSION changed", "COPY src/: src/app.ts changed").
 *
 * The encoding is length-prefixed (`<bytes of name>:<name><bytes of value>:<value>`), so no
 * choice of names or values can make two different input lists encode alike.
 */

/** One named input of a key. `value` is already canonical (a digest, a JSON text, a number). */
export interface CacheInput {
  /** What the input is, for messages: `previous step`, `build arg VERSION`, `file src/app.ts`. */
  readonly name: string;
  readonly value: string;
  /**
   * How the input reads in a miss reason (default: `name`): the files of a COPY say which step
   * they belong to (`COPY src/: src/app.ts`), then `changed`, `added` or `removed` follows.
   */
  readonly label?: string;
}

/** The key of a list of inputs: 64 hex digits. */
export function cacheKey(inputs: readonly CacheInput[]): string {
  const hash = createHash('sha256');
  hash.update('stevedore-cache-key-v1\n');
  for (const input of inputs) {
    hash.update(`${Buffer.byteLength(input.name)}:${input.name}${Buffer.byteLength(input.value)}:`);
    hash.update(input.value);
  }
  return hash.digest('hex');
}

/** The state after a step: its key and what it produced (a layer's diffID, or nothing). */
export function chainState(key: string, result: string | undefined): string {
  return createHash('sha256')
    .update(`stevedore-cache-state-v1\n${key}\n${result ?? 'no layer'}`)
    .digest('hex');
}

/** Digest of an input value too large to keep as it is (a canonical JSON text). */
export function inputDigest(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}

/**
 * Why `current` misses, against the inputs of the last run of the same step: the first input
 * whose value differs, or that appeared or disappeared. Undefined when they are equal (the
 * entry itself was pruned or never written).
 */
export function firstDifference(previous: readonly CacheInput[], current: readonly CacheInput[]): string | undefined {
  const before = new Map(previous.map((i) => [i.name, i.value]));
  const now = new Set(current.map((i) => i.name));
  for (const input of current) {
    const old = before.get(input.name);
    if (old === input.value) continue;
    return `${input.label ?? input.name} ${old === undefined ? 'added' : 'changed'}`;
  }
  for (const input of previous) {
    if (!now.has(input.name)) return `${input.label ?? input.name} removed`;
  }
  return undefined;
}
