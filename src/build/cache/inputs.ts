import { formatPlatform, type ContainerConfig, type Platform } from '../../oci/index.js';
import type { PlanMount, PlanStage, PlanStep } from '../../dockerfile/index.js';
import { cacheKey, type CacheInput } from './key.js';

/**
 * The inputs of a step's cache key that come from the plan and the stage's state: where the step
 * starts from, the build args it sees, the instruction, and what RUN and WORKDIR take from the
 * config. (The files a COPY or ADD reads are added by `copyCacheInputs`, the content of RUN bind
 * mounts by the stage.)
 *
 * Which build args a step sees follows BuildKit: RUN sees every ARG of its stage in scope (they
 * are in its environment), other instructions only the ones their text uses. Config-only steps
 * (ENV, LABEL, USER...) produce no layer, so they are not links of the layer chain: what they
 * change reaches a later step's key through what that step uses (RUN's environment, user and
 * working directory; WORKDIR's user), and a LABEL change invalidates no layer.
 */

/** Settings of the build that decide the bytes of every layer, and the stage's base. */
export function rootInputs(settings: {
  readonly base: CacheInput;
  readonly platform: Platform;
  readonly epoch: number;
  readonly timestamps: string;
  readonly compression: string;
  readonly compressionLevel: number | undefined;
  readonly family: string;
  readonly lazy: boolean;
  readonly output: boolean;
}): CacheInput[] {
  return [
    settings.base,
    { name: 'platform', value: formatPlatform(settings.platform) },
    { name: 'SOURCE_DATE_EPOCH', value: String(settings.epoch) },
    { name: 'file timestamps', value: settings.timestamps },
    { name: 'layer compression', value: settings.output ? `${settings.compression} ${settings.compressionLevel ?? 'default'}` : 'none (stage not in the image)' },
    { name: 'media types', value: settings.family },
    { name: 'base layers', value: settings.lazy ? 'lazy' : 'eager' },
  ];
}

/** The chain input of a step above a layer of its stage: the state after that layer. */
export function previousLayerInput(state: string): CacheInput {
  return { name: 'previous layer', value: state };
}

/** The state of a stage's root from its root inputs (what `previous layer` is before any layer). */
export function rootState(inputs: readonly CacheInput[]): string {
  return cacheKey(inputs);
}

/** Build args in scope at step `position` of a stage: name → value, from its ARG steps. */
export function argsInScope(stage: PlanStage, position: number): Map<string, string> {
  const args = new Map<string, string>();
  for (const step of stage.steps.slice(0, position)) {
    if (step.kind !== 'arg') continue;
    for (const arg of step.args) args.set(arg.name, arg.value ?? '');
  }
  return args;
}

/** Whether instruction text refers to variable `name` (`$NAME` or `${NAME...}`). */
function uses(text: string, name: string): boolean {
  return new RegExp(`\\$(?:${name}\\b|\\{${name}\\b)`).test(text);
}

/** The inputs of one step from the plan and the config (see the module comment). */
export function planInputs(stage: PlanStage, position: number, step: PlanStep, config: ContainerConfig): CacheInput[] {
  const inputs: CacheInput[] = [];
  const args = argsInScope(stage, position);
  if (step.kind === 'arg') {
    for (const arg of step.args) inputs.push({ name: `build arg ${arg.name}`, value: arg.value ?? '' });
  } else {
    for (const [name, value] of args) {
      if (step.kind === 'run' || uses(step.original, name)) inputs.push({ name: `build arg ${name}`, value });
    }
  }
  inputs.push({ name: 'instruction', value: canonicalInstruction(step) });
  if (step.kind === 'run') {
    // The environment the command gets (base config, then the plan's ARG and ENV values).
    const env = new Map<string, string>();
    for (const entry of [...(config.Env ?? []), ...step.env]) {
      const eq = entry.indexOf('=');
      env.set(eq < 0 ? entry : entry.slice(0, eq), eq < 0 ? '' : entry.slice(eq + 1));
    }
    for (const [name, value] of [...env].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (!args.has(name)) inputs.push({ name: `env ${name}`, value });
    }
    inputs.push({ name: 'USER', value: config.User ?? '' });
    inputs.push({ name: 'WORKDIR', value: config.WorkingDir ?? '' });
  } else if (step.kind === 'workdir') {
    inputs.push({ name: 'USER', value: config.User ?? '' });
  }
  return inputs;
}

/**
 * The instruction as the engine executes it: every expanded field of the plan step, without
 * where it is written (line numbers, the raw text, the history text) and without RUN's
 * environment (an input of its own, variable by variable).
 */
export function canonicalInstruction(step: PlanStep): string {
  const { startLine: _s, endLine: _e, original: _o, createdBy: _c, ...rest } = step as PlanStep & Record<string, unknown>;
  const fields: Record<string, unknown> = { ...rest };
  if (step.kind === 'run') delete fields.env;
  return stableJson(fields);
}

/** JSON with object keys sorted, so the same value always gives the same text. */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}

/** The bind mounts of a RUN whose content is an input (a cache mount and a secret are by id only). */
export function bindMounts(step: PlanStep): Extract<PlanMount, { type: 'bind' }>[] {
  return step.kind === 'run' ? step.mounts.filter((m): m is Extract<PlanMount, { type: 'bind' }> => m.type === 'bind') : [];
}
