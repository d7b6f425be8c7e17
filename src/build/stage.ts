import { AbortedError, StevedoreError, throwIfAborted } from '../errors.js';
import type { PlanStage, PlanStep } from '../dockerfile/index.js';
import { parsePlatform, type ContainerConfig, type ImageConfig, type Platform } from '../oci/index.js';
import { applyConfigStep, baseImageConfig, historyEntry, scratchImageConfig } from './config.js';
import { RootfsNeeded, CopyPlan } from './copy.js';
import { planCopy, prepareCopy } from './copy-step.js';
import { BuildStepError, type StepReference } from './errors.js';
import type { LayerRecord, StepIdentity } from './events.js';
import { buildStepLayer, convertLayerDescriptor, unpackStepLayer } from './layer.js';
import { numericOwner, ownerNeedsNames, parseOwnerSpec, resolveOwner, type Owner } from './modes.js';
import { StageRootfs, type StageLayer } from './rootfs.js';
import { executeRun } from './run-step.js';
import type { BuildRuntime, StageResult, StepRecord } from './runtime.js';

/**
 * One stage of the plan, step by step: its base (scratch, an image, or another stage's result),
 * then each instruction applied to its config and, for RUN, COPY, ADD and WORKDIR, a new layer.
 * The root filesystem stays lazy (see rootfs.ts) unless a step of the stage needs files: that is
 * decided before the first step when it can be (RUN, a --chown by name...), or when a step finds
 * out (a single file whose destination may be a directory), in which case the base is unpacked
 * and the step planned again.
 *
 * WORKDIR is BuildKit's `Mkdir(path, 0755, parents, owner USER)`, a layer of its own (empty when
 * the directory exists). On scratch, or once the base is unpacked, that is exactly what it
 * writes. On a lazy image base whether the directory exists is not known: the layer then leaves
 * the directory out (an existing one stays as the base has it, as BuildKit would leave it), and a
 * missing one is created by the first step that writes into it, or by the runtime when a
 * container starts there; an image whose Dockerfile sets a WORKDIR on an image base and never
 * writes into it therefore lacks the empty directory BuildKit's would hold. A stage with RUN, or
 * with USER set to someone else, unpacks its base first and creates it exactly.
 */

interface StageState {
  config: ImageConfig;
  rootfs: StageRootfs;
  readonly platform: Platform;
}

export async function executeStage(rt: BuildRuntime, stage: PlanStage): Promise<StageResult> {
  const name = stage.name ?? `stage-${stage.index}`;
  const started = Date.now();
  const baseName = stage.base.kind === 'scratch' ? 'scratch' : stage.base.kind === 'image' ? stage.base.ref : `stage ${stage.base.index}`;
  rt.emit({ type: 'stage-started', time: started, stage: stage.index, stageName: name, base: baseName });
  const fromStep: StepReference = { file: rt.file, startLine: stage.startLine, endLine: stage.endLine, stage: name, instruction: stage.original };
  const state = await located(fromStep, () => initialState(rt, stage));

  const reason = rootfsNeededUpFront(rt, stage, state.config.config ?? {});
  if (reason !== undefined && !state.rootfs.materialized) await located(fromStep, () => materialize(rt, stage, name, state.rootfs, reason));

  const records: StepRecord[] = [];
  for (const [position, step] of stage.steps.entries()) {
    throwIfAborted(rt.signal);
    const identity: StepIdentity = {
      stage: stage.index,
      stageName: name,
      step: position,
      steps: stage.steps.length,
      instruction: step.original,
      file: rt.file,
      startLine: step.startLine,
      endLine: step.endLine,
    };
    const began = Date.now();
    rt.emit({ type: 'step-started', time: began, ...identity });
    const reference: StepReference = { file: rt.file, startLine: step.startLine, endLine: step.endLine, stage: name, instruction: step.original };
    const layer = await located(reference, () => executeStep(rt, stage, name, state, step, identity));
    const durationMs = Date.now() - began;
    rt.emit({ type: 'step-finished', time: Date.now(), ...identity, durationMs, ...(layer === undefined ? {} : { layer }) });
    records.push({ ...identity, durationMs, emptyLayer: layer === undefined, ...(layer === undefined ? {} : { layer }) });
  }
  rt.emit({ type: 'stage-finished', time: Date.now(), stage: stage.index, stageName: name, durationMs: Date.now() - started });
  return { index: stage.index, name, platform: state.platform, config: state.config, rootfs: state.rootfs, steps: records };
}

/** Runs `fn`, turning a failure into a `BuildStepError` at `step` (aborts and located errors pass). */
async function located<T>(step: StepReference, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AbortedError || err instanceof BuildStepError) throw err;
    if (err instanceof RootfsNeeded) throw new BuildStepError(step, new StevedoreError('INTERNAL', err.message, { cause: err }));
    throw new BuildStepError(step, err);
  }
}

async function initialState(rt: BuildRuntime, stage: PlanStage): Promise<StageState> {
  const platform = parsePlatform(stage.platform);
  const base = stage.base;
  let state: StageState;
  if (base.kind === 'scratch') {
    state = { config: scratchImageConfig(platform), rootfs: StageRootfs.empty(), platform };
  } else if (base.kind === 'stage') {
    const parent = await rt.stage(base.index);
    state = { config: structuredClone(parent.config), rootfs: parent.rootfs.fork(), platform: parent.platform };
  } else {
    const image = await rt.images.resolve(base.ref, base.reference, platform);
    rt.emit({ type: 'base-resolved', time: Date.now(), reference: image.name, digest: image.descriptor.digest, platform: stage.platform });
    const layers: StageLayer[] = image.manifest.layers.map((desc, i) => {
      const diffId = image.config.rootfs.diff_ids[i];
      if (diffId === undefined) throw new StevedoreError('INVALID_BASE_IMAGE', `base image ${image.name} has more layers than diffIDs`);
      rt.content.addRemote(desc.digest, { fetcher: image.fetcher, registry: image.registry?.host, repository: image.registry?.repository });
      return { diffId, origin: 'base', blob: { descriptor: convertLayerDescriptor(desc, rt.family), fetcher: image.fetcher } };
    });
    if (image.config.rootfs.diff_ids.length !== layers.length) throw new StevedoreError('INVALID_BASE_IMAGE', `base image ${image.name} has ${image.config.rootfs.diff_ids.length} diffIDs for ${layers.length} layers`);
    state = { config: baseImageConfig(image.config), rootfs: StageRootfs.ofImage(layers), platform };
  }
  // The base's ONBUILD triggers run as the stage's first steps (the plan put them there), and
  // are not passed on.
  if (stage.steps.some((s) => s.onbuild === true) && state.config.config?.OnBuild !== undefined) {
    const { OnBuild: _consumed, ...rest } = state.config.config;
    state.config = { ...state.config, config: rest };
  }
  return state;
}

/**
 * Why the stage needs its files from the start, if it does: knowing it before the first layer
 * makes every layer exactly what BuildKit writes (no directory left to the base).
 */
function rootfsNeededUpFront(rt: BuildRuntime, stage: PlanStage, config: ContainerConfig): string | undefined {
  if (!rt.lazy) return 'eager base layers were asked for';
  // The files of a stage the image does not include are what later stages read: its layers are
  // only ever unpacked, never archived.
  if (!rt.isOutputStage(stage.index)) return 'later stages read its files';
  let user = config.User ?? '';
  for (const step of stage.steps) {
    if (step.kind === 'run') return `RUN at line ${step.startLine}`;
    if (step.kind === 'user') user = step.user;
    if ((step.kind === 'copy' || step.kind === 'add') && step.chown !== undefined && !step.link && !isRootSpec(step.chown)) {
      return `${step.kind.toUpperCase()} --chown at line ${step.startLine}`;
    }
    if (step.kind === 'workdir' && step.workdir !== '/' && user !== '' && !isRootSpec(user)) {
      return `WORKDIR at line ${step.startLine} creates directories owned by USER ${user}`;
    }
  }
  return undefined;
}

/** Whether an owner spec is root (`0`, `0:0`, `root`, `root:root`); a malformed one is not (its step reports it). */
function isRootSpec(spec: string): boolean {
  try {
    const parsed = parseOwnerSpec(spec);
    const userIsRoot = 'id' in parsed.user ? parsed.user.id === 0 : parsed.user.name === 'root';
    const groupIsRoot = parsed.group === undefined || ('id' in parsed.group ? parsed.group.id === 0 : parsed.group.name === 'root');
    return userIsRoot && groupIsRoot;
  } catch {
    return false;
  }
}

async function materialize(rt: BuildRuntime, stage: PlanStage, name: string, rootfs: StageRootfs, reason: string): Promise<void> {
  const began = Date.now();
  const layers = await rootfs.materialize(rt.cache, rt.signal);
  rt.emit({ type: 'rootfs-materialized', time: Date.now(), stage: stage.index, stageName: name, reason, layers, durationMs: Date.now() - began });
}

/** One step; returns the layer it added, if any. */
async function executeStep(rt: BuildRuntime, stage: PlanStage, name: string, state: StageState, step: PlanStep, identity: StepIdentity): Promise<LayerRecord | undefined> {
  switch (step.kind) {
    case 'run': {
      const outcome = await executeRun(rt, step, { config: state.config.config ?? {}, rootfs: state.rootfs, platform: state.platform, output: rt.isOutputStage(stage.index) }, identity);
      const dir = outcome.dir ?? (await rt.cache.layerDir(outcome.layer, rt.signal));
      state.rootfs.addUnpackedLayer(outcome.layer, dir);
      addLayerToConfig(rt, state, step, outcome.layer);
      return outcome.record;
    }
    case 'copy':
    case 'add': {
      const prepared = await prepareCopy(rt, step, { rootfs: state.rootfs, platform: state.platform });
      const plan = await withRootfs(rt, stage, name, state, () => planCopy(rt, step, { rootfs: state.rootfs, platform: state.platform }, prepared));
      return commitPlan(rt, state, step, plan, identity);
    }
    case 'workdir': {
      state.config = { ...state.config, config: applyConfigStep(state.config.config ?? {}, step).config };
      if (step.workdir === '/') {
        pushHistory(rt, state, step, true);
        return undefined;
      }
      // BuildKit's `Mkdir(wd, 0755, WithParents, WithUser(USER))`: an existing directory is kept.
      const plan = await withRootfs(rt, stage, name, state, async () => {
        const owner = await workdirOwner(rt, state);
        const plan = new CopyPlan({ view: state.rootfs.view(), lazy: !state.rootfs.known, epoch: rt.epoch, timestamps: rt.timestamps });
        await plan.mkdirAll(step.workdir, owner);
        return plan;
      });
      return commitPlan(rt, state, step, plan, identity);
    }
    case 'onbuild': {
      // Recorded for images built FROM this one; BuildKit writes no history entry for it.
      state.config = { ...state.config, config: applyConfigStep(state.config.config ?? {}, step).config };
      return undefined;
    }
    default: {
      const applied = applyConfigStep(state.config.config ?? {}, step);
      state.config = { ...state.config, config: applied.config, ...(applied.author === undefined ? {} : { author: applied.author }) };
      pushHistory(rt, state, step, true);
      return undefined;
    }
  }
}

/** Runs a planning function; on `RootfsNeeded` unpacks the stage's base and runs it again. */
async function withRootfs<T>(rt: BuildRuntime, stage: PlanStage, name: string, state: StageState, plan: () => Promise<T>): Promise<T> {
  try {
    return await plan();
  } catch (err) {
    if (!(err instanceof RootfsNeeded) || state.rootfs.known) throw err;
    await materialize(rt, stage, name, state.rootfs, err.reason);
    return plan();
  }
}

async function workdirOwner(rt: BuildRuntime, state: StageState): Promise<Owner | undefined> {
  const user = state.config.config?.User ?? '';
  if (user === '') return undefined;
  const spec = parseOwnerSpec(user);
  if (!ownerNeedsNames(spec)) return numericOwner(spec);
  await state.rootfs.materialize(rt.cache, rt.signal);
  return resolveOwner(user, state.rootfs.fileTree());
}

async function commitPlan(rt: BuildRuntime, state: StageState, step: PlanStep, plan: CopyPlan, identity: StepIdentity): Promise<LayerRecord> {
  await plan.includeParents();
  if (!rt.isOutputStage(identity.stage)) {
    const unpacked = await unpackStepLayer(rt, plan.layerSource());
    state.rootfs.addUnpackedLayer(unpacked.layer, unpacked.dir);
    addLayerToConfig(rt, state, step, unpacked.layer);
    return unpacked.record;
  }
  const built = await buildStepLayer(rt, identity, plan.layerSource());
  state.rootfs.addLayer(built.layer, plan.nodes());
  addLayerToConfig(rt, state, step, built.layer);
  return built.record;
}

function addLayerToConfig(rt: BuildRuntime, state: StageState, step: PlanStep, layer: StageLayer): void {
  state.config = {
    ...state.config,
    rootfs: { type: 'layers', diff_ids: [...state.config.rootfs.diff_ids, layer.diffId] },
    history: [...(state.config.history ?? []), historyEntry(step, rt.created, false)],
  };
}

function pushHistory(rt: BuildRuntime, state: StageState, step: PlanStep, emptyLayer: boolean): void {
  state.config = { ...state.config, history: [...(state.config.history ?? []), historyEntry(step, rt.created, emptyLayer)] };
}
