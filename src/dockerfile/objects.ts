/**
 * Adds the defined entries of `optional` to `target`. Records with optional fields are built
 * this way instead of with `...(x === undefined ? {} : { x })`: under exactOptionalPropertyTypes
 * that spread is the idiom, but V8 builds such literals through a slow runtime path into
 * dictionary-mode objects, which made parsing a large Dockerfile several times slower.
 */
export function assignDefined<T extends object, O extends Record<string, unknown>>(
  target: T,
  optional: O,
): T & { [K in keyof O]?: Exclude<O[K], undefined> } {
  const out = target as Record<string, unknown>;
  for (const key of Object.keys(optional)) {
    const value = optional[key];
    if (value !== undefined) out[key] = value;
  }
  return target as T & { [K in keyof O]?: Exclude<O[K], undefined> };
}

