import { parseGoDurationNanoseconds } from './duration.js';
import { DockerfileError, DockerfileErrorCode, warning, type DockerfileWarning, type SourceRange } from './errors.js';
import { FlagSet } from './flags.js';
import { assignDefined } from './objects.js';
import { chompHeredocContent, parseHeredocWord, type InstructionNode, type ParsedDockerfile, type ParserDirective } from './parser.js';
import type { EscapeToken } from './shell.js';
import { withSuggestion } from './suggest.js';
import { goQuote, trimSpace } from './text.js';

/**
 * AST → typed instructions grouped into stages (BuildKit's `instructions` package). Each
 * instruction's flags and argument count are checked here; words are not expanded yet (that
 * needs the build arguments, see `plan.ts`).
 */

interface Common extends SourceRange {
  /** The keyword as written. */
  readonly keyword: string;
  /** The logical line as written (continuations joined). */
  readonly original: string;
}

export interface KeyValue {
  readonly key: string;
  readonly value: string;
}

export interface EnvPair extends KeyValue {
  /** Written in the legacy `KEY value` form. */
  readonly legacy: boolean;
}

export interface ArgDefinition {
  readonly key: string;
  /** The default as written (unexpanded); undefined when the ARG has none. */
  readonly default?: string;
}

/** A heredoc used as a file: a COPY/ADD source, or a script for RUN. */
export interface InlineFile {
  readonly name: string;
  readonly data: string;
  /** Whether `$var` in `data` is expanded (the delimiter was not quoted). */
  readonly expand: boolean;
}

export interface ArgInstruction extends Common {
  readonly kind: 'arg';
  readonly args: readonly ArgDefinition[];
}
export interface EnvInstruction extends Common {
  readonly kind: 'env';
  readonly env: readonly EnvPair[];
}
export interface LabelInstruction extends Common {
  readonly kind: 'label';
  readonly labels: readonly EnvPair[];
}
export interface RunInstruction extends Common {
  readonly kind: 'run';
  /** JSON form: the argv; shell form: one element, the command line. */
  readonly args: readonly string[];
  readonly shellForm: boolean;
  /** Heredoc bodies, in order (their `<<NAME` words are in the command line). */
  readonly heredocs: readonly { readonly name: string; readonly data: string; readonly chomp: boolean }[];
  /** The `--mount` values as written; parsed and expanded by the planner. */
  readonly mounts: readonly string[];
  readonly network?: string;
  readonly security?: string;
}
export interface CmdInstruction extends Common {
  readonly kind: 'cmd';
  readonly args: readonly string[];
  readonly shellForm: boolean;
}
export interface EntrypointInstruction extends Common {
  readonly kind: 'entrypoint';
  readonly args: readonly string[];
  readonly shellForm: boolean;
}
interface FileCopy extends Common {
  /** Source paths (or URLs for ADD), unexpanded. */
  readonly sources: readonly string[];
  /** Heredoc sources. */
  readonly contents: readonly InlineFile[];
  readonly dest: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly exclude: readonly string[];
}
export interface CopyInstruction extends FileCopy {
  readonly kind: 'copy';
  readonly from?: string;
  readonly parents: boolean;
}
export interface AddInstruction extends FileCopy {
  readonly kind: 'add';
  readonly keepGitDir: boolean;
  readonly checksum?: string;
  /** Undefined: unpack local archives only (the default); true/false when given. */
  readonly unpack?: boolean;
}
export interface ExposeInstruction extends Common {
  readonly kind: 'expose';
  readonly ports: readonly string[];
}
export interface HealthcheckInstruction extends Common {
  readonly kind: 'healthcheck';
  /** `["NONE"]`, `["CMD", argv...]` or `["CMD-SHELL", command]`, as in the image config. */
  readonly test: readonly string[];
  /** Nanoseconds; undefined when not given. */
  readonly interval?: number;
  readonly timeout?: number;
  readonly startPeriod?: number;
  readonly startInterval?: number;
  readonly retries?: number;
}
export interface MaintainerInstruction extends Common {
  readonly kind: 'maintainer';
  readonly maintainer: string;
}
export interface OnbuildInstruction extends Common {
  readonly kind: 'onbuild';
  /** The trigger as stored in the image config (`RUN echo hi`, heredocs appended). */
  readonly expression: string;
}
export interface ShellInstruction extends Common {
  readonly kind: 'shell';
  readonly shell: readonly string[];
}
export interface StopsignalInstruction extends Common {
  readonly kind: 'stopsignal';
  readonly signal: string;
}
export interface UserInstruction extends Common {
  readonly kind: 'user';
  readonly user: string;
}
export interface VolumeInstruction extends Common {
  readonly kind: 'volume';
  readonly volumes: readonly string[];
}
export interface WorkdirInstruction extends Common {
  readonly kind: 'workdir';
  readonly path: string;
}

/** Every instruction that may appear inside a stage. */
export type Instruction =
  | ArgInstruction
  | EnvInstruction
  | LabelInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | CopyInstruction
  | AddInstruction
  | ExposeInstruction
  | HealthcheckInstruction
  | MaintainerInstruction
  | OnbuildInstruction
  | ShellInstruction
  | StopsignalInstruction
  | UserInstruction
  | VolumeInstruction
  | WorkdirInstruction;

/** A FROM line: the start of a stage. */
export interface FromInstruction extends Common {
  readonly kind: 'from';
  /** The base as written (unexpanded): an image reference, `scratch` or a previous stage name. */
  readonly base: string;
  /** The stage name, lower-cased; undefined for an unnamed stage. */
  readonly name?: string;
  /** The stage name as written. */
  readonly nameAsWritten?: string;
  /** The `AS` keyword as written. */
  readonly asKeyword?: string;
  /** `--platform`, unexpanded. */
  readonly platform?: string;
}

export interface Stage extends FromInstruction {
  /** 0-based position among the FROM lines. */
  readonly index: number;
  readonly instructions: readonly Instruction[];
}

export interface DockerfileStages {
  readonly file?: string;
  readonly escapeToken: EscapeToken;
  readonly directives: readonly ParserDirective[];
  /** The ARGs before the first FROM. */
  readonly globalArgs: readonly ArgInstruction[];
  readonly stages: readonly Stage[];
  /** Parser and instruction-level lint findings (more come from the planner). */
  readonly warnings: readonly DockerfileWarning[];
}

/** The instruction keywords, in the Dockerfile reference's order. */
export const INSTRUCTION_NAMES = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

const STAGE_NAME_RE = /^[a-z][a-z0-9\-_.]*$/;

/** Parses one AST node into a typed instruction (or a FROM). Throws a located `DockerfileError`. */
export function parseInstruction(node: InstructionNode, file?: string): Instruction | FromInstruction {
  try {
    return parseNode(node);
  } catch (err) {
    if (err instanceof DockerfileError) throw err.locate(node, file);
    throw err;
  }
}

/** Groups the AST into stages, with the global ARGs; collects instruction-level warnings. */
export function parseStages(parsed: ParsedDockerfile): DockerfileStages {
  const file = parsed.file;
  const globalArgs: ArgInstruction[] = [];
  const stages: { from: FromInstruction; instructions: Instruction[] }[] = [];
  const warnings: DockerfileWarning[] = [...parsed.warnings];
  for (const node of parsed.instructions) {
    const instruction = parseInstruction(node, file);
    if (instruction.kind === 'from') {
      stages.push({ from: instruction, instructions: [] });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current === undefined) {
      if (instruction.kind === 'arg') {
        globalArgs.push(instruction);
        continue;
      }
      throw new DockerfileError(DockerfileErrorCode.NO_STAGE, `no build stage in current context: ${instruction.keyword.toUpperCase()} must follow a FROM`, {
        file,
        ...rangeOf(node),
      });
    }
    current.instructions.push(instruction);
  }
  const result: Stage[] = stages.map((s, index) => ({ ...s.from, index, instructions: s.instructions }));
  warnings.push(...lintStages(parsed, result, file));
  return {
    ...(file === undefined ? {} : { file }),
    escapeToken: parsed.escapeToken,
    directives: parsed.directives,
    globalArgs,
    stages: result,
    warnings,
  };
}

function rangeOf(r: SourceRange): SourceRange {
  return { startLine: r.startLine, endLine: r.endLine };
}

function invalid(message: string): DockerfileError {
  return new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, message);
}

function atLeastOne(name: string): DockerfileError {
  return invalid(`${name} requires at least one argument`);
}

function exactlyOne(name: string): DockerfileError {
  return invalid(`${name} requires exactly one argument`);
}

/** BuildKit's `nodeArgs`: ONBUILD's arguments are its trigger's keyword and arguments. */
function nodeArgs(node: InstructionNode): readonly string[] {
  if (node.subcommand !== undefined) return [node.subcommand.keyword, ...nodeArgs(node.subcommand), ...node.args];
  return node.args;
}

function parseNode(node: InstructionNode): Instruction | FromInstruction {
  const args = nodeArgs(node);
  const flags = new FlagSet(node.flags, node.keyword.toUpperCase());
  // The node carries the fields every instruction copies (keyword, original, lines).
  const common: Common = node;
  switch (node.name) {
    case 'from':
      return parseFrom(args, flags, common);
    case 'arg': {
      if (args.length === 0) throw atLeastOne('ARG');
      flags.parse();
      return {
        ...common,
        kind: 'arg',
        args: args.map((arg) => {
          const eq = arg.indexOf('=');
          if (eq < 0) return { key: arg };
          if (eq === 0) throw invalid('ARG names can not be blank');
          return { key: arg.slice(0, eq), default: arg.slice(eq + 1) };
        }),
      };
    }
    case 'env':
    case 'label': {
      flags.parse();
      const pairs = keyValuePairs(args, node.name.toUpperCase());
      return node.name === 'env' ? {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'env',
        env: pairs,
      } : {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'label',
        labels: pairs,
      };
    }
    case 'maintainer':
      if (args.length !== 1) throw exactlyOne('MAINTAINER');
      flags.parse();
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'maintainer',
        maintainer: args[0]!,
      };
    case 'add':
    case 'copy':
      return parseFileCopy(node, args, flags, common);
    case 'onbuild': {
      if (args.length === 0) throw atLeastOne('ONBUILD');
      flags.parse();
      const trigger = trimSpace(args[0]!).toUpperCase();
      if (trigger === 'ONBUILD') {
        throw new DockerfileError(DockerfileErrorCode.INVALID_ONBUILD, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      }
      if (trigger === 'MAINTAINER' || trigger === 'FROM') {
        throw new DockerfileError(DockerfileErrorCode.INVALID_ONBUILD, `${trigger} isn't allowed as an ONBUILD trigger`);
      }
      let expression = node.original.replace(/^\s*ONBUILD\s*/i, '');
      for (const doc of node.heredocs) expression += `\n${doc.content}${doc.name}`;
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'onbuild',
        expression,
      };
    }
    case 'workdir':
      if (args.length !== 1) throw exactlyOne('WORKDIR');
      flags.parse();
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'workdir',
        path: args[0]!,
      };
    case 'run': {
      flags.strings('mount').string('network').string('security').parse();
      const network = flags.get('network');
      const security = flags.get('security');
      const run: RunInstruction = {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'run',
        args: commandArgs(args, node.json),
        shellForm: !node.json,
        heredocs: node.heredocs.length === 0 ? [] : node.heredocs.map((d) => ({ name: d.name, data: d.content, chomp: d.chomp })),
        mounts: flags.list('mount'),
      };
      return network === undefined && security === undefined ? run : assignDefined(run, { network, security });
    }
    case 'cmd':
    case 'entrypoint': {
      flags.parse();
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: node.name,
        args: commandArgs(args, node.json),
        shellForm: !node.json,
      };
    }
    case 'healthcheck':
      return parseHealthcheck(args, node.json, flags, common);
    case 'expose':
      if (args.length === 0) throw atLeastOne('EXPOSE');
      flags.parse();
      // BuildKit sorts the words as written, before expansion.
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'expose',
        ports: [...args].sort(compareStrings),
      };
    case 'user':
      if (args.length !== 1) throw exactlyOne('USER');
      flags.parse();
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'user',
        user: args[0]!,
      };
    case 'volume': {
      if (args.length === 0) throw atLeastOne('VOLUME');
      flags.parse();
      const volumes = args.map((v) => trimSpace(v));
      if (volumes.some((v) => v === '')) throw invalid('VOLUME specified can not be an empty string');
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'volume',
        volumes,
      };
    }
    case 'stopsignal':
      // BuildKit never checks STOPSIGNAL's flags; neither do we.
      if (args.length !== 1) throw exactlyOne('STOPSIGNAL');
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'stopsignal',
        signal: args[0]!,
      };
    case 'shell': {
      flags.parse();
      const shell = commandArgs(args, node.json);
      if (shell.length === 0) throw atLeastOne('SHELL');
      if (!node.json) throw invalid(`SHELL requires the arguments to be in JSON form`);
      return {
        keyword: common.keyword,
        original: common.original,
        startLine: common.startLine,
        endLine: common.endLine,
        kind: 'shell',
        shell,
      };
    }
    default:
      throw new DockerfileError(
        DockerfileErrorCode.UNKNOWN_INSTRUCTION,
        withSuggestion(`unknown instruction: ${node.keyword.toUpperCase()}`, node.keyword.toUpperCase(), INSTRUCTION_NAMES),
      );
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** JSON form keeps the argv; shell form is one command line (BuildKit's `handleJSONArgs`). */
function commandArgs(args: readonly string[], json: boolean): string[] {
  if (json) return [...args];
  return args.length === 0 ? [] : [args.join(' ')];
}

function keyValuePairs(args: readonly string[], name: string): EnvPair[] {
  if (args.length === 0) throw atLeastOne(name);
  if (args.length % 3 !== 0) throw invalid(`Bad input to ${name}, too many arguments`);
  const out: EnvPair[] = [];
  for (let i = 0; i < args.length; i += 3) {
    if (args[i] === '') throw invalid(`${name} names can not be blank`);
    out.push({ key: args[i]!, value: args[i + 1]!, legacy: args[i + 2] === '' });
  }
  return out;
}

function parseFrom(args: readonly string[], flags: FlagSet, common: Common): FromInstruction {
  let name: string | undefined;
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    name = args[2]!.toLowerCase();
    if (!STAGE_NAME_RE.test(name)) {
      throw invalid(`invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw invalid('FROM requires either one or three arguments');
  }
  flags.string('platform').parse();
  const platform = flags.get('platform');
  const from: FromInstruction = {
    keyword: common.keyword,
    original: common.original,
    startLine: common.startLine,
    endLine: common.endLine,
    kind: 'from',
    base: args[0]!,
  };
  if (name === undefined) return assignDefined(from, { platform });
  return assignDefined(from, { name, nameAsWritten: args[2]!, asKeyword: args[1]!, platform });
}

function parseFileCopy(node: InstructionNode, args: readonly string[], flags: FlagSet, common: Common): CopyInstruction | AddInstruction {
  const isAdd = node.name === 'add';
  const command = isAdd ? 'ADD' : 'COPY';
  if (args.length < 2) {
    throw invalid(`${command} requires at least two arguments, but only one was provided. Destination could not be determined`);
  }
  flags.strings('exclude').string('chown').string('chmod').bool('link');
  if (isAdd) flags.bool('keep-git-dir').string('checksum').bool('unpack');
  else flags.string('from').bool('parents');
  flags.parse();

  const dest = args[args.length - 1]!;
  if (parseHeredocWord(dest) !== undefined) {
    throw new DockerfileError(DockerfileErrorCode.HEREDOC, `${command} cannot accept a heredoc as a destination`);
  }
  const docs = node.heredocs.length === 0 ? undefined : new Map(node.heredocs.map((d) => [d.name, d]));
  const sources: string[] = [];
  const contents: InlineFile[] = [];
  for (const src of args.slice(0, -1)) {
    const doc = parseHeredocWord(src);
    if (doc === undefined) {
      sources.push(src);
      continue;
    }
    const body = docs?.get(doc.name)?.content ?? '';
    contents.push({ name: doc.name, data: doc.chomp ? chompHeredocContent(body) : body, expand: doc.expand });
  }
  const nonEmpty = (v: string | undefined): string | undefined => (v === '' ? undefined : v);
  const optional = { chown: nonEmpty(flags.get('chown')), chmod: nonEmpty(flags.get('chmod')) };
  const link = flags.isTrue('link');
  const exclude = flags.list('exclude');
  if (isAdd) {
    const add: AddInstruction = {
      keyword: common.keyword,
      original: common.original,
      startLine: common.startLine,
      endLine: common.endLine,
      kind: 'add',
      sources,
      contents,
      dest,
      link,
      exclude,
      keepGitDir: flags.isTrue('keep-git-dir'),
    };
    return assignDefined(add, { ...optional, checksum: nonEmpty(flags.get('checksum')), unpack: flags.boolOrUndefined('unpack') });
  }
  const copy: CopyInstruction = {
    keyword: common.keyword,
    original: common.original,
    startLine: common.startLine,
    endLine: common.endLine,
    kind: 'copy',
    sources,
    contents,
    dest,
    link,
    exclude,
    parents: flags.isTrue('parents'),
  };
  return assignDefined(copy, { ...optional, from: nonEmpty(flags.get('from')) });
}

const MIN_INTERVAL = 1e6; // 1ms, in nanoseconds

function parseHealthcheck(args: readonly string[], json: boolean, flags: FlagSet, common: Common): HealthcheckInstruction {
  if (args.length === 0) throw atLeastOne('HEALTHCHECK');
  const type = args[0]!.toUpperCase();
  const rest = args.slice(1);
  if (type === 'NONE') {
    if (rest.length !== 0) throw invalid('HEALTHCHECK NONE takes no arguments');
    return {
      keyword: common.keyword,
      original: common.original,
      startLine: common.startLine,
      endLine: common.endLine,
      kind: 'healthcheck',
      test: ['NONE'],
    };
  }
  flags.string('interval').string('timeout').string('start-period').string('start-interval').string('retries').parse();
  if (type !== 'CMD') throw invalid(`Unknown type ${goQuote(type)} in HEALTHCHECK (try CMD)`);
  const cmd = commandArgs(rest, json);
  if (cmd.length === 0) throw invalid('Missing command after HEALTHCHECK CMD');
  const interval = (name: string): number | undefined => {
    const text = flags.get(name);
    if (text === undefined || text === '') return undefined;
    const ns = parseGoDurationNanoseconds(text);
    if (ns === undefined) throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `time: invalid duration ${goQuote(text)} for --${name}`);
    if (ns !== 0 && ns < MIN_INTERVAL) {
      throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `Interval ${goQuote(name)} cannot be less than 1ms`);
    }
    return ns;
  };
  const durations = {
    interval: interval('interval'),
    timeout: interval('timeout'),
    startPeriod: interval('start-period'),
    startInterval: interval('start-interval'),
  };
  let retries: number | undefined;
  const retriesText = flags.get('retries');
  if (retriesText !== undefined && retriesText !== '') {
    if (!/^[+-]?[0-9]+$/.test(retriesText) || Math.abs(Number(retriesText)) > 2 ** 31 - 1) {
      throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `strconv.ParseInt: parsing ${goQuote(retriesText)}: invalid syntax`);
    }
    retries = Number(retriesText);
    if (retries < 0) throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, `--retries cannot be negative (${retries})`);
  }
  const health: HealthcheckInstruction = {
    keyword: common.keyword,
    original: common.original,
    startLine: common.startLine,
    endLine: common.endLine,
    kind: 'healthcheck',
    test: [json ? 'CMD' : 'CMD-SHELL', ...cmd],
  };
  return assignDefined(health, { ...durations, retries });
}

// ---------------------------------------------------------------------------------------------
// Lint rules that need only the instructions (the planner adds those that need expansion).

const RESERVED_STAGE_NAMES = new Set(['scratch', 'context']);

function lintStages(parsed: ParsedDockerfile, stages: readonly Stage[], file: string | undefined): DockerfileWarning[] {
  const out: DockerfileWarning[] = [];
  const add = (rule: string, message: string, at: SourceRange): void => {
    out.push(warning(rule, message, rangeOf(at), file));
  };

  // ConsistentInstructionCasing: against the majority of the file.
  let upper = 0;
  let lower = 0;
  const hasLower = (s: string): boolean => s !== s.toUpperCase();
  const hasUpper = (s: string): boolean => s !== s.toLowerCase();
  for (const node of parsed.instructions) {
    if (!hasLower(node.keyword)) upper++;
    else if (!hasUpper(node.keyword)) lower++;
  }
  const majorityUpper = upper >= lower;
  for (const node of parsed.instructions) {
    if (majorityUpper ? hasLower(node.keyword) : hasUpper(node.keyword)) {
      add('ConsistentInstructionCasing', `Command '${node.keyword}' should match the case of the command majority (${majorityUpper ? 'uppercase' : 'lowercase'})`, node);
    }
  }

  const seen = new Set<string>();
  for (const stage of stages) {
    if (stage.name !== undefined) {
      if (stage.nameAsWritten !== stage.name) add('StageNameCasing', `Stage name '${stage.nameAsWritten}' should be lowercase`, stage);
      if (seen.has(stage.name)) add('DuplicateStageName', `Duplicate stage name ${goQuote(stage.name)}, stage names should be unique`, stage);
      if (RESERVED_STAGE_NAMES.has(stage.name)) {
        add('ReservedStageName', `Stage name should not use the same name as reserved stage ${goQuote(stage.name)}`, stage);
      }
      seen.add(stage.name);
      const asUpper = stage.asKeyword === stage.asKeyword?.toUpperCase();
      const fromUpper = stage.keyword === stage.keyword.toUpperCase();
      if (asUpper !== fromUpper) add('FromAsCasing', `'${stage.asKeyword}' and '${stage.keyword}' keywords' casing do not match`, stage);
    }
    const counts = new Map<string, Instruction[]>();
    let hasShell = false;
    for (const ins of stage.instructions) {
      if (ins.kind === 'shell') hasShell = true;
      if (ins.kind === 'maintainer') add('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', ins);
      if (ins.kind === 'env' || ins.kind === 'label') {
        if (ins.kind === 'env' ? ins.env.some((p) => p.legacy) : ins.labels.some((p) => p.legacy)) {
          const k = ins.kind.toUpperCase();
          add('LegacyKeyValueFormat', `"${k} key=value" should be used instead of legacy "${k} key value" format`, ins);
        }
      }
      if ((ins.kind === 'cmd' || ins.kind === 'entrypoint') && ins.shellForm && !hasShell) {
        add('JSONArgsRecommended', `JSON arguments recommended for ${ins.kind.toUpperCase()} to prevent unintended behavior related to OS signals`, ins);
      }
      if (ins.kind === 'cmd' || ins.kind === 'entrypoint' || ins.kind === 'healthcheck') {
        const list = counts.get(ins.kind);
        if (list === undefined) counts.set(ins.kind, [ins]);
        else list.push(ins);
      }
    }
    for (const [kind, list] of counts) {
      for (const ins of list.slice(0, -1)) {
        add(
          'MultipleInstructionsDisallowed',
          `Multiple ${kind.toUpperCase()} instructions should not be used in the same stage because only the last one will be used`,
          ins,
        );
      }
    }
  }
  return out;
}
