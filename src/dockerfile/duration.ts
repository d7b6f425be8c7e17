// Go's `time.ParseDuration`, which HEALTHCHECK's interval flags go through.

const UNITS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  'µs': 1e3, // U+00B5 micro sign
  'μs': 1e3, // U+03BC Greek mu
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

const MAX_NANOS = 2 ** 63 - 1;

/** Nanoseconds for a Go duration string (`1h30m`, `1.5s`, `300ms`); undefined if invalid. */
export function parseGoDurationNanoseconds(input: string): number | undefined {
  let s = input;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s.startsWith('-');
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') return undefined;
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]+)/.exec(s);
    if (m === null) return undefined;
    const [whole, intPart = '', fracPart, unitText = ''] = m;
    if (intPart === '' && (fracPart === undefined || fracPart === '')) return undefined;
    if (!Object.hasOwn(UNITS, unitText)) return undefined;
    const unit = UNITS[unitText]!;
    const value = Number(`${intPart === '' ? '0' : intPart}.${fracPart ?? ''}0`) * unit;
    total += value;
    if (total > MAX_NANOS) return undefined;
    s = s.slice(whole.length);
  }
  return Math.round(negative ? -total : total);
}
