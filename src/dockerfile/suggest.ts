// "Did you mean": the closest known name by Levenshtein distance, as BuildKit's `suggest`
// package offers for misspelt instructions, flags, mount keys and stage names.

/** The Levenshtein edit distance between two strings, by code point. */
export function levenshtein(a: string, b: string): number {
  const s = Array.from(a);
  const t = Array.from(b);
  if (s.length === 0) return t.length;
  if (t.length === 0) return s.length;
  let prev = new Array<number>(t.length + 1);
  let curr = new Array<number>(t.length + 1);
  for (let j = 0; j <= t.length; j++) prev[j] = j;
  for (let i = 1; i <= s.length; i++) {
    curr[0] = i;
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      curr[j] = Math.min(prev[j]! + 1, curr[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, curr] = [curr, prev];
  }
  return prev[t.length]!;
}

/**
 * The option closest to `value`, if it is close enough to be a likely typo: at most two edits,
 * and fewer edits than the value has characters (so `x` does not suggest `id`). An exact match
 * suggests nothing, since then the name was not the problem.
 */
export function suggest(value: string, options: Iterable<string>, caseSensitive = false): string | undefined {
  if (value === '') return undefined;
  const v = caseSensitive ? value : value.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const option of options) {
    const o = caseSensitive ? option : option.toLowerCase();
    if (o === v) return undefined;
    const d = levenshtein(v, o);
    if (d < bestDistance) {
      bestDistance = d;
      best = option;
    }
  }
  const limit = Math.min(2, Array.from(v).length - 1);
  return bestDistance <= limit ? best : undefined;
}

/** `message (did you mean X?)` when there is a likely intended name. */
export function withSuggestion(message: string, value: string, options: Iterable<string>, caseSensitive = false): string {
  const match = suggest(value, options, caseSensitive);
  return match === undefined ? message : `${message} (did you mean ${match}?)`;
}
