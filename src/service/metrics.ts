/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format 0.0.4 (families sorted by name, series by label values). No dependency: the
 * format is a few rules (HELP escapes `\` and newlines; label values also escape `"`).
 */

type Labels = Readonly<Record<string, string>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Prometheus' default buckets (seconds). */
export const DEFAULT_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly labelNames: readonly string[];
  render(lines: string[]): void;
}

export interface Counter {
  inc(labels?: Record<string, string>, by?: number): void;
}

export interface Gauge {
  set(value: number, labels?: Record<string, string>): void;
  inc(labels?: Record<string, string>, by?: number): void;
  dec(labels?: Record<string, string>, by?: number): void;
}

export interface Histogram {
  observe(value: number, labels?: Record<string, string>): void;
}

export class MetricsRegistry {
  readonly #families = new Map<string, { family: Family; handle: unknown }>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#register(name, help, 'counter', labelNames, () => {
      const series = new SeriesMap<number>(name, labelNames);
      const handle: Counter = {
        inc: (labels = {}, by = 1) => {
          if (!(by >= 0)) throw new RangeError(`counter ${name} can only increase (got ${by})`);
          series.update(labels, 0, (v) => v + by);
        },
      };
      const family = {
        render: (lines: string[]) => {
          for (const [key, value] of series.entries()) lines.push(`${name}${key} ${formatValue(value)}`);
        },
      };
      return { family, handle };
    });
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#register(name, help, 'gauge', labelNames, () => {
      const series = new SeriesMap<number>(name, labelNames);
      const handle: Gauge = {
        set: (value, labels = {}) => series.update(labels, 0, () => value),
        inc: (labels = {}, by = 1) => series.update(labels, 0, (v) => v + by),
        dec: (labels = {}, by = 1) => series.update(labels, 0, (v) => v - by),
      };
      const family = {
        render: (lines: string[]) => {
          for (const [key, value] of series.entries()) lines.push(`${name}${key} ${formatValue(value)}`);
        },
      };
      return { family, handle };
    });
  }

  histogram(name: string, help: string, buckets: readonly number[] = DEFAULT_BUCKETS, labelNames: readonly string[] = []): Histogram {
    if (labelNames.includes('le')) throw new Error(`histogram ${name}: "le" is reserved`);
    const bounds = [...new Set(buckets)].sort((a, b) => a - b).filter((b) => b !== Number.POSITIVE_INFINITY);
    if (bounds.some((b) => Number.isNaN(b))) throw new Error(`histogram ${name}: buckets must be numbers`);
    return this.#register(name, help, 'histogram', labelNames, () => {
      interface State {
        counts: number[];
        sum: number;
        count: number;
      }
      const series = new SeriesMap<State>(name, labelNames);
      const handle: Histogram = {
        observe: (value, labels = {}) =>
          series.update(labels, { counts: bounds.map(() => 0), sum: 0, count: 0 }, (state) => {
            bounds.forEach((bound, i) => {
              if (value <= bound) state.counts[i]!++;
            });
            state.sum += value;
            state.count++;
            return state;
          }),
      };
      const family = {
        render: (lines: string[]) => {
          for (const [key, state, labels] of series.entries()) {
            bounds.forEach((bound, i) => lines.push(`${name}_bucket${labelString({ ...labels, le: formatValue(bound) }, [...labelNames, 'le'])} ${state.counts[i]}`));
            lines.push(`${name}_bucket${labelString({ ...labels, le: '+Inf' }, [...labelNames, 'le'])} ${state.count}`);
            lines.push(`${name}_sum${key} ${formatValue(state.sum)}`);
            lines.push(`${name}_count${key} ${state.count}`);
          }
        },
      };
      return { family, handle };
    });
  }

  /** The text format (version 0.0.4), families sorted by name. */
  render(): string {
    const lines: string[] = [];
    const names = [...this.#families.keys()].sort();
    for (const name of names) {
      const { family } = this.#families.get(name)!;
      lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
      family.render(lines);
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }

  /** Registering the same name again with the same type and labels returns the existing metric. */
  #register<H>(
    name: string,
    help: string,
    type: Family['type'],
    labelNames: readonly string[],
    make: () => { family: { render(lines: string[]): void }; handle: H },
  ): H {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`metric ${name}: invalid label name ${JSON.stringify(label)}`);
    }
    const existing = this.#families.get(name);
    if (existing !== undefined) {
      if (existing.family.type !== type || existing.family.labelNames.join(',') !== labelNames.join(',')) {
        throw new Error(`metric ${name} is already registered as a ${existing.family.type} with labels [${existing.family.labelNames.join(', ')}]`);
      }
      return existing.handle as H;
    }
    const { family, handle } = make();
    this.#families.set(name, { family: { name, help, type, labelNames: [...labelNames], render: family.render }, handle });
    return handle;
  }
}

/** Series of one family by their label values (sorted for a stable rendering). */
class SeriesMap<T> {
  readonly #name: string;
  readonly #labelNames: readonly string[];
  readonly #series = new Map<string, { labels: Labels; value: T }>();

  constructor(name: string, labelNames: readonly string[]) {
    this.#name = name;
    this.#labelNames = labelNames;
  }

  update(labels: Labels, initial: T, apply: (value: T) => T): void {
    for (const key of Object.keys(labels)) {
      if (!this.#labelNames.includes(key)) throw new Error(`metric ${this.#name} has no label ${JSON.stringify(key)}`);
    }
    const complete: Record<string, string> = {};
    for (const label of this.#labelNames) complete[label] = labels[label] ?? '';
    const key = labelString(complete, this.#labelNames);
    const entry = this.#series.get(key);
    if (entry === undefined) this.#series.set(key, { labels: complete, value: apply(initial) });
    else entry.value = apply(entry.value);
  }

  entries(): [string, T, Labels][] {
    return [...this.#series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, { labels, value }]) => [key, value, labels]);
  }
}

function labelString(labels: Labels, names: readonly string[]): string {
  if (names.length === 0) return '';
  return `{${names.map((name) => `${name}="${escapeLabelValue(labels[name] ?? '')}"`).join(',')}}`;
}

export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
