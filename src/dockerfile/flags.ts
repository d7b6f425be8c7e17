import { DockerfileError, DockerfileErrorCode } from './errors.js';
import { goQuote } from './text.js';
import { withSuggestion } from './suggest.js';

/**
 * Instruction flags (`--from=x`, `--link`), BuildKit's `BFlags`: each instruction declares the
 * flags it takes, then the words are checked against them. A flag the instruction does not take
 * is an error with a "did you mean", as are a repeated flag, a missing value and a bad boolean.
 */

type FlagKind = 'bool' | 'string' | 'strings';

const NONE: readonly string[] = [];

export class FlagSet {
  // Most instructions have no flags: the maps are only made when there is something to hold.
  private readonly declared: Map<string, FlagKind> | undefined;
  private values: Map<string, string> | undefined;
  private lists: Map<string, string[]> | undefined;
  private used: Set<string> | undefined;

  constructor(
    private readonly words: readonly string[],
    private readonly instruction: string,
  ) {
    if (words.length > 0) this.declared = new Map();
  }

  bool(name: string): this {
    this.declared?.set(name, 'bool');
    return this;
  }

  string(name: string): this {
    this.declared?.set(name, 'string');
    return this;
  }

  strings(name: string): this {
    this.declared?.set(name, 'strings');
    return this;
  }

  /** Checks every word; throws `DockerfileError` (UNKNOWN_FLAG or INVALID_FLAG). */
  parse(): this {
    const declared = this.declared;
    if (declared === undefined) return this;
    const values = (this.values = new Map());
    const lists = (this.lists = new Map());
    const used = (this.used = new Set());
    for (const word of this.words) {
      if (word === '--') break;
      const body = word.slice(2);
      const eq = body.indexOf('=');
      const name = eq < 0 ? body : body.slice(0, eq);
      const value = eq < 0 ? undefined : body.slice(eq + 1);
      const kind = declared.get(name);
      if (kind === undefined) {
        const known = [...declared.keys()];
        const message =
          known.length === 0 ? `unknown flag: ${name} (${this.instruction} takes no flags)` : withSuggestion(`unknown flag: ${name}`, name, known, true);
        throw new DockerfileError(DockerfileErrorCode.UNKNOWN_FLAG, message);
      }
      if (used.has(name) && kind !== 'strings') {
        throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `duplicate flag specified: ${name}`);
      }
      used.add(name);
      if (kind === 'bool') {
        if (value === '') throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `missing a value on flag: ${name}`);
        const lower = (value ?? 'true').toLowerCase();
        if (lower !== 'true' && lower !== 'false') {
          throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `expecting boolean value for flag ${name}, not: ${goQuote(value ?? '')}`);
        }
        values.set(name, lower);
        continue;
      }
      if (value === undefined) throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `missing a value on flag: ${name}`);
      if (kind === 'string') values.set(name, value);
      else lists.set(name, [...(lists.get(name) ?? []), value]);
    }
    return this;
  }

  /** The value of a string flag, undefined when not given. */
  get(name: string): string | undefined {
    return this.values?.get(name);
  }

  /** A boolean flag: true when given without a value or as `=true`. */
  isTrue(name: string): boolean {
    return this.values?.get(name) === 'true';
  }

  /** A boolean flag's value when given, undefined when absent (for tri-state flags like --unpack). */
  boolOrUndefined(name: string): boolean | undefined {
    const v = this.values?.get(name);
    return v === undefined ? undefined : v === 'true';
  }

  list(name: string): readonly string[] {
    return this.lists?.get(name) ?? NONE;
  }

  isUsed(name: string): boolean {
    return this.used?.has(name) ?? false;
  }
}
