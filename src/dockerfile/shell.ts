import { DockerfileError, DockerfileErrorCode } from './errors.js';
import { goQuote, isDigit, isLetter, isSpace } from './text.js';

/**
 * BuildKit's shell lexer (`frontend/dockerfile/shell`): quote removal, escapes and `$var`
 * expansion the way the Dockerfile builder does it, which is a small subset of POSIX sh
 * (no command substitution, no arithmetic, no globbing). Its quirks are kept on purpose: a
 * Dockerfile must mean the same thing here as in `docker build`.
 */

export type EscapeToken = '\\' | '`';

/** Where variables come from: a map, a plain record, or a lookup function (undefined = unset). */
export type Environment = ReadonlyMap<string, string> | Readonly<Record<string, string>> | ((name: string) => string | undefined);

export interface ShellOptions {
  /** The Dockerfile's escape character (`# escape=`); default backslash. */
  readonly escapeToken?: EscapeToken;
  /** Keep quote characters in the output (used to find heredoc delimiters). */
  readonly rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  readonly rawEscapes?: boolean;
  /** Treat quotes as ordinary characters (heredoc bodies). */
  readonly skipProcessQuotes?: boolean;
  /** Leave references to unset variables as written instead of expanding them to "". */
  readonly skipUnsetEnv?: boolean;
}

export interface Expansion {
  /** The word with quotes removed and variables expanded (BuildKit's `ProcessWord`). */
  readonly value: string;
  /** The same, split into words on unquoted whitespace after expansion (`ProcessWords`). */
  readonly words: readonly string[];
  /** Variables referenced but not set, in order of first use. */
  readonly unresolved: readonly string[];
  /** Variables referenced and set, in order of first use. */
  readonly resolved: readonly string[];
}

/** Expands one word: `$v`, `${v}`, `${v:-x}` and the other operators, quotes, escapes. */
export function expandWord(word: string, env: Environment, options?: ShellOptions): { value: string; unresolved: readonly string[] } {
  const r = expandShell(word, env, options);
  return { value: r.value, unresolved: r.unresolved };
}

/** Expands and then splits into words on unquoted whitespace, as `ENV a="x y"` or `EXPOSE $PORTS`. */
export function expandWords(word: string, env: Environment, options?: ShellOptions): { words: readonly string[]; unresolved: readonly string[] } {
  const r = expandShell(word, env, options);
  return { words: r.words, unresolved: r.unresolved };
}

/** The full result of one lexer pass. Throws `DockerfileError` (`DOCKERFILE_EXPANSION`). */
export function expandShell(word: string, env: Environment, options: ShellOptions = {}): Expansion {
  // Most words hold nothing to expand, quote or escape: then the result is the word itself.
  if (isPlain(word, options.escapeToken ?? '\\')) {
    return { value: word, words: splitWords(word), unresolved: NOTHING, resolved: NOTHING };
  }
  const lexer = new Lexer(word, toLookup(env), options);
  try {
    const { result, words } = lexer.processStopOn(EOF, options.rawEscapes ?? false);
    return { value: result, words, unresolved: lexer.unmatched, resolved: lexer.matched };
  } catch (err) {
    if (err instanceof LexError) {
      throw new DockerfileError(DockerfileErrorCode.EXPANSION, `failed to process ${goQuote(word)}: ${err.message}`);
    }
    throw err;
  }
}

const NOTHING: readonly string[] = Object.freeze([]);

function isPlain(word: string, escape: string): boolean {
  const esc = escape.charCodeAt(0);
  for (let i = 0; i < word.length; i++) {
    const c = word.charCodeAt(i);
    if (c === DOLLAR || c === SQUOTE || c === DQUOTE || c === esc || c === 0xfeff) return false;
  }
  return true;
}

/** Splits on Go whitespace (what the lexer does to a word with nothing to expand). */
function splitWords(word: string): string[] {
  const words: string[] = [];
  let start = -1;
  for (let i = 0; i <= word.length; i++) {
    const space = i === word.length || isSpace(word.charCodeAt(i));
    if (space) {
      if (start >= 0) words.push(word.slice(start, i));
      start = -1;
    } else if (start < 0) {
      start = i;
    }
  }
  return words;
}

function toLookup(env: Environment): (name: string) => string | undefined {
  if (typeof env === 'function') return env;
  if (env instanceof Map) return (name) => env.get(name);
  const record = env as Readonly<Record<string, string>>;
  return (name) => (Object.hasOwn(record, name) ? record[name] : undefined);
}

const EOF = -1;
const DOLLAR = 0x24;
const SQUOTE = 0x27;
const DQUOTE = 0x22;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const COLON = 0x3a;
const SLASH = 0x2f;
const BACKSLASH = 0x5c;

class LexError extends Error {}

/** Accumulates the split words (BuildKit's `wordsStruct`). */
class Words {
  private word = '';
  private inWord = false;
  private readonly words: string[] = [];

  addChar(cp: number): void {
    if (isSpace(cp)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
      return;
    }
    this.addRawChar(cp);
  }

  addRawChar(cp: number): void {
    this.word += String.fromCodePoint(cp);
    this.inWord = true;
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }

  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }

  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

/** A rune scanner with Go `text/scanner`'s Peek/Next, including its skipping of a leading BOM. */
class RuneScanner {
  private pos = 0;
  private started = false;

  constructor(private readonly src: string) {}

  peek(): number {
    if (!this.started) {
      this.started = true;
      if (this.src.charCodeAt(0) === 0xfeff) this.pos = 1;
    }
    return this.pos < this.src.length ? this.src.codePointAt(this.pos)! : EOF;
  }

  next(): number {
    const cp = this.peek();
    if (cp !== EOF) this.pos += cp > 0xffff ? 2 : 1;
    return cp;
  }
}

function chr(cp: number): string {
  // Go's string(rune(-1)) is the replacement character; it only shows in error messages.
  return cp === EOF ? '\ufffd' : String.fromCodePoint(cp);
}

class Lexer {
  // Arrays, not Sets: a word names few variables, and a lexer is made per expanded word.
  readonly matched: string[] = [];
  readonly unmatched: string[] = [];
  private readonly scanner: RuneScanner;
  private readonly escape: number;
  private rawEscapes: boolean;

  constructor(
    word: string,
    private readonly lookup: (name: string) => string | undefined,
    private readonly options: ShellOptions,
  ) {
    this.scanner = new RuneScanner(word);
    this.escape = (options.escapeToken ?? '\\').codePointAt(0)!;
    this.rawEscapes = options.rawEscapes ?? false;
  }

  processStopOn(stopChar: number, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      const sc = this.scanner;
      const words = new Words();
      const processQuotes = !(this.options.skipProcessQuotes ?? false);
      let result = '';
      while (sc.peek() !== EOF) {
        const ch = sc.peek();
        if (stopChar !== EOF && ch === stopChar) {
          sc.next();
          return { result, words: words.get() };
        }
        if (ch === DOLLAR) {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (processQuotes && (ch === SQUOTE || ch === DQUOTE)) {
          const tmp = ch === SQUOTE ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          let c = sc.next();
          if (c === this.escape) {
            if (this.rawEscapes) {
              words.addRawChar(c);
              result += chr(c);
            }
            // The escape token escapes the next character; at the end of the word it vanishes.
            c = sc.next();
            if (c === EOF) break;
            words.addRawChar(c);
          } else {
            words.addChar(c);
          }
          result += chr(c);
        }
      }
      if (stopChar !== EOF) throw new LexError(`unexpected end of statement while looking for matching ${chr(stopChar)}`);
      return { result, words: words.get() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    // Everything up to the next single quote is literal; a single quote cannot be escaped.
    const sc = this.scanner;
    const raw = this.options.rawQuotes ?? false;
    sc.next();
    let result = raw ? "'" : '';
    for (;;) {
      const ch = sc.next();
      if (ch === EOF) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === SQUOTE) return raw ? `${result}'` : result;
      result += chr(ch);
    }
  }

  private processDoubleQuote(): string {
    // Literal except `$`, and the escape token, which escapes only `"`, `$` and itself.
    const sc = this.scanner;
    const raw = this.options.rawQuotes ?? false;
    sc.next();
    let result = raw ? '"' : '';
    for (;;) {
      const p = sc.peek();
      if (p === EOF) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (p === DQUOTE) {
        sc.next();
        return raw ? `${result}"` : result;
      }
      if (p === DOLLAR) {
        result += this.processDollar();
        continue;
      }
      let ch = sc.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += chr(ch);
        const q = sc.peek();
        // An escape at the very end is dropped (and the quote is then unterminated).
        if (q === EOF) continue;
        if (q === DQUOTE || q === DOLLAR || q === this.escape) ch = sc.next();
      }
      result += chr(ch);
    }
  }

  private processDollar(): string {
    const sc = this.scanner;
    const skipUnset = this.options.skipUnsetEnv ?? false;
    sc.next();
    if (sc.peek() !== LBRACE) {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined) return skipUnset ? `$${name}` : '';
      return value;
    }
    sc.next();
    const first = sc.peek();
    if (first === EOF) throw new LexError("syntax error: missing '}'");
    if (first === LBRACE || first === RBRACE || first === COLON) throw new LexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = sc.next();
    let chs = chr(ch);
    let nullIsUnset = false;

    if (ch === RBRACE) {
      const value = this.getEnv(name);
      if (value === undefined) return skipUnset ? `\${${name}}` : '';
      return value;
    }
    if (ch === SLASH) return this.processReplace(name);
    if (ch === COLON) {
      nullIsUnset = true;
      ch = sc.next();
      chs += chr(ch);
    } else if (!isModifier(ch)) {
      throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }

    let word: string;
    try {
      word = this.processStopOn(RBRACE, ch === 0x23 || ch === 0x25).result;
    } catch (err) {
      if (err instanceof LexError && sc.peek() === EOF) throw new LexError("syntax error: missing '}'");
      throw err;
    }
    const value = this.getEnv(name);
    const set = value !== undefined;
    if (skipUnset && !set) return `\${${name}${chs}${word}}`;
    const empty = !set || (nullIsUnset && value === '');
    switch (ch) {
      case 0x2d: // -
        return empty ? word : (value ?? '');
      case 0x2b: // +
        return empty ? '' : word;
      case 0x3f: // ?
        if (!set) throw new LexError(`${name}: ${word === '' ? 'is not allowed to be unset' : word}`);
        if (nullIsUnset && value === '') throw new LexError(`${name}: ${word === '' ? 'is not allowed to be empty' : word}`);
        return value ?? '';
      case 0x25: // %
      case 0x23: {
        // #: shortest prefix, ##: longest; %: shortest suffix, %%: longest.
        let pattern = word;
        let greedy = false;
        if (pattern.length > 0 && pattern.charCodeAt(0) === ch) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === 0x25 ? trimSuffix(pattern, value ?? '', greedy) : trimPrefix(pattern, value ?? '', greedy);
      }
      default:
        throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }
  }

  private processReplace(name: string): string {
    const sc = this.scanner;
    const replaceAll = sc.peek() === SLASH;
    if (replaceAll) sc.next();
    let pattern: string;
    try {
      pattern = this.processStopOn(SLASH, true).result;
    } catch (err) {
      if (err instanceof LexError && sc.peek() === EOF) throw new LexError("syntax error: missing '/' in ${}");
      throw err;
    }
    let replacement: string;
    try {
      replacement = this.processStopOn(RBRACE, true).result;
    } catch (err) {
      if (err instanceof LexError && sc.peek() === EOF) throw new LexError("syntax error: missing '}'");
      throw err;
    }
    const value = this.getEnv(name);
    if (value === undefined && (this.options.skipUnsetEnv ?? false)) return `\${${name}/${pattern}/${replacement}}`;
    const re = shellPatternToRegExp(pattern, true, false);
    const subject = value ?? '';
    if (replaceAll) return goReplaceAll(re, subject, replacement);
    re.lastIndex = 0;
    const m = re.exec(subject);
    return m === null ? subject : subject.slice(0, m.index) + replacement + subject.slice(m.index + m[0].length);
  }

  private processName(): string {
    // A name is letters, digits and underscores; a positional ($1, $123) or special ($@, $#, …)
    // parameter is recognised so that it expands to nothing instead of being taken literally.
    const sc = this.scanner;
    let name = '';
    while (sc.peek() !== EOF) {
      const ch = sc.peek();
      if (name === '' && isDigit(ch)) {
        while (sc.peek() !== EOF && isDigit(sc.peek())) name += chr(sc.next());
        return name;
      }
      if (name === '' && isSpecialParam(ch)) return chr(sc.next());
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += chr(sc.next());
    }
    return name;
  }

  private getEnv(name: string): string | undefined {
    const value = this.lookup(name);
    const list = value === undefined ? this.unmatched : this.matched;
    if (!list.includes(name)) list.push(name);
    return value;
  }
}

function isModifier(ch: number): boolean {
  return ch === 0x2b || ch === 0x2d || ch === 0x3f || ch === 0x23 || ch === 0x25;
}

function isSpecialParam(ch: number): boolean {
  // @ * # ? - $ ! 0
  return ch === 0x40 || ch === 0x2a || ch === 0x23 || ch === 0x3f || ch === 0x2d || ch === 0x24 || ch === 0x21 || ch === 0x30;
}

const REGEX_SPECIAL = new Set(['[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$']);

/**
 * A shell wildcard pattern (`?` one character, `*` any run, `\` escapes `*`, `?` and `\`) as a
 * regular expression. Go's `.` does not match a newline, hence `[^\n]`.
 */
function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const sc = new RuneScanner(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  for (let tok = sc.next(); tok !== EOF; tok = sc.next()) {
    if (tok === 0x2a) {
      out += star;
      continue;
    }
    if (tok === 0x3f) {
      out += '[^\\n]';
      continue;
    }
    if (tok === BACKSLASH) {
      // `}` and `/` are escaped only to get past the ${} syntax; the escape is not part of the pattern.
      const p = sc.peek();
      if (p === RBRACE || p === SLASH) continue;
      const escaped = sc.next();
      if (escaped !== 0x2a && escaped !== 0x3f && escaped !== BACKSLASH) {
        throw new LexError(`invalid pattern (${pattern}) in substitution: invalid escape '\\${chr(escaped)}'`);
      }
      out += `\\${chr(escaped)}`;
      continue;
    }
    const c = chr(tok);
    out += REGEX_SPECIAL.has(c) ? `\\${c}` : c;
  }
  return new RegExp(out, 'gu');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const re = shellPatternToRegExp(pattern, greedy, true);
  const m = re.exec(value);
  return m === null ? value : value.slice(m[0].length);
}

/** Reverses a pattern by code point, keeping each `\x` escape pair in order. */
export function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const last = runes.length - 1;
  const out = new Array<string>(runes.length);
  for (let i = 0; i <= last; ) {
    const tok = runes[i]!;
    const at = last - i;
    if (tok === '\\' && i !== last) {
      out[at - 1] = tok;
      out[at] = runes[i + 1]!;
      i += 2;
    } else {
      out[at] = tok;
      i++;
    }
  }
  return out.join('');
}

function reverseString(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  // The shortest rightmost match is found as the shortest leftmost one on the reversed strings.
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/**
 * Go's `Regexp.ReplaceAllString`: successive non-overlapping matches, an empty match right
 * after a previous match is not replaced, and `$0`/`${0}`, `$$` and other `$name` references in
 * the replacement are expanded as Go's template syntax does (the pattern has no groups).
 */
function goReplaceAll(re: RegExp, src: string, replacement: string): string {
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= src.length) {
    re.lastIndex = searchPos;
    const m = re.exec(src);
    if (m === null) break;
    const start = m.index;
    const end = start + m[0].length;
    out += src.slice(lastMatchEnd, start);
    if (end > lastMatchEnd || start === 0) out += goExpand(replacement, m[0]);
    lastMatchEnd = end;
    const width = searchPos < src.length ? (src.codePointAt(searchPos)! > 0xffff ? 2 : 1) : 1;
    searchPos = searchPos + width > end ? searchPos + width : end;
  }
  return out + src.slice(lastMatchEnd);
}

function goExpand(template: string, whole: string): string {
  let out = '';
  let t = template;
  for (;;) {
    const i = t.indexOf('$');
    if (i < 0) break;
    out += t.slice(0, i);
    t = t.slice(i + 1);
    if (t.startsWith('$')) {
      out += '$';
      t = t.slice(1);
      continue;
    }
    const ref = extractTemplateName(t);
    if (ref === undefined) {
      out += '$';
      continue;
    }
    t = ref.rest;
    if (ref.num === 0) out += whole;
  }
  return out + t;
}

function extractTemplateName(str: string): { num: number; rest: string } | undefined {
  const brace = str.startsWith('{');
  const s = brace ? str.slice(1) : str;
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i)!;
    if (!isLetter(cp) && !isDigit(cp) && cp !== 0x5f) break;
    i += cp > 0xffff ? 2 : 1;
  }
  if (i === 0) return undefined;
  const name = s.slice(0, i);
  if (brace) {
    if (s[i] !== '}') return undefined;
    i++;
  }
  let num = /^[0-9]{1,8}$/.test(name) ? Number(name) : -1;
  if (name.length > 1 && name.startsWith('0')) num = -1;
  return { num, rest: s.slice(i) };
}
