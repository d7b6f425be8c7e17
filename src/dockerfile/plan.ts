import {
  DEFAULT_PLATFORM,
  formatPlatform,
  formatReference,
  hostPlatform,
  normalizePlatform,
  parsePlatform,
  parseReference,
  type ContainerConfig,
  type Platform,
} from '../oci/index.js';
import { parseExposedPorts, validateChmod, validateSignal } from './config-values.js';
import { DockerfileError, DockerfileErrorCode, warning, type DockerfileWarning, type SourceRange } from './errors.js';
import {
  parseInstruction,
  parseStages,
  type AddInstruction,
  type CopyInstruction,
  type DockerfileStages,
  type Instruction,
  type RunInstruction,
  type Stage,
} from './instructions.js';
import { assignDefined } from './objects.js';
import { mountFrom, parseMount, type CacheSharing } from './mounts.js';
import { chompHeredocContent, parseDockerfile, parseHeredocWord, type ParsedDockerfile } from './parser.js';
import { expandShell, type EscapeToken } from './shell.js';
import { suggest, withSuggestion } from './suggest.js';
import { cleanPath } from './paths.js';
import { isGitSource, isHttpUrl } from './sources.js';
import { goQuote } from './text.js';

/**
 * The build plan: which stages the target needs, what each is based on, and every step with its
 * words expanded, as plain serialisable data. Planning is pure; what it would need from the
 * registry (the config of each base image: its Env, WorkingDir, User, Shell and OnBuild triggers)
 * can be passed in `baseImages`, so the engine plans once to learn the bases, fetches their
 * configs, and plans again for the exact result.
 */

// ---------------------------------------------------------------------------------------------
// The plan's data model.

/** What a stage starts from. */
export type PlanBase =
  | { readonly kind: 'scratch' }
  /** `ref` as written after expansion; `reference` normalised (`docker.io/library/alpine:latest`). */
  | { readonly kind: 'image'; readonly ref: string; readonly reference: string }
  | { readonly kind: 'stage'; readonly index: number };

/** Where COPY --from or a RUN mount takes its files from. */
export type PlanSource =
  | { readonly kind: 'context' }
  | { readonly kind: 'scratch' }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'image'; readonly ref: string; readonly reference: string };

export type PlanMount =
  | { readonly type: 'bind'; readonly target: string; readonly source: string; readonly from: PlanSource; readonly readOnly: boolean }
  | {
      readonly type: 'cache';
      readonly target: string;
      /** The cache identity (default: the target path). */
      readonly id: string;
      readonly sharing: CacheSharing;
      readonly source: string;
      readonly from: PlanSource;
      readonly readOnly: boolean;
      readonly uid: number;
      readonly gid: number;
      readonly mode: number;
    }
  | { readonly type: 'tmpfs'; readonly target: string; readonly sizeLimit?: number }
  | {
      readonly type: 'secret';
      readonly id: string;
      /** Where the secret file appears; undefined when it is only exposed as `env`. */
      readonly target?: string;
      readonly env?: string;
      readonly required: boolean;
      readonly uid: number;
      readonly gid: number;
      readonly mode: number;
    }
  | {
      readonly type: 'ssh';
      readonly id: string;
      /** The agent socket path; undefined means BuildKit's default `/run/buildkit/ssh_agent.N`. */
      readonly target?: string;
      readonly required: boolean;
      readonly uid: number;
      readonly gid: number;
      readonly mode: number;
    };

/** A file the engine writes for a step (a COPY heredoc, or a RUN heredoc script with a shebang). */
export interface PlanInlineFile {
  readonly name: string;
  readonly content: string;
}

interface StepCommon extends SourceRange {
  /** The instruction as written (continuations joined). */
  readonly original: string;
  /** The history `created_by`, as BuildKit writes it. */
  readonly createdBy: string;
  /** Whether BuildKit records this step as an empty layer in the history. */
  readonly emptyLayer: boolean;
  /** Set for steps that come from an ONBUILD trigger of the base (their range is the FROM line). */
  readonly onbuild?: true;
}

export interface RunStep extends StepCommon {
  readonly kind: 'run';
  /** The process to start: for the shell form, the shell in effect followed by the command line. */
  readonly argv: readonly string[];
  readonly shellForm: boolean;
  /**
   * The environment as the Dockerfile sets it at this point, `KEY=value`, in order: the base
   * image's Env (when known), then ARG and ENV values. The engine starts from the base config's
   * Env and applies these on top (later entries win).
   */
  readonly env: readonly string[];
  readonly mounts: readonly PlanMount[];
  /** For a heredoc script with a shebang: the file to mount read-only at `/dev/pipes/<name>` (mode 0755). */
  readonly scripts: readonly PlanInlineFile[];
  readonly network: 'default' | 'none' | 'host';
  readonly security: 'sandbox' | 'insecure';
}

interface FileStep extends StepCommon {
  /** Source paths or URLs, expanded. */
  readonly sources: readonly string[];
  /** Heredoc sources, expanded when their delimiter was not quoted. */
  readonly contents: readonly PlanInlineFile[];
  /** The destination as written, expanded. */
  readonly dest: string;
  /** The destination made absolute against the working directory (a trailing `/` kept). */
  readonly destPath: string;
  readonly chown?: string;
  readonly chmod?: string;
  readonly link: boolean;
  readonly exclude: readonly string[];
}

export interface CopyStep extends FileStep {
  readonly kind: 'copy';
  readonly from: PlanSource;
  readonly parents: boolean;
}

export interface AddStep extends FileStep {
  readonly kind: 'add';
  readonly keepGitDir: boolean;
  readonly checksum?: string;
  readonly unpack?: boolean;
}

export type PlanStep =
  | RunStep
  | CopyStep
  | AddStep
  | (StepCommon & { readonly kind: 'env'; readonly env: readonly (readonly [string, string])[] })
  | (StepCommon & { readonly kind: 'arg'; readonly args: readonly { readonly name: string; readonly value?: string }[] })
  | (StepCommon & { readonly kind: 'label'; readonly labels: readonly (readonly [string, string])[] })
  | (StepCommon & { readonly kind: 'workdir'; readonly path: string; readonly workdir: string })
  | (StepCommon & { readonly kind: 'user'; readonly user: string })
  | (StepCommon & { readonly kind: 'expose'; readonly ports: readonly string[] })
  | (StepCommon & { readonly kind: 'volume'; readonly volumes: readonly string[] })
  | (StepCommon & { readonly kind: 'stopsignal'; readonly signal: string })
  | (StepCommon & { readonly kind: 'cmd'; readonly argv: readonly string[]; readonly shellForm: boolean })
  | (StepCommon & {
      readonly kind: 'entrypoint';
      readonly argv: readonly string[] | null;
      readonly shellForm: boolean;
      /** ENTRYPOINT resets a CMD inherited from the base unless this stage set CMD before it. */
      readonly resetsCmd: boolean;
    })
  | (StepCommon & {
      readonly kind: 'healthcheck';
      readonly test: readonly string[];
      readonly interval?: number;
      readonly timeout?: number;
      readonly startPeriod?: number;
      readonly startInterval?: number;
      readonly retries?: number;
    })
  | (StepCommon & { readonly kind: 'shell'; readonly shell: readonly string[] })
  | (StepCommon & { readonly kind: 'maintainer'; readonly maintainer: string })
  | (StepCommon & { readonly kind: 'onbuild'; readonly expression: string });

export interface PlanStage extends SourceRange {
  /** The stage's position among the FROM lines; `PlanBase`/`PlanSource` refer to stages by it. */
  readonly index: number;
  readonly name?: string;
  /** The FROM line as written. */
  readonly original: string;
  readonly base: PlanBase;
  /** Whether the base image's config was supplied (`baseImages`); scratch and stages count as known. */
  readonly baseConfigKnown: boolean;
  /** The platform this stage builds for (`os/arch[/variant]`). */
  readonly platform: string;
  /** The stages this one needs (its base, COPY --from and RUN --mount from=), by index. */
  readonly dependsOn: readonly number[];
  readonly steps: readonly PlanStep[];
}

export interface BuildPlan {
  readonly file?: string;
  readonly escapeToken: EscapeToken;
  /** The `# syntax=` directive, if any (informational: Stevedore has one frontend). */
  readonly syntax?: string;
  /** Index of the target stage. */
  readonly target: number;
  readonly platform: string;
  readonly buildPlatform: string;
  /** The stages the target needs, in Dockerfile order (a stage before those that depend on it). */
  readonly stages: readonly PlanStage[];
  /** Proxy variables given as build args: passed to RUN without being recorded (BuildKit's proxy env). */
  readonly proxyEnv: readonly string[];
  /** From the `SOURCE_DATE_EPOCH` build arg, in seconds. */
  readonly sourceDateEpoch?: number;
  /** Build args no ARG in the Dockerfile declares. */
  readonly unusedBuildArgs: readonly string[];
  readonly warnings: readonly DockerfileWarning[];
}

/** The parts of a base image's config that planning uses. */
export type BaseImageConfig = Readonly<Pick<ContainerConfig, 'Env' | 'WorkingDir' | 'User' | 'Shell' | 'OnBuild'>>;

export interface PlanOptions {
  readonly buildArgs?: Readonly<Record<string, string>>;
  /** The stage to build (by name); default the last stage. */
  readonly target?: string;
  /** The platform to build for; default `linux/amd64`. */
  readonly platform?: string | Platform;
  /** The platform of the builder (`BUILDPLATFORM`); default the host's. */
  readonly buildPlatform?: string | Platform;
  /** Configs of base images, keyed by the reference as written in the plan (`PlanBase.ref`). */
  readonly baseImages?: Readonly<Record<string, BaseImageConfig>>;
  /** The name errors and warnings are reported against. */
  readonly file?: string;
}

/** Variables set from proxy build args without an ARG (Docker's predefined ARGs). */
export const PROXY_ARGS: readonly string[] = [
  'HTTP_PROXY',
  'http_proxy',
  'HTTPS_PROXY',
  'https_proxy',
  'FTP_PROXY',
  'ftp_proxy',
  'NO_PROXY',
  'no_proxy',
  'ALL_PROXY',
  'all_proxy',
];

/** The PATH an image gets when its config has none (BuildKit's `system.DefaultPathEnv` on Linux). */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

/** Build args that are never turned into environment variables. */
const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

const AUTOMATIC_ARGS = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDOSVERSION',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETOSVERSION',
  'TARGETARCH',
  'TARGETVARIANT',
  'TARGETSTAGE',
];

const SECRET_NAME = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const PUBLIC_NAME = /(?:_|^)(?:public|pub)(?:_|$)/i;

// ---------------------------------------------------------------------------------------------

/**
 * Plans a build of `dockerfile` (text, bytes, or an already parsed file). Throws `DockerfileError`
 * for anything BuildKit would reject before running a step.
 */
export function planBuild(dockerfile: string | Uint8Array | ParsedDockerfile, options: PlanOptions = {}): BuildPlan {
  const parsed =
    typeof dockerfile === 'string' || dockerfile instanceof Uint8Array
      ? parseDockerfile(dockerfile, options.file === undefined ? {} : { file: options.file })
      : dockerfile;
  return new Planner(parseStages(parsed), options).plan();
}

/**
 * Parses the ONBUILD triggers of a base image config (`config.OnBuild`) into instructions, placed
 * at `range` (the FROM line that inherits them). Each trigger must be one instruction other than
 * FROM, MAINTAINER or ONBUILD. Errors name the trigger.
 */
export function parseOnbuildTriggers(triggers: readonly string[], range: SourceRange, file?: string): Instruction[] {
  return triggers.map((trigger) => {
    const fail = (err: unknown): never => {
      if (!(err instanceof DockerfileError)) throw err;
      throw new DockerfileError(err.code, `ONBUILD trigger ${goQuote(trigger)}: ${err.reason}`, { file, ...range }, { cause: err });
    };
    try {
      const parsed = parseDockerfile(trigger);
      if (parsed.instructions.length !== 1) {
        throw new DockerfileError(DockerfileErrorCode.INVALID_ONBUILD, 'onbuild trigger should be a single expression');
      }
      const node = { ...parsed.instructions[0]!, startLine: range.startLine, endLine: range.endLine };
      const instruction = parseInstruction(node);
      if (instruction.kind === 'from' || instruction.kind === 'onbuild' || instruction.kind === 'maintainer') {
        throw new DockerfileError(DockerfileErrorCode.INVALID_ONBUILD, `${instruction.keyword.toUpperCase()} isn't allowed as an ONBUILD trigger`);
      }
      return { ...instruction, startLine: range.startLine, endLine: range.endLine };
    } catch (err) {
      return fail(err);
    }
  });
}

/** An ordered environment (`KEY` → value), later settings replacing earlier ones in place. */
type Env = Map<string, string>;

interface StageState {
  env: Env;
  /** ARGs in scope: name and value (undefined when declared without one). */
  args: { name: string; value: string | undefined }[];
  workdir: string;
  workdirSet: boolean;
  user: string;
  shell: readonly string[];
  onbuild: string[];
  /** False when the base image's config was not supplied: its Env is unknown. */
  envKnown: boolean;
}

interface StageInfo {
  readonly stage: Stage;
  readonly stageName: string;
  readonly base: PlanBase;
  readonly platform: Platform;
  /** The stage's instructions, ONBUILD triggers first. */
  instructions: { readonly instruction: Instruction; readonly onbuild: boolean }[];
  deps: { readonly index: number; readonly at: SourceRange }[];
  /** Resolved sources per instruction (COPY --from / mounts), keyed by the instruction. */
  readonly sources: Map<Instruction, PlanSource[]>;
}

class Planner {
  private readonly file: string | undefined;
  private readonly warnings: DockerfileWarning[];
  private readonly buildArgs: ReadonlyMap<string, string>;
  private readonly targetPlatform: Platform;
  private readonly buildPlatform: Platform;
  private readonly globalScope: Env = new Map();
  private readonly declaredArgs = new Set<string>();
  private readonly byName = new Map<string, number>();
  private allNames: Map<string, number> | undefined;
  private readonly infos: StageInfo[] = [];
  private readonly states = new Map<number, StageState>();
  private readonly skipRules: Set<string> | 'all';
  private readonly lintErrors: boolean;

  constructor(
    private readonly df: DockerfileStages,
    private readonly options: PlanOptions,
  ) {
    this.file = df.file ?? options.file;
    this.warnings = [...df.warnings];
    this.buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
    this.targetPlatform = this.platformOption(options.platform, DEFAULT_PLATFORM, 'platform');
    this.buildPlatform = this.platformOption(options.buildPlatform, hostPlatform(), 'build platform');
    const check = parseCheckDirective(df.directives.find((d) => d.name === 'check')?.value);
    this.skipRules = check.skip;
    this.lintErrors = check.error;
  }

  plan(): BuildPlan {
    if (this.df.stages.length === 0) {
      throw new DockerfileError(DockerfileErrorCode.NO_STAGE, 'dockerfile contains no stages to build: add a FROM instruction', { file: this.file });
    }
    this.initGlobalScope();
    for (const stage of this.df.stages) this.infos.push(this.resolveStage(stage));
    for (const info of this.infos) this.collectDependencies(info);
    this.checkCycles();
    const target = this.findTarget();
    const needed = this.reachable(target);

    const stages: PlanStage[] = [];
    for (const info of this.infos) {
      if (!needed.has(info.stage.index)) continue;
      stages.push(this.dispatchStage(info));
    }

    const epoch = this.buildArgs.get('SOURCE_DATE_EPOCH');
    if (epoch !== undefined && epoch !== '' && !/^[0-9]+$/.test(epoch)) {
      throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `invalid SOURCE_DATE_EPOCH ${goQuote(epoch)}: must be a number of seconds`, {
        file: this.file,
      });
    }
    const warnings = this.finishWarnings();
    const syntax = this.df.directives.find((d) => d.name === 'syntax')?.value;
    return {
      ...(this.file === undefined ? {} : { file: this.file }),
      escapeToken: this.df.escapeToken,
      ...(syntax === undefined ? {} : { syntax }),
      target,
      platform: formatPlatform(this.targetPlatform),
      buildPlatform: formatPlatform(this.buildPlatform),
      stages,
      proxyEnv: PROXY_ARGS.filter((k) => this.buildArgs.has(k)).map((k) => `${k}=${this.buildArgs.get(k)!}`),
      ...(epoch === undefined || epoch === '' ? {} : { sourceDateEpoch: Number(epoch) }),
      unusedBuildArgs: [...this.buildArgs.keys()].filter(
        (k) => !this.declaredArgs.has(k) && !PROXY_ARGS.includes(k) && !AUTOMATIC_ARGS.includes(k) && k !== 'SOURCE_DATE_EPOCH' && !k.startsWith('BUILDKIT_'),
      ),
      warnings,
    };
  }

  // --- options and global scope -------------------------------------------------------------

  private platformOption(value: string | Platform | undefined, fallback: Platform, what: string): Platform {
    if (value === undefined) return normalizePlatform(fallback);
    if (typeof value !== 'string') return normalizePlatform(value);
    try {
      return parsePlatform(value);
    } catch (err) {
      throw new DockerfileError(DockerfileErrorCode.INVALID_PLATFORM, `${what}: ${(err as Error).message}`, { file: this.file }, { cause: err });
    }
  }

  private initGlobalScope(): void {
    const b = this.buildPlatform;
    const t = this.targetPlatform;
    const automatic: [string, string][] = [
      ['BUILDPLATFORM', formatPlatform(b)],
      ['BUILDOS', b.os],
      ['BUILDOSVERSION', b['os.version'] ?? ''],
      ['BUILDARCH', b.architecture],
      ['BUILDVARIANT', b.variant ?? ''],
      ['TARGETPLATFORM', formatPlatform(t)],
      ['TARGETOS', t.os],
      ['TARGETOSVERSION', t['os.version'] ?? ''],
      ['TARGETARCH', t.architecture],
      ['TARGETVARIANT', t.variant ?? ''],
      ['TARGETSTAGE', this.options.target ?? ''],
    ];
    for (const [k, v] of automatic) this.globalScope.set(k, this.buildArgs.get(k) ?? v);
    for (const ins of this.df.globalArgs) {
      for (const arg of ins.args) {
        this.declaredArgs.add(arg.key);
        let value: string | undefined;
        if (arg.default !== undefined) value = this.expand(arg.default, this.globalScope, ins, { lint: false }).value;
        const override = this.buildArgs.get(arg.key);
        if (override !== undefined) value = override;
        if (value !== undefined) this.globalScope.set(arg.key, value);
      }
    }
  }

  // --- stages, bases, dependencies ----------------------------------------------------------

  private resolveStage(stage: Stage): StageInfo {
    const at = { startLine: stage.startLine, endLine: stage.endLine };
    const stageName = stage.name ?? `stage-${stage.index}`;
    const baseExpansion = this.expand(stage.base, this.globalScope, stage, { lint: false });
    for (const name of baseExpansion.unresolved) {
      if (!this.declaredArgs.has(name) && !AUTOMATIC_ARGS.includes(name)) {
        this.warn('UndefinedArgInFrom', withSuggestion(`FROM argument '${name}' is not declared`, name, [...this.globalScope.keys()], true), at);
      }
    }
    const baseName = baseExpansion.value;
    if (baseName === '') {
      throw this.error(DockerfileErrorCode.INVALID_REFERENCE, `base name (${stage.base}) should not be blank`, at);
    }

    let base: PlanBase;
    const baseStage = this.byName.get(baseName);
    if (baseStage !== undefined) base = { kind: 'stage', index: baseStage };
    else if (baseName === 'scratch') base = { kind: 'scratch' };
    else base = { kind: 'image', ref: baseName, reference: this.imageReference(baseName, at, 'base image') };

    let platform = this.targetPlatform;
    if (stage.platform !== undefined) {
      if (/^\$\{?TARGETPLATFORM\}?$/.test(stage.platform)) {
        this.warn('RedundantTargetPlatform', 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior', at);
      }
      const expanded = this.expand(stage.platform, this.globalScope, stage, { lint: false }).value;
      if (expanded === '') throw this.error(DockerfileErrorCode.INVALID_PLATFORM, `empty platform value from expression ${stage.platform}`, at);
      try {
        platform = parsePlatform(expanded);
      } catch (err) {
        throw this.error(DockerfileErrorCode.INVALID_PLATFORM, `failed to parse platform ${stage.platform}: ${(err as Error).message}`, at);
      }
    }
    if (base.kind === 'stage') platform = this.infos[base.index]!.platform;
    if (stage.name !== undefined) this.byName.set(stage.name, stage.index);

    for (const ins of stage.instructions) if (ins.kind === 'arg') for (const a of ins.args) this.declaredArgs.add(a.key);

    const triggers = this.baseTriggers(base, at);
    return {
      stage,
      stageName,
      base,
      platform,
      instructions: [...triggers.map((instruction) => ({ instruction, onbuild: true })), ...stage.instructions.map((instruction) => ({ instruction, onbuild: false }))],
      deps: [],
      sources: new Map(),
    };
  }

  /** ONBUILD triggers a stage runs first: those of its base image's config, or of its base stage. */
  private baseTriggers(base: PlanBase, at: SourceRange): Instruction[] {
    let expressions: readonly string[] = [];
    if (base.kind === 'image') expressions = this.options.baseImages?.[base.ref]?.OnBuild ?? [];
    if (base.kind === 'stage') {
      expressions = this.infos[base.index]!.stage.instructions.flatMap((i) => (i.kind === 'onbuild' ? [i.expression] : []));
    }
    return parseOnbuildTriggers(expressions, at, this.file);
  }

  private imageReference(name: string, at: SourceRange, what: string): string {
    try {
      return formatReference(parseReference(name));
    } catch (err) {
      throw this.error(DockerfileErrorCode.INVALID_REFERENCE, `invalid ${what} reference ${goQuote(name)}: ${(err as Error).message}`, at);
    }
  }

  private findStageByName(name: string): number | undefined {
    // COPY --from, mounts and the target look names up case-insensitively, among all stages (a
    // later one too; with duplicate names the last wins).
    if (this.allNames === undefined) {
      this.allNames = new Map();
      for (const info of this.infos) if (info.stage.name !== undefined) this.allNames.set(info.stage.name, info.stage.index);
    }
    return this.allNames.get(name.toLowerCase());
  }

  private collectDependencies(info: StageInfo): void {
    if (info.base.kind === 'stage') info.deps.push({ index: info.base.index, at: info.stage });
    for (const { instruction } of info.instructions) {
      const at = { startLine: instruction.startLine, endLine: instruction.endLine };
      if (instruction.kind === 'copy' && instruction.from !== undefined) {
        const source = this.copySource(instruction.from, at);
        info.sources.set(instruction, [source]);
        if (source.kind === 'stage') info.deps.push({ index: source.index, at });
      }
      if (instruction.kind === 'run') {
        const sources: PlanSource[] = [];
        for (const mount of instruction.mounts) {
          let from: string | undefined;
          try {
            from = mountFrom(mount);
          } catch (err) {
            throw err instanceof DockerfileError ? err.locate(at, this.file) : err;
          }
          if (from === undefined || from === '') {
            sources.push({ kind: 'context' });
            continue;
          }
          const index = this.findStageByName(from);
          const source: PlanSource =
            index !== undefined ? { kind: 'stage', index } : { kind: 'image', ref: from, reference: this.imageReference(from, at, 'mount from') };
          sources.push(source);
          if (source.kind === 'stage') info.deps.push({ index: source.index, at });
        }
        info.sources.set(instruction, sources);
      }
    }
  }

  private copySource(from: string, at: SourceRange): PlanSource {
    // BuildKit expands the value with no variables at all: any change means it used one.
    let unchanged: boolean;
    try {
      unchanged = expandShell(from, () => undefined, { escapeToken: this.df.escapeToken }).value === from;
    } catch {
      unchanged = false;
    }
    if (!unchanged) {
      throw this.error(
        DockerfileErrorCode.INVALID_STAGE_REFERENCE,
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
        at,
      );
    }
    if (/^[+-]?[0-9]+$/.test(from) && Number.isSafeInteger(Number(from))) {
      const index = Number(from);
      if (index < 0 || index >= this.infos.length) throw this.error(DockerfileErrorCode.INVALID_STAGE_REFERENCE, `invalid stage index ${index}`, at);
      return { kind: 'stage', index };
    }
    const index = this.findStageByName(from);
    if (index !== undefined) return { kind: 'stage', index };
    try {
      return { kind: 'image', ref: from, reference: formatReference(parseReference(from)) };
    } catch (err) {
      const known = this.infos.flatMap((i) => (i.stage.name === undefined ? [] : [i.stage.name]));
      throw this.error(
        DockerfileErrorCode.INVALID_REFERENCE,
        withSuggestion(`invalid from flag value ${from}: ${(err as Error).message}`, from, known),
        at,
      );
    }
  }

  private checkCycles(): void {
    const visited = new Set<number>();
    const onPath = new Set<number>();
    const visit = (index: number, path: SourceRange[]): SourceRange[] | undefined => {
      if (visited.has(index)) return undefined;
      visited.add(index);
      onPath.add(index);
      for (const dep of this.infos[index]!.deps) {
        const next = [...path, dep.at];
        if (onPath.has(dep.index)) return next;
        const cycle = visit(dep.index, next);
        if (cycle !== undefined) return cycle;
      }
      onPath.delete(index);
      return undefined;
    };
    for (const info of this.infos) {
      const cycle = visit(info.stage.index, []);
      if (cycle !== undefined) {
        throw this.error(DockerfileErrorCode.CIRCULAR_DEPENDENCY, `circular dependency detected on stage: ${info.stageName}`, cycle[0] ?? info.stage);
      }
    }
  }

  private findTarget(): number {
    const target = this.options.target;
    if (target === undefined || target === '') return this.infos.length - 1;
    const index = this.findStageByName(target);
    if (index === undefined) {
      const names = this.infos.flatMap((i) => (i.stage.name === undefined ? [] : [i.stage.name]));
      throw new DockerfileError(
        DockerfileErrorCode.TARGET_NOT_FOUND,
        withSuggestion(`target stage ${goQuote(target)} could not be found`, target, names),
        { file: this.file },
      );
    }
    return index;
  }

  private reachable(target: number): Set<number> {
    const seen = new Set<number>();
    const stack = [target];
    while (stack.length > 0) {
      const index = stack.pop()!;
      if (seen.has(index)) continue;
      seen.add(index);
      for (const dep of this.infos[index]!.deps) stack.push(dep.index);
    }
    return seen;
  }

  // --- dispatch: one stage, step by step ----------------------------------------------------

  private initialState(info: StageInfo): { state: StageState; known: boolean } {
    const base = info.base;
    if (base.kind === 'stage') {
      const parent = this.states.get(base.index)!;
      return {
        state: {
          env: new Map(parent.env),
          args: [...parent.args],
          workdir: parent.workdir,
          workdirSet: parent.workdirSet,
          user: parent.user,
          shell: parent.shell,
          onbuild: [],
          envKnown: parent.envKnown,
        },
        known: true,
      };
    }
    const config: BaseImageConfig | undefined = base.kind === 'scratch' ? {} : this.options.baseImages?.[base.ref];
    const env: Env = new Map();
    if (config !== undefined) {
      for (const entry of config.Env ?? []) {
        const eq = entry.indexOf('=');
        env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
      }
      // BuildKit makes sure PATH is always set.
      if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH_ENV);
    }
    const workdir = config?.WorkingDir ? normalizeWorkdir('/', config.WorkingDir) : '/';
    return {
      state: {
        env,
        args: [],
        workdir,
        workdirSet: false,
        user: config?.User ?? '',
        shell: config?.Shell !== undefined && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL,
        onbuild: [],
        envKnown: config !== undefined,
      },
      known: config !== undefined,
    };
  }

  private dispatchStage(info: StageInfo): PlanStage {
    const { state, known } = this.initialState(info);
    const steps: PlanStep[] = [];
    let cmdSet = false;
    for (const { instruction, onbuild } of info.instructions) {
      let step: PlanStep;
      try {
        step = this.dispatch(info, state, instruction, cmdSet);
      } catch (err) {
        throw err instanceof DockerfileError ? err.locate(instruction, this.file) : err;
      }
      if (step.kind === 'cmd') cmdSet = true;
      steps.push(onbuild ? { ...step, onbuild: true } : step);
    }
    this.states.set(info.stage.index, state);
    const dependsOn = [...new Set(info.deps.map((d) => d.index))].sort((a, b) => a - b);
    return {
      index: info.stage.index,
      ...(info.stage.name === undefined ? {} : { name: info.stage.name }),
      original: info.stage.original,
      startLine: info.stage.startLine,
      endLine: info.stage.endLine,
      base: info.base,
      baseConfigKnown: known,
      platform: formatPlatform(info.platform),
      dependsOn,
      steps,
    };
  }

  private dispatch(info: StageInfo, state: StageState, ins: Instruction, cmdSet: boolean): PlanStep {
    const common: SourceRange & { readonly original: string } = ins;
    const word = (w: string): string => this.expandInStage(w, state, ins);
    switch (ins.kind) {
      case 'env': {
        const env = ins.env.map((p) => [word(p.key), word(p.value)] as const);
        for (const [k, v] of env) {
          this.lintSecret('ENV', k, ins);
          state.env.set(k, v);
        }
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'env',
          env,
          createdBy: `ENV ${env.map(([k, v]) => `${k}=${v}`).join(' ')}`,
          emptyLayer: true,
        };
      }
      case 'arg':
        return this.dispatchArg(state, ins, common);
      case 'label': {
        const labels = ins.labels.map((p) => [word(p.key), word(p.value)] as const);
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'label',
          labels,
          createdBy: `LABEL ${labels.map(([k, v]) => `${k}=${v}`).join(' ')}`,
          emptyLayer: true,
        };
      }
      case 'maintainer':
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'maintainer',
          maintainer: ins.maintainer,
          createdBy: `MAINTAINER ${ins.maintainer}`,
          emptyLayer: true,
        };
      case 'workdir': {
        const path = word(ins.path);
        if (!path.startsWith('/') && !state.workdirSet) {
          this.warn('WorkdirRelativePath', `Relative workdir ${goQuote(path)} can have unexpected results if the base image changes`, ins);
        }
        state.workdirSet = true;
        state.workdir = normalizeWorkdir(state.workdir, path);
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'workdir',
          path,
          workdir: state.workdir,
          createdBy: `WORKDIR ${state.workdir}`,
          emptyLayer: state.workdir === '/',
        };
      }
      case 'user': {
        const user = word(ins.user);
        state.user = user;
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'user',
          user,
          createdBy: `USER ${user}`,
          emptyLayer: true,
        };
      }
      case 'expose': {
        const specs = ins.ports.flatMap((p) => this.expandInStage(p, state, ins, true));
        const ports = parseExposedPorts(specs);
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'expose',
          ports,
          createdBy: `EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`,
          emptyLayer: true,
        };
      }
      case 'volume': {
        const volumes = ins.volumes.map(word);
        if (volumes.some((v) => v === '')) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, 'VOLUME specified can not be an empty string');
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'volume',
          volumes,
          createdBy: `VOLUME [${volumes.join(' ')}]`,
          emptyLayer: true,
        };
      }
      case 'stopsignal': {
        const signal = word(ins.signal);
        validateSignal(signal);
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'stopsignal',
          signal,
          createdBy: `STOPSIGNAL ${signal}`,
          emptyLayer: true,
        };
      }
      case 'onbuild':
        state.onbuild.push(ins.expression);
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'onbuild',
          expression: ins.expression,
          createdBy: `ONBUILD ${ins.expression}`,
          emptyLayer: true,
        };
      case 'shell':
        state.shell = ins.shell;
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'shell',
          shell: ins.shell,
          createdBy: `SHELL [${ins.shell.join(' ')}]`,
          emptyLayer: true,
        };
      case 'cmd': {
        const argv = ins.shellForm ? [...state.shell, ins.args.join(' ')] : ins.args;
        return {
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'cmd',
          argv,
          shellForm: ins.shellForm,
          createdBy: `CMD ${goQuoteList(argv)}`,
          emptyLayer: true,
        };
      }
      case 'entrypoint': {
        const argv = ins.shellForm ? [...state.shell, ins.args.join(' ')] : ins.args.length === 0 ? null : ins.args;
        return {
          ...common,
          kind: 'entrypoint',
          argv,
          shellForm: ins.shellForm,
          resetsCmd: !cmdSet,
          createdBy: `ENTRYPOINT ${argv === null ? '[]' : goQuoteList(argv)}`,
          emptyLayer: true,
        };
      }
      case 'healthcheck': {
        const q = (ns: number | undefined): string => goQuote(goDuration(ns ?? 0));
        const createdBy =
          ins.test[0] === 'NONE'
            ? `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" '\\x00'}`
            : `HEALTHCHECK &{[${ins.test.map(goQuote).join(' ')}] ${q(ins.interval)} ${q(ins.timeout)} ${q(ins.startPeriod)} ${q(ins.startInterval)} ${goQuoteRune(ins.retries ?? 0)}}`;
        const { interval, timeout, startPeriod, startInterval, retries } = ins;
        return assignDefined({
          startLine: common.startLine,
          endLine: common.endLine,
          original: common.original,
          kind: 'healthcheck' as const,
          test: ins.test,
          createdBy,
          emptyLayer: true,
        }, { interval, timeout, startPeriod, startInterval, retries });
      }
      case 'run':
        return this.dispatchRun(info, state, ins, common);
      case 'copy':
      case 'add':
        return this.dispatchFileCopy(info, state, ins, common);
    }
  }

  private dispatchArg(state: StageState, ins: Extract<Instruction, { kind: 'arg' }>, common: SourceRange & { original: string }): PlanStep {
    const args: { name: string; value?: string }[] = [];
    for (const arg of ins.args) {
      this.lintSecret('ARG', arg.key, ins);
      let value: string | undefined;
      const override = this.buildArgs.get(arg.key);
      if (override !== undefined) value = override;
      else if (arg.default !== undefined) value = this.expandInStage(arg.default, state, ins);
      else value = this.globalScope.get(arg.key);
      if (value !== undefined && !NON_ENV_ARGS.has(arg.key)) state.env.set(arg.key, value);
      state.args.push({ name: arg.key, value });
      args.push(value === undefined ? { name: arg.key } : { name: arg.key, value });
    }
    const createdBy = `ARG ${args.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`)).join(' ')}`;
    return {
      startLine: common.startLine,
      endLine: common.endLine,
      original: common.original,
      kind: 'arg',
      args,
      createdBy,
      emptyLayer: true,
    };
  }

  private dispatchRun(info: StageInfo, state: StageState, ins: RunInstruction, common: SourceRange & { original: string }): RunStep {
    const network = ins.network ?? 'default';
    if (network !== 'default' && network !== 'none' && network !== 'host') {
      throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, withSuggestion(`unsupported network mode ${goQuote(network)}`, network, ['default', 'none', 'host'], true));
    }
    const security = ins.security ?? 'sandbox';
    if (security !== 'sandbox' && security !== 'insecure') {
      throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, withSuggestion(`security ${goQuote(security)} is not valid`, security, ['sandbox', 'insecure'], true));
    }

    const sources = info.sources.get(ins) ?? [];
    const mounts = ins.mounts.map((value, i) => this.resolveMount(value, sources[i] ?? { kind: 'context' }, state, ins));

    let args = ins.args;
    const scripts: PlanInlineFile[] = [];
    if (ins.heredocs.length > 0) {
      const single = args.length === 1 ? parseHeredocWord(args[0]!) : undefined;
      const first = ins.heredocs[0]!;
      if (single !== undefined) {
        const data = first.chomp ? chompHeredocContent(first.data) : first.data;
        if (data.startsWith('#!')) {
          // A script with an interpreter line runs as a file, mounted at /dev/pipes/<name>.
          scripts.push({ name: first.name, content: data });
          args = [`/dev/pipes/${first.name}`];
        } else {
          args = [data];
        }
      } else {
        // Several heredocs, or a command around one: hand the whole text to the shell.
        let full = args[0] ?? '';
        for (const doc of ins.heredocs) full += `\n${doc.data}${doc.name}`;
        args = [full];
      }
    }
    const argv = ins.shellForm ? [...state.shell, args.join(' ')] : args;
    const env: string[] = [];
    for (const [k, v] of state.env) env.push(`${k}=${v}`);
    const createdBy = `RUN ${runCommandString(argv, state)} # buildkit`;
    return {
      startLine: common.startLine,
      endLine: common.endLine,
      original: common.original,
      kind: 'run',
      argv,
      shellForm: ins.shellForm,
      env,
      mounts,
      scripts,
      network,
      security,
      createdBy,
      emptyLayer: false,
    };
  }

  private resolveMount(value: string, source: PlanSource, state: StageState, ins: RunInstruction): PlanMount {
    // Every field value is expanded with the stage's variables before it is interpreted.
    const spec = parseMount(value, (w) => this.expandInStage(w, state, ins));
    const resolveTarget = (target: string): string => {
      const joined = target.startsWith('/') ? cleanPath(target) : cleanPath(`/${state.workdir}/${target}`);
      if (joined === '/') throw new DockerfileError(DockerfileErrorCode.INVALID_MOUNT, `invalid mount target ${goQuote(joined)}`);
      return joined;
    };
    const sourcePath = cleanPath(`/${spec.source ?? ''}`);
    switch (spec.type) {
      case 'bind':
        return { type: 'bind', target: resolveTarget(spec.target ?? ''), source: sourcePath, from: source, readOnly: spec.readOnly };
      case 'cache': {
        const target = resolveTarget(spec.target ?? '');
        return {
          type: 'cache',
          target,
          id: spec.id !== undefined && spec.id !== '' ? spec.id : cleanPath(spec.target ?? ''),
          sharing: spec.sharing ?? 'shared',
          source: sourcePath,
          from: source.kind === 'context' ? { kind: 'scratch' } : source,
          readOnly: spec.readOnly,
          uid: spec.uid ?? 0,
          gid: spec.gid ?? 0,
          mode: spec.mode ?? 0o755,
        };
      }
      case 'tmpfs':
        return { type: 'tmpfs', target: resolveTarget(spec.target ?? ''), ...(spec.sizeLimit === undefined ? {} : { sizeLimit: spec.sizeLimit }) };
      case 'secret': {
        let id = spec.source !== undefined && spec.source !== '' ? spec.source : (spec.id ?? '');
        if (id === '') {
          if (spec.target === undefined || spec.target === '') {
            if (spec.env === undefined) throw new DockerfileError(DockerfileErrorCode.INVALID_MOUNT, 'one of source, target required');
            id = spec.env;
          } else {
            id = basename(spec.target);
          }
        }
        const explicitTarget = spec.target !== undefined && spec.target !== '';
        const target = explicitTarget ? spec.target! : spec.env === undefined ? `/run/secrets/${basename(id)}` : undefined;
        return {
          type: 'secret',
          id,
          ...(target === undefined ? {} : { target }),
          ...(spec.env === undefined ? {} : { env: spec.env }),
          required: spec.required,
          uid: spec.uid ?? 0,
          gid: spec.gid ?? 0,
          mode: spec.mode ?? 0o400,
        };
      }
      case 'ssh':
        return {
          type: 'ssh',
          id: spec.id !== undefined && spec.id !== '' ? spec.id : 'default',
          ...(spec.target === undefined || spec.target === '' ? {} : { target: spec.target }),
          required: spec.required,
          uid: spec.uid ?? 0,
          gid: spec.gid ?? 0,
          mode: spec.mode ?? 0o600,
        };
    }
  }

  private dispatchFileCopy(info: StageInfo, state: StageState, ins: CopyInstruction | AddInstruction, common: SourceRange & { original: string }): CopyStep | AddStep {
    const word = (w: string): string => this.expandInStage(w, state, ins);
    const sources = ins.sources.map(word);
    const dest = word(ins.dest);
    const chown = ins.chown === undefined ? undefined : word(ins.chown);
    const chmod = ins.chmod === undefined ? undefined : word(ins.chmod);
    if (chmod !== undefined) validateChmod(chmod);
    const exclude = ins.exclude.map(word);
    const contents = ins.contents.map((c) => ({
      name: c.name,
      // Heredoc bodies expand variables but keep quotes, with a backslash escape whatever `# escape=` says.
      content: c.expand ? this.expandInStage(c.data, state, ins, false, { skipProcessQuotes: true }) : c.data,
    }));
    let destPath = cleanPath(dest.startsWith('/') ? dest : `/${state.workdir}/${dest}`);
    if ((dest === '.' || dest === '' || dest.endsWith('/')) && !destPath.endsWith('/')) destPath += '/';
    const createdBy = `${ins.kind.toUpperCase()} ${[...sources, ...contents.map((c) => `<<${c.name}`), dest].join(' ')} # buildkit`;
    const optional = { chown: chown === '' ? undefined : chown, chmod: chmod === '' ? undefined : chmod };
    if (ins.kind === 'copy') {
      const url = sources.find(isHttpUrl);
      if (url !== undefined) throw new DockerfileError(DockerfileErrorCode.INVALID_ARGUMENTS, `source can't be a URL for COPY: ${url}`);
      const from: PlanSource = info.sources.get(ins)?.[0] ?? { kind: 'context' };
      const copy: CopyStep = {
        startLine: common.startLine,
        endLine: common.endLine,
        original: common.original,
        kind: 'copy',
        sources,
        contents,
        dest,
        destPath,
        link: ins.link,
        exclude,
        from,
        parents: ins.parents,
        createdBy,
        emptyLayer: false,
      };
      return assignDefined(copy, optional);
    }
    const checksum = ins.checksum === undefined ? undefined : word(ins.checksum);
    if (checksum !== undefined && checksum !== '') {
      const local = sources.find((s) => !isHttpUrl(s) && !isGitSource(s));
      if (local !== undefined || sources.length === 0) {
        throw new DockerfileError(DockerfileErrorCode.INVALID_FLAG, "checksum can't be specified for non-HTTP(S) sources");
      }
    }
    const add: AddStep = {
      startLine: common.startLine,
      endLine: common.endLine,
      original: common.original,
      kind: 'add',
      sources,
      contents,
      dest,
      destPath,
      link: ins.link,
      exclude,
      keepGitDir: ins.keepGitDir,
      createdBy,
      emptyLayer: false,
    };
    return assignDefined(add, { ...optional, checksum: checksum === '' ? undefined : checksum, unpack: ins.unpack });
  }

  // --- expansion, lint ------------------------------------------------------------------------

  private expandInStage(w: string, state: StageState, at: Instruction, split: true): string[];
  private expandInStage(w: string, state: StageState, at: Instruction, split?: false, extra?: { skipProcessQuotes: boolean }): string;
  private expandInStage(w: string, state: StageState, at: Instruction, split = false, extra?: { skipProcessQuotes: boolean }): string | string[] {
    const r = this.expand(w, state.env, at, {
      lint: state.envKnown,
      args: state.args,
      skipProcessQuotes: extra?.skipProcessQuotes ?? false,
      escape: extra === undefined ? this.df.escapeToken : '\\',
    });
    return split ? [...r.words] : r.value;
  }

  private expand(
    w: string,
    env: Env,
    at: SourceRange,
    opts: { lint: boolean; args?: readonly { name: string }[]; skipProcessQuotes?: boolean; escape?: EscapeToken },
  ): { value: string; words: readonly string[]; unresolved: readonly string[] } {
    let r;
    try {
      r = expandShell(w, env, { escapeToken: opts.escape ?? this.df.escapeToken, skipProcessQuotes: opts.skipProcessQuotes ?? false });
    } catch (err) {
      throw err instanceof DockerfileError ? err.locate(at, this.file) : err;
    }
    if (opts.lint && r.unresolved.length > 0) {
      const declared = new Set((opts.args ?? []).map((a) => a.name));
      for (const name of r.unresolved) {
        if (declared.has(name) || NON_ENV_ARGS.has(name)) continue;
        const match = suggest(name, env.keys(), true);
        this.warn('UndefinedVar', `Usage of undefined variable '$${name}'${match === undefined ? '' : ` (did you mean $${match}?)`}`, at);
      }
    }
    return r;
  }

  private lintSecret(instruction: string, key: string, at: SourceRange): void {
    if (SECRET_NAME.test(key) && !PUBLIC_NAME.test(key)) {
      this.warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${instruction} ${goQuote(key)})`, at);
    }
  }

  private warn(rule: string, message: string, at: SourceRange): void {
    this.warnings.push(warning(rule, message, { startLine: at.startLine, endLine: at.endLine }, this.file));
  }

  private error(code: DockerfileErrorCode, message: string, at: SourceRange): DockerfileError {
    return new DockerfileError(code, message, { file: this.file, startLine: at.startLine, endLine: at.endLine });
  }

  /** Applies `# check=skip=...;error=true`: drops skipped rules, and fails if errors are asked for. */
  private finishWarnings(): DockerfileWarning[] {
    const seen = new Set<string>();
    const kept = this.warnings.filter((w) => {
      if (this.skipRules === 'all' || this.skipRules.has(w.rule)) return false;
      const key = `${w.rule}\0${w.startLine}\0${w.message}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    if (this.lintErrors && kept.length > 0) {
      const first = kept[0]!;
      const more = kept.length > 1 ? ` (and ${kept.length - 1} more)` : '';
      throw new DockerfileError(DockerfileErrorCode.LINT, `lint violation ${first.rule}: ${first.message}${more}`, {
        file: this.file,
        startLine: first.startLine,
        endLine: first.endLine,
      });
    }
    return kept;
  }
}

function parseCheckDirective(value: string | undefined): { skip: Set<string> | 'all'; error: boolean } {
  let skip: Set<string> | 'all' = new Set();
  let error = false;
  if (value === undefined) return { skip, error };
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    const key = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
    const v = eq < 0 ? '' : part.slice(eq + 1).trim();
    if (key === 'skip') {
      const rules = v.split(',').map((r) => r.trim()).filter((r) => r !== '');
      skip = rules.some((r) => r.toLowerCase() === 'all') ? 'all' : new Set(rules);
    } else if (key === 'error') {
      error = v.toLowerCase() === 'true';
    }
  }
  return { skip, error };
}

/** BuildKit's history line for RUN: the ARGs in scope (`|2 A=1 B=2`), then the command. */
function runCommandString(argv: readonly string[], state: StageState): string {
  const entries: string[] = [];
  const index = new Map<string, number>();
  for (const arg of state.args) {
    const value = state.env.get(arg.name) ?? arg.value ?? '';
    const entry = `${arg.name}=${value}`;
    const at = index.get(arg.name);
    if (at === undefined) {
      index.set(arg.name, entries.length);
      entries.push(entry);
    } else {
      entries[at] = entry;
    }
  }
  const prefix = entries.length > 0 ? [`|${entries.length}`, ...entries] : [];
  return [...prefix, ...argv].join(' ');
}

function goQuoteList(list: readonly string[]): string {
  return `[${list.map(goQuote).join(' ')}]`;
}

function goQuoteRune(n: number): string {
  if (n >= 0x20 && n < 0x7f) return n === 0x27 ? `'\\''` : n === 0x5c ? `'\\\\'` : `'${String.fromCharCode(n)}'`;
  if (n < 0x100) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  return `'\\u${n.toString(16).padStart(4, '0')}'`;
}

/** Go's `time.Duration.String` for the values HEALTHCHECK takes. */
function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns < 1e3) return `${ns}ns`;
  if (ns < 1e6) return `${trimFraction(ns / 1e3)}µs`;
  if (ns < 1e9) return `${trimFraction(ns / 1e6)}ms`;
  let rest = ns / 1e9;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  return `${h > 0 ? `${h}h` : ''}${h > 0 || m > 0 ? `${m}m` : ''}${trimFraction(Math.round(rest * 1e9) / 1e9)}s`;
}

function trimFraction(n: number): string {
  return String(n);
}

function basename(p: string): string {
  const cleaned = cleanPath(p);
  if (cleaned === '/') return '/';
  return cleaned.slice(cleaned.lastIndexOf('/') + 1);
}

/** WORKDIR: relative paths resolve against the current working directory. */
function normalizeWorkdir(current: string, path: string): string {
  return cleanPath(path.startsWith('/') ? path : `/${current}/${path}`);
}

