// The public surface of src/dockerfile: Dockerfile text → AST → typed instructions → BuildPlan,
// shell expansion and .dockerignore matching. Pure: no file or network I/O.
export { DockerfileError, DockerfileErrorCode, isDockerfileError } from './errors.js';
export type { DockerfileWarning, SourceLocation, SourceRange } from './errors.js';
export { dumpAst, parseDockerfile, parseHeredocWord, chompHeredocContent } from './parser.js';
export type { Heredoc, InstructionNode, ParseOptions, ParsedDockerfile, ParserDirective } from './parser.js';
export { expandShell, expandWord, expandWords } from './shell.js';
export type { Environment, EscapeToken, Expansion, ShellOptions } from './shell.js';
export { INSTRUCTION_NAMES, parseInstruction, parseStages } from './instructions.js';
export type {
  AddInstruction,
  ArgDefinition,
  ArgInstruction,
  CmdInstruction,
  CopyInstruction,
  DockerfileStages,
  EntrypointInstruction,
  EnvInstruction,
  EnvPair,
  ExposeInstruction,
  FromInstruction,
  HealthcheckInstruction,
  InlineFile,
  Instruction,
  KeyValue,
  LabelInstruction,
  MaintainerInstruction,
  OnbuildInstruction,
  RunInstruction,
  ShellInstruction,
  Stage,
  StopsignalInstruction,
  UserInstruction,
  VolumeInstruction,
  WorkdirInstruction,
} from './instructions.js';
export { parseGoDurationNanoseconds } from './duration.js';
export { parseMount } from './mounts.js';
export type { CacheSharing, MountSpec, MountType } from './mounts.js';
export { DEFAULT_PATH_ENV, DEFAULT_SHELL, PROXY_ARGS, parseOnbuildTriggers, planBuild } from './plan.js';
export type {
  AddStep,
  BaseImageConfig,
  BuildPlan,
  CopyStep,
  PlanBase,
  PlanInlineFile,
  PlanMount,
  PlanOptions,
  PlanSource,
  PlanStage,
  PlanStep,
  RunStep,
} from './plan.js';
export { DockerignoreError, DockerignoreMatcher, dockerignoreCandidates, dockerignoreMatcher, parseDockerignore } from './dockerignore.js';
export type { ContextDecision, IgnoreFileCandidate } from './dockerignore.js';
export { levenshtein, suggest } from './suggest.js';
export { cleanPath, goPatternRegExp } from './paths.js';
export { isGitSource, isHttpSource, isHttpUrl } from './sources.js';
