import { DockerfileError, DockerfileErrorCode, warning, type DockerfileWarning, type SourceRange } from './errors.js';
import { expandShell, type EscapeToken } from './shell.js';
import { goQuote, isSpace, trimLeftSpace, trimSpace } from './text.js';

/**
 * Dockerfile text → AST, following BuildKit's `frontend/dockerfile/parser` line by line:
 * parser directives, comments, line continuations (with their historical quirks), heredocs,
 * JSON-form arrays with the fallbacks BuildKit applies to invalid JSON, and line ranges.
 * Only the syntax is checked here; what the words mean is the business of `instructions.ts`.
 */

/** A heredoc body attached to a RUN, COPY or ADD line (`<<EOF`, `<<-EOF`, `<<"EOF"`). */
export interface Heredoc {
  /** The delimiter word, quotes removed. */
  readonly name: string;
  /** The file descriptor written before `<<` (`3<<EOF`), 0 when absent. */
  readonly fileDescriptor: number;
  /** False when any part of the delimiter was quoted: the body is then taken literally. */
  readonly expand: boolean;
  /** `<<-`: leading tabs are stripped from the body and the terminator line. */
  readonly chomp: boolean;
  /** The body as written, with its line endings; tabs are not yet stripped. */
  readonly content: string;
}

/** One instruction of the file (BuildKit's `parser.Node` for a child of the root). */
export interface InstructionNode extends SourceRange {
  /** The instruction keyword as written (`Run`). */
  readonly keyword: string;
  /** The keyword in lower case (`run`). */
  readonly name: string;
  /** The leading `--flag[=value]` words, quotes and escapes removed. */
  readonly flags: readonly string[];
  /** The arguments as the line parser for this instruction splits them (see `dumpAst`). */
  readonly args: readonly string[];
  /** Written in JSON form (`["a", "b"]`). */
  readonly json: boolean;
  /** For ONBUILD: the trigger instruction. */
  readonly subcommand?: InstructionNode;
  readonly heredocs: readonly Heredoc[];
  /** The logical line (continuations joined), without heredoc bodies. */
  readonly original: string;
}

export interface ParserDirective {
  /** `syntax`, `escape` or `check`. */
  readonly name: string;
  readonly value: string;
  readonly line: number;
}

export interface ParsedDockerfile extends SourceRange {
  readonly file?: string;
  readonly instructions: readonly InstructionNode[];
  readonly escapeToken: EscapeToken;
  readonly directives: readonly ParserDirective[];
  readonly warnings: readonly DockerfileWarning[];
}

export interface ParseOptions {
  /** The name errors and warnings are reported against (default "Dockerfile"). */
  readonly file?: string;
}

const DIRECTIVE_RE = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;
const VALID_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const TOKEN_WHITESPACE = /[\t\v\f\r ]+/;
const HEREDOC_RE = /^(\d*)<<(-?)([^<]*)$/;
const HEREDOC_INSTRUCTIONS = new Set(['add', 'copy', 'run']);

const CONTINUATION: Readonly<Record<EscapeToken, RegExp>> = {
  // The escape token at the end of a line continues it, unless it is itself escaped; a line
  // holding only the token continues too. (BuildKit's regex cannot see `\\\` as escaped-escape
  // plus continuation, and neither do we.)
  '\\': /([^\\])\\[ \t]*$|^\\[ \t]*$/,
  '`': /([^`])`[ \t]*$|^`[ \t]*$/,
};

const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** Parses Dockerfile text (a string, or UTF-8 bytes) into instruction nodes. Throws `DockerfileError`. */
export function parseDockerfile(input: string | Uint8Array, options: ParseOptions = {}): ParsedDockerfile {
  return new Parser(typeof input === 'string' ? input : decoder.decode(input), options.file).parse();
}

class Parser {
  private escape: EscapeToken = '\\';
  private directivesDone = false;
  private readonly directives: ParserDirective[] = [];
  private readonly warnings: DockerfileWarning[] = [];
  private readonly lines: string[];
  private next = 0;
  private currentLine = 0;
  private readonly lastHasNewline: boolean;

  constructor(
    text: string,
    private readonly file: string | undefined,
  ) {
    this.lines = text === '' ? [] : text.split('\n');
    // A final newline ends the last line rather than starting an empty one.
    this.lastHasNewline = text.endsWith('\n');
    if (this.lastHasNewline) this.lines.pop();
  }

  parse(): ParsedDockerfile {
    const nodes: InstructionNode[] = [];
    const lines = this.lines;
    while (this.next < lines.length) {
      let raw = lines[this.next++]!;
      if (this.currentLine === 0 && raw.charCodeAt(0) === 0xfeff) raw = raw.slice(1);
      const first = this.processLine(raw, true, this.currentLine + 1);
      this.currentLine++;
      const startLine = this.currentLine;
      let [line, isEnd] = this.trimContinuation(first);
      if (isEnd && line === '') continue;

      let hasEmptyContinuation = false;
      while (!isEnd && this.next < lines.length) {
        const rawNext = lines[this.next++]!;
        const processed = this.processLine(rawNext, false, this.currentLine + 1);
        this.currentLine++;
        // A comment inside a continued instruction is dropped; so is a blank line, with a warning.
        if (isComment(rawNext)) continue;
        if (trimLeftSpace(processed) === '') {
          hasEmptyContinuation = true;
          continue;
        }
        const [part, end] = this.trimContinuation(processed);
        line += part;
        isEnd = end;
      }
      if (hasEmptyContinuation) {
        this.warnings.push(
          warning('NoEmptyContinuation', `Empty continuation line found in: ${line}`, { startLine: this.currentLine, endLine: this.currentLine }, this.file),
        );
      }

      let node: NodeCore;
      try {
        node = newNodeFromLine(line, this.escape);
      } catch (err) {
        throw locate(err, { startLine, endLine: this.currentLine }, this.file);
      }
      let heredocs: Heredoc[] = NO_HEREDOCS;
      if (line.includes('<<') && canContainHeredoc(node)) {
        try {
          heredocs = this.readHeredocs(line, startLine);
        } catch (err) {
          throw locate(err, { startLine, endLine: this.currentLine }, this.file);
        }
      }
      nodes.push(makeNode(node, heredocs, startLine, this.currentLine));
    }

    if (nodes.length === 0) {
      const line = Math.max(1, this.currentLine);
      throw new DockerfileError(DockerfileErrorCode.EMPTY, 'file with no instructions', { file: this.file, startLine: line, endLine: line });
    }
    return {
      ...(this.file === undefined ? {} : { file: this.file }),
      instructions: nodes,
      escapeToken: this.escape,
      directives: this.directives,
      warnings: this.warnings,
      startLine: nodes[0]!.startLine,
      endLine: nodes[nodes.length - 1]!.endLine,
    };
  }

  private readHeredocs(line: string, startLine: number): Heredoc[] {
    const docs: Heredoc[] = [];
    for (const word of heredocWords(line)) {
      const doc = parseHeredocWord(word);
      if (doc === undefined) continue;
      let content = '';
      let terminated = false;
      while (this.next < this.lines.length) {
        const raw = this.lines[this.next++]!;
        this.currentLine++;
        let candidate = trimNewline(raw);
        if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
        if (candidate === doc.name) {
          terminated = true;
          break;
        }
        // Heredoc bodies keep their line endings (lines were split on "\n").
        content += this.next < this.lines.length || this.lastHasNewline ? `${raw}\n` : raw;
      }
      if (!terminated) {
        throw new DockerfileError(DockerfileErrorCode.HEREDOC, `unterminated heredoc ${goQuote(doc.name)}`, {
          file: this.file,
          startLine,
          endLine: this.currentLine,
        });
      }
      docs.push({ ...doc, content });
    }
    return docs;
  }

  /** Strips the line ending (and leading space), notes parser directives, blanks out comments. */
  private processLine(raw: string, stripLeft: boolean, lineNumber: number): string {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    if (!this.directivesDone) this.possibleDirective(token, lineNumber);
    return isComment(token) ? '' : token;
  }

  private possibleDirective(token: string, line: number): void {
    // Directives are only recognised before anything else: the first line that is not one
    // (an instruction, another comment, even an empty line) ends the search.
    const m = DIRECTIVE_RE.exec(token);
    const name = m?.[1]?.toLowerCase();
    if (m === null || name === undefined || !VALID_DIRECTIVES.has(name)) {
      this.directivesDone = true;
      return;
    }
    const location = { file: this.file, startLine: line, endLine: line };
    if (this.directives.some((d) => d.name === name)) {
      throw new DockerfileError(DockerfileErrorCode.DIRECTIVE, `only one ${name} parser directive can be used`, location);
    }
    const value = m[2]!;
    if (name === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new DockerfileError(DockerfileErrorCode.DIRECTIVE, `invalid escape token '${value}' does not match \` or \\`, location);
      }
      this.escape = value;
    }
    this.directives.push({ name, value, line });
  }

  private trimContinuation(line: string): [string, boolean] {
    const re = CONTINUATION[this.escape];
    const m = re.exec(line);
    if (m === null) return [line, true];
    return [line.slice(0, m.index) + (m[1] ?? ''), false];
  }
}

function locate(err: unknown, range: SourceRange, file: string | undefined): unknown {
  return err instanceof DockerfileError ? err.locate(range, file) : err;
}

/** Go's `bytes.TrimRight(line, "\r\n")`. */
function trimNewline(line: string): string {
  let end = line.length;
  while (end > 0) {
    const c = line.charCodeAt(end - 1);
    if (c !== 0x0a && c !== 0x0d) break;
    end--;
  }
  return end === line.length ? line : line.slice(0, end);
}

function isComment(line: string): boolean {
  return trimLeftSpace(line).charCodeAt(0) === 0x23;
}

/** An instruction node before its lines and heredocs are known. */
type NodeCore = Omit<InstructionNode, 'startLine' | 'endLine' | 'heredocs'>;
type LineParse = { args: string[]; json: boolean; subcommand?: NodeCore };

const NO_HEREDOCS: Heredoc[] = [];

// Objects are built with a fixed set of properties (no conditional spreads): this is the hot
// path, and V8 falls back to slow dictionary objects for spread-built literals.
function makeNode(core: NodeCore, heredocs: Heredoc[], startLine: number, endLine: number): InstructionNode {
  const node: { -readonly [K in keyof InstructionNode]: InstructionNode[K] } = {
    keyword: core.keyword,
    name: core.name,
    flags: core.flags,
    args: core.args,
    json: core.json,
    heredocs,
    original: core.original,
    startLine,
    endLine,
  };
  if (core.subcommand !== undefined) node.subcommand = core.subcommand as InstructionNode;
  return node;
}
type LineParser = (rest: string, escape: EscapeToken) => LineParse;

const LINE_PARSERS: Readonly<Record<string, LineParser>> = {
  add: parseMaybeJSONToList,
  arg: (rest, escape) => ({ args: parseWords(rest, escape), json: false }),
  cmd: parseMaybeJSON,
  copy: parseMaybeJSONToList,
  entrypoint: parseMaybeJSON,
  env: (rest, escape) => parseNameVal(rest, 'ENV', escape),
  expose: parseWhitespaceDelimited,
  from: parseWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, escape) => parseNameVal(rest, 'LABEL', escape),
  maintainer: parseString,
  onbuild: (rest, escape) => (rest === '' ? { args: [], json: false } : { args: [], json: false, subcommand: newNodeFromLine(rest, escape) }),
  run: parseMaybeJSON,
  shell: parseMaybeJSON,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJSONToList,
  workdir: parseString,
};

function newNodeFromLine(line: string, escape: EscapeToken): NodeCore {
  const { keyword, flags, rest } = splitCommand(line);
  const name = keyword.toLowerCase();
  // An unknown keyword still parses (its argument is dropped); the instruction layer rejects it.
  const parseLine: LineParser = LINE_PARSERS[name] ?? (() => ({ args: [''], json: false }));
  const parsed = parseLine(rest, escape);
  const node: { -readonly [K in keyof NodeCore]: NodeCore[K] } = { keyword, name, flags, args: parsed.args, json: parsed.json, original: line };
  if (parsed.subcommand !== undefined) node.subcommand = parsed.subcommand as InstructionNode;
  return node;
}

function splitCommand(line: string): { keyword: string; flags: string[]; rest: string } {
  const trimmed = trimSpace(line);
  const m = TOKEN_WHITESPACE.exec(trimmed);
  if (m === null) return { keyword: trimmed, flags: [], rest: '' };
  const { flags, rest } = extractBuilderFlags(trimmed.slice(m.index + m[0].length));
  return { keyword: trimmed.slice(0, m.index), flags, rest: trimSpace(rest) };
}

/**
 * Takes the leading `--name[=value]` words off an argument string. Quotes group, a backslash
 * (always backslash, whatever the escape token) escapes; a lone `--` ends the flags. Unlike
 * BuildKit, which walks bytes and so mangles non-ASCII flag values, this walks characters.
 */
function extractBuilderFlags(line: string): { flags: string[]; rest: string } {
  const flags: string[] = [];
  const Phase = { Spaces: 0, Word: 1, Quote: 2 } as const;
  let phase: number = Phase.Spaces;
  let word = '';
  let quote = 0;
  let blankOK = false;
  let pos = 0;
  while (pos <= line.length) {
    const atEnd = pos === line.length;
    const ch = atEnd ? -1 : line.codePointAt(pos)!;
    const width = ch > 0xffff ? 2 : 1;
    if (phase === Phase.Spaces) {
      if (atEnd) break;
      if (isSpace(ch)) {
        pos += width;
        continue;
      }
      if (ch !== 0x2d || line.charCodeAt(pos + 1) !== 0x2d) return { flags, rest: line.slice(pos) };
      // Fast path: a flag without quotes or backslashes is the text up to the next space.
      const end = plainWordEnd(line, pos, 0x5c);
      if (end >= 0) {
        const word = line.slice(pos, end);
        if (word === '--') return { flags, rest: line.slice(end) };
        flags.push(word);
        if (end === line.length) return { flags, rest: '' };
        pos = end;
        continue;
      }
      phase = Phase.Word;
    }
    if (atEnd) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === Phase.Word) {
      if (isSpace(ch)) {
        phase = Phase.Spaces;
        if (word === '--') return { flags, rest: line.slice(pos) };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        pos += width;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = Phase.Quote;
        pos += width;
        continue;
      }
    } else if (ch === quote) {
      phase = Phase.Word;
      pos += width;
      continue;
    }
    if (ch === 0x5c) {
      if (pos + 1 === line.length) {
        // A backslash at the very end is dropped.
        if (phase === Phase.Quote) phase = Phase.Word;
        pos++;
        continue;
      }
      pos++;
      const escaped = line.codePointAt(pos)!;
      word += String.fromCodePoint(escaped);
      pos += escaped > 0xffff ? 2 : 1;
      continue;
    }
    word += String.fromCodePoint(ch);
    pos += width;
  }
  return { flags, rest: '' };
}

/**
 * Where the word starting at `start` ends (the next space, or the end of the text), or -1 if it
 * holds a quote or the escape character and needs the character-by-character treatment.
 */
function plainWordEnd(text: string, start: number, escape: number): number {
  let i = start;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x27 || c === 0x22 || c === escape) return -1;
    if (c < 0x80 ? c === 0x20 || (c >= 0x09 && c <= 0x0d) : isSpace(c)) return i;
    i++;
  }
  return i;
}

/**
 * Splits on whitespace, keeping quotes and escapes in the words (they are removed later, at
 * expansion time). Used for ENV, LABEL and ARG.
 */
function parseWords(rest: string, escape: EscapeToken): string[] {
  const words: string[] = [];
  const esc = escape.charCodeAt(0);
  let word = '';
  let inWord = false;
  let quote = 0;
  let blankOK = false;
  let pos = 0;
  while (pos < rest.length) {
    let ch = rest.codePointAt(pos)!;
    let width = ch > 0xffff ? 2 : 1;
    if (!inWord && quote === 0) {
      if (isSpace(ch)) {
        pos += width;
        continue;
      }
      // Fast path: a word without quotes or escapes is the text up to the next space.
      const end = plainWordEnd(rest, pos, esc);
      if (end >= 0) {
        words.push(rest.slice(pos, end));
        pos = end;
        continue;
      }
      inWord = true;
    }
    if (quote === 0) {
      if (isSpace(ch)) {
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        inWord = false;
        pos += width;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
      } else if (ch === esc) {
        // Outside quotes the escape token and the character after it are both kept.
        if (pos + width === rest.length) {
          pos += width;
          continue;
        }
        word += String.fromCodePoint(ch);
        pos += width;
        ch = rest.codePointAt(pos)!;
        width = ch > 0xffff ? 2 : 1;
      }
      word += String.fromCodePoint(ch);
      pos += width;
      continue;
    }
    // Inside quotes; the escape token works except within single quotes.
    const closing = ch === quote;
    if (ch === esc && quote !== 0x27) {
      if (pos + width === rest.length) {
        quote = 0;
        pos += width;
        continue;
      }
      word += String.fromCodePoint(ch);
      pos += width;
      ch = rest.codePointAt(pos)!;
      width = ch > 0xffff ? 2 : 1;
    }
    if (closing) quote = 0;
    word += String.fromCodePoint(ch);
    pos += width;
  }
  if (inWord || quote !== 0) {
    if (blankOK || word.length > 0) words.push(word);
  }
  return words;
}

function parseNameVal(rest: string, key: string, escape: EscapeToken): LineParse {
  // `KEY name value` (legacy: the first word has no "=") or `KEY name=value ...`.
  const words = parseWords(rest, escape);
  if (words.length === 0) return { args: [], json: false };
  if (!words[0]!.includes('=')) {
    const m = TOKEN_WHITESPACE.exec(rest);
    if (m === null) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `${key} must have two arguments`);
    return { args: [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''], json: false };
  }
  const args: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) {
      throw new DockerfileError(
        DockerfileErrorCode.INVALID_ARGUMENTS,
        `Syntax error - can't find = in ${goQuote(word)}. Must be of the form: name=value`,
      );
    }
    args.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return { args, json: false };
}

function parseWhitespaceDelimited(rest: string): LineParse {
  return { args: rest === '' ? [] : rest.split(/[\t\v\f\r ]+/), json: false };
}

function parseString(rest: string): LineParse {
  return { args: rest === '' ? [] : [rest], json: false };
}

const NOT_JSON = Symbol('not a JSON string array');

/** A JSON array of strings, `NOT_JSON` when the text is not valid JSON (the caller falls back). */
function parseJSON(rest: string): string[] | typeof NOT_JSON {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) return NOT_JSON;
  let value: unknown;
  let overflow = false;
  try {
    // Go's decoder fails on numbers too large for a float64, so such input falls back too.
    value = JSON.parse(text, (_key, v: unknown) => {
      if (typeof v === 'number' && !Number.isFinite(v)) overflow = true;
      return v;
    });
  } catch {
    return NOT_JSON;
  }
  if (overflow || !Array.isArray(value)) return NOT_JSON;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') {
      throw new DockerfileError(DockerfileErrorCode.JSON, 'when using JSON array syntax, arrays must be comprised of strings only');
    }
    out.push(toWellFormed(item));
  }
  return out;
}

/** Go decodes a lone `\uD800` escape as U+FFFD. */
function toWellFormed(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

function parseMaybeJSON(rest: string): LineParse {
  if (rest === '') return { args: [], json: false };
  const json = parseJSON(rest);
  return json === NOT_JSON ? { args: [rest], json: false } : { args: json, json: true };
}

function parseMaybeJSONToList(rest: string): LineParse {
  const json = parseJSON(rest);
  return json === NOT_JSON ? parseWhitespaceDelimited(rest) : { args: json, json: true };
}

function parseHealthConfig(rest: string): LineParse {
  // HEALTHCHECK TYPE [cmd...]: the type, then the command as CMD parses it.
  let sep = 0;
  while (sep < rest.length && !isSpace(rest.codePointAt(sep)!)) sep++;
  if (sep === 0) return { args: [], json: false };
  let next = sep;
  while (next < rest.length && isSpace(rest.codePointAt(next)!)) next++;
  const cmd = parseMaybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

function canContainHeredoc(node: Pick<InstructionNode, 'name' | 'json' | 'subcommand'>): boolean {
  const target = node.name === 'onbuild' && node.subcommand !== undefined ? node.subcommand : node;
  return HEREDOC_INSTRUCTIONS.has(target.name) && !target.json;
}

function heredocWords(line: string): readonly string[] {
  try {
    return expandShell(line, () => undefined, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    // A line the lexer cannot split has no heredocs (BuildKit ignores the error too).
    return [];
  }
}

/**
 * Reads a heredoc word (`<<EOF`, `<<-"EOF"`, `3<<EOF`); undefined when the word is not one.
 * The body is expanded only if no part of the delimiter is quoted.
 */
export function parseHeredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const m = HEREDOC_RE.exec(word);
  if (m === null) return undefined;
  const rest = m[3]!;
  if (rest === '') return undefined;
  const noEnv = (): undefined => undefined;
  const words = expandShell(rest, noEnv, { skipUnsetEnv: true }).words;
  if (words.length !== 1) return undefined;
  const raw = expandShell(rest, noEnv, { skipUnsetEnv: true, rawQuotes: true }).words;
  const name = words[0]!;
  const fd = m[1] === '' ? 0 : Number(m[1]);
  return {
    name,
    fileDescriptor: Number.isSafeInteger(fd) ? fd : 0,
    expand: countQuotes(name) === countQuotes(raw[0] ?? ''),
    chomp: m[2] === '-',
  };
}

function countQuotes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x27 || c === 0x22) n++;
  }
  return n;
}

/** `<<-` bodies: leading tabs removed from every line. */
export function chompHeredocContent(content: string): string {
  return content.replace(/(^|\n)\t+/g, '$1');
}

/**
 * BuildKit's AST dump (`Node.Dump`), one S-expression per instruction, as in the `result` files
 * of its parser corpus: lower-cased keyword, flags as a Go-quoted list, Go-quoted arguments.
 */
export function dumpAst(parsed: Pick<ParsedDockerfile, 'instructions'>): string {
  return `${parsed.instructions.map((node) => `(${dumpNode(node)})`).join('\n')}\n`;
}

function dumpNode(node: Pick<InstructionNode, 'name' | 'flags' | 'args' | 'subcommand'>): string {
  let out = node.name;
  if (node.flags.length > 0) out += ` [${node.flags.map(goQuote).join(' ')}]`;
  if (node.subcommand !== undefined) out += ` (${dumpNode(node.subcommand)})`;
  for (const arg of node.args) out += ` ${goQuote(arg)}`;
  return trimSpace(out);
}
