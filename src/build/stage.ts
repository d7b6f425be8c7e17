import { randomUUID } from 'node:crypto';
import { AbortedError, StevedoreError, throwIfAborted } from '../errors.js';
import type { PlanStage, PlanStep } from '../dockerfile/index.js';
import { formatPlatform, parsePlatform, type ContainerConfig, type ImageConfig, type Platform } from '../oci/index.js';
import {
  bindMounts,
  chainState,
  planInputs,
  previousLayerInput,
  rootInputs,
  rootState,
  type CacheEntry,
  type CacheInput,
  type CacheStatus,
  type Lookup,
  type StepPosition,
} from './cache/index.js';
import { applyConfigStep, baseImageConfig, historyEntry, scratchImageConfig } from './config.js';
import { RootfsNeeded, CopyPlan } from './copy.js';
import { bindCacheInputs, copyCacheInputs, planCopy, prepareCopy } from './copy-step.js';
import { BuildStepError, type StepReference } from './errors.js';
import type { LayerRecord, StepIdentity } from './events.js';
import { buildStepLayer, convertLayerDescriptor, unpackedLayerId, unpackStepLayer } from './layer.js';
import { numericOwner, ownerNeedsNames, parseOwnerSpec, resolveOwner, type Owner } from './modes.js';
import { StageRootfs, type LayerDir, type StageLayer } from './rootfs.js';
import { executeRun } from './run-step.js';
import type { BuildRuntime, StageResult, StepRecord } from './runtime.js';
import type { NodeInfo } from './view.js';

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
 *
 * Every step is looked up in the build cache first (see cache/). A hit applies the cached
 * result: its layer is added as it is (no command run, nothing archived or unpacked), and the
 * config is updated as the instruction says. The base of a stage that needs its files is
 * unpacked only before the first step that misses, so a build whose steps all hit fetches
 * nothing; and a missing step is always planned with the knowledge of the root the build that
 * made the cached steps below it had (`StageRootfs.owed`), so it writes the same layer.
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

  // A stage the image does not include keeps its layers unpacked only: it is unpacked first, as
  // its cached layers are directories. An image stage unpacks before its first miss, if any.
  const output = rt.isOutputStage(stage.index);
  let needed = rootfsNeededUpFront(rt, stage, state.config.config ?? {});
  if (needed !== undefined && !output && !state.rootfs.materialized) await located(fromStep, () => materialize(rt, stage, name, state.rootfs, needed!));
  if (!output) needed = undefined;

  const root = await located(fromStep, () => stageRootInputs(rt, stage, state));
  let chain: CacheInput[] = root;
  let layerState = rootState(root);
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
    const context: StepContext = { stage, name, state, step, identity, chain, needed };
    const done = await located(reference, () => cachedStep(rt, context));
    if (done.materialized) needed = undefined;
    if (done.layer !== undefined) {
      layerState = chainState(done.key, done.layer.diffId);
      chain = [previousLayerInput(layerState)];
    }
    const durationMs = Date.now() - began;
    const { layer, cache } = done;
    rt.emit({ type: 'step-finished', time: Date.now(), ...identity, durationMs, ...(layer === undefined ? {} : { layer }), cache });
    records.push({ ...identity, durationMs, emptyLayer: layer === undefined, ...(layer === undefined ? {} : { layer }), cached: cache.hit, cache });
  }
  rt.emit({ type: 'stage-finished', time: Date.now(), stage: stage.index, stageName: name, durationMs: Date.now() - started });
  return { index: stage.index, name, platform: state.platform, config: state.config, rootfs: state.rootfs, steps: records, cacheState: layerState };
}

/** The stage's base as cache inputs, with the build settings that decide every layer's bytes. */
async function stageRootInputs(rt: BuildRuntime, stage: PlanStage, state: StageState): Promise<CacheInput[]> {
  let base: CacheInput;
  if (stage.base.kind === 'scratch') base = { name: 'base', value: 'scratch' };
  else if (stage.base.kind === 'stage') {
    const parent = await rt.stage(stage.base.index);
    base = { name: 'base', value: `stage ${parent.cacheState}`, label: `base stage ${parent.name}` };
  } else {
    const image = await rt.images.resolve(stage.base.ref, stage.base.reference, state.platform);
    base = { name: 'base', value: `image ${image.descriptor.digest} ${formatPlatform(state.platform)}`, label: 'base image digest' };
  }
  return rootInputs({
    base,
    platform: state.platform,
    epoch: rt.epoch,
    timestamps: rt.timestamps,
    compression: rt.compression,
    compressionLevel: rt.compressionLevel,
    family: rt.family,
    lazy: rt.lazy,
    output: rt.isOutputStage(stage.index),
  });
}

interface StepContext {
  readonly stage: PlanStage;
  readonly name: string;
  readonly state: StageState;
  readonly step: PlanStep;
  readonly identity: StepIdentity;
  /** The chain inputs: the stage's root, or the state after its last layer. */
  readonly chain: readonly CacheInput[];
  /** Why the stage's files are needed before a step runs (unpacked before the first miss). */
  readonly needed: string | undefined;
}

/** What a step did. */
interface StepDone {
  readonly key: string;
  readonly layer?: LayerRecord | undefined;
  readonly cache: CacheStatus;
  /** Whether the stage's root was unpacked for it. */
  readonly materialized: boolean;
}

/** What executing a step made, with what its cache entry needs. */
interface StepOutcome {
  readonly record?: LayerRecord | undefined;
  readonly layer?: StageLayer | undefined;
  /** For COPY, ADD, WORKDIR: what the stage knows after the layer. */
  readonly nodes?: readonly (readonly [string, NodeInfo])[] | undefined;
  /** For a layer of a stage the image does not include: where it is unpacked. */
  readonly dir?: LayerDir | undefined;
}

/** A step through the cache: a hit is applied, a miss runs (once per key in the process) and is recorded. */
async function cachedStep(rt: BuildRuntime, ctx: StepContext): Promise<StepDone> {
  const { stage, state, step, identity } = ctx;
  const position: StepPosition = { stage: stage.index, stageName: ctx.name, step: identity.step };
  const inputs: CacheInput[] = [...ctx.chain, ...planInputs(stage, identity.step, step, state.config.config ?? {})];
  let uncacheable: string | undefined;
  if (step.kind === 'copy' || step.kind === 'add') {
    const files = await copyCacheInputs(rt, step, { rootfs: state.rootfs, platform: state.platform }, rt.stepCache.hashFile);
    if (typeof files === 'string') uncacheable = files;
    else inputs.push(...files);
  }
  for (const mount of bindMounts(step)) inputs.push(...(await bindCacheInputs(rt, mount, state.platform, rt.stepCache.hashFile)));

  if (uncacheable !== undefined) {
    // A fresh key: the steps above it in the stage cannot be found again either.
    const key = rt.stepCache.key([...inputs, { name: 'uncacheable', value: randomUUID() }]);
    const run = await runMissed(rt, ctx, key);
    return { key, layer: run.outcome.record, cache: { hit: false, reason: uncacheable }, materialized: run.materialized };
  }
  const key = rt.stepCache.key(inputs);
  return rt.stepCache.flight(key, async () => {
    const found = await rt.stepCache.lookup(key, position, inputs);
    let reason: string;
    if (found.hit) {
      const applied = await applyHit(rt, ctx, found);
      if (applied !== undefined) {
        await rt.stepCache.used(position, inputs);
        rt.stepCache.exportLater(found.entry, rt.content);
        return { key, layer: applied.layer, cache: { hit: true }, materialized: false };
      }
      reason = 'the cached layer was removed from the cache meanwhile';
    } else {
      reason = found.reason;
    }
    const run = await runMissed(rt, ctx, key);
    const entry = await entryOf(rt, key, ctx, run.outcome);
    if (entry !== undefined) {
      const blob = entry.result.kind === 'blob' ? { descriptor: entry.result.descriptor, path: rt.store.blobPath(entry.result.descriptor.digest) } : undefined;
      await rt.stepCache.record(position, inputs, entry, blob);
      rt.stepCache.exportLater(entry, rt.content);
    }
    return { key, layer: run.outcome.record, cache: { hit: false, reason }, materialized: run.materialized };
  });
}

/** Runs a step that missed, unpacking the stage's files first when it must (see the module comment). */
async function runMissed(rt: BuildRuntime, ctx: StepContext, key: string): Promise<{ outcome: StepOutcome; materialized: boolean }> {
  // Only steps that write a layer look at the files (a config change never needs them).
  const writesLayer = ctx.step.kind === 'run' || ctx.step.kind === 'copy' || ctx.step.kind === 'add' || ctx.step.kind === 'workdir';
  if (!writesLayer) return { outcome: await executeStep(rt, ctx.stage, ctx.name, ctx.state, ctx.step, ctx.identity, key), materialized: false };
  const reason = ctx.needed ?? ctx.state.rootfs.owed;
  let materialized = false;
  if (reason !== undefined && !ctx.state.rootfs.materialized) {
    await materialize(rt, ctx.stage, ctx.name, ctx.state.rootfs, reason);
    materialized = true;
  }
  const outcome = await executeStep(rt, ctx.stage, ctx.name, ctx.state, ctx.step, ctx.identity, key);
  return { outcome, materialized: materialized || ctx.needed !== undefined };
}

/** The cache entry of a step that ran; undefined when its result cannot be kept. */
async function entryOf(rt: BuildRuntime, key: string, ctx: StepContext, outcome: StepOutcome): Promise<CacheEntry | undefined> {
  const rootKnown = ctx.state.rootfs.known;
  const { layer, record } = outcome;
  if (layer === undefined || record === undefined) return { v: 1, key, result: { kind: 'config' }, rootKnown };
  if (layer.blob !== undefined && rt.isOutputStage(ctx.stage.index)) {
    const nodes = outcome.nodes === undefined ? undefined : outcome.nodes.map(([path, node]) => [path, { ...node }] as [string, NodeInfo]);
    return {
      v: 1,
      key,
      result: { kind: 'blob', descriptor: layer.blob.descriptor, diffId: layer.diffId, uncompressedSize: record.uncompressedSize, ...(nodes === undefined ? {} : { nodes }) },
      rootKnown,
    };
  }
  const dir = outcome.dir;
  if (dir === undefined || !(await rt.cache.existingLayerDir(layer.diffId))) return undefined;
  const opaque = dir.opaque instanceof Set ? [...dir.opaque] : { xattr: (dir.opaque as { xattr: 'user' | 'trusted' }).xattr };
  return { v: 1, key, result: { kind: 'unpacked', diffId: layer.diffId, uncompressedSize: record.uncompressedSize, opaque }, rootKnown };
}

/** Applies a cache hit; undefined when its layer is gone (then the step runs). */
async function applyHit(rt: BuildRuntime, ctx: StepContext, found: Extract<Lookup, { hit: true }>): Promise<{ layer?: LayerRecord } | undefined> {
  const { state, step } = ctx;
  const result = found.entry.result;
  if (result.kind === 'config') {
    // Applying a config change is all the step ever does.
    await executeStep(rt, ctx.stage, ctx.name, state, step, ctx.identity, found.entry.key);
    return {};
  }
  let layer: StageLayer;
  if (result.kind === 'blob') {
    const descriptor = result.descriptor;
    if (found.from === 'local') {
      if (!(await rt.stepCache.local.pinBlob(descriptor, rt.store.blobPath(descriptor.digest)))) return undefined;
      layer = { diffId: result.diffId, origin: 'built', blob: { descriptor, fetcher: rt.store.layout } };
    } else {
      // Read from the cache repository only if a later step needs the files or an output lacks it.
      const repository = found.repository;
      rt.content.addRemote(descriptor.digest, { fetcher: repository, registry: repository.registry, repository: repository.name });
      layer = { diffId: result.diffId, origin: 'built', blob: { descriptor, fetcher: repository } };
    }
    state.rootfs.addCachedLayer(layer, result.nodes, found.entry.rootKnown);
  } else {
    const dir = await rt.cache.existingLayerDir(result.diffId);
    if (dir === undefined) return undefined;
    if (!state.rootfs.materialized) await materialize(rt, ctx.stage, ctx.name, state.rootfs, 'a cached layer of a stage kept unpacked goes on top');
    layer = { diffId: result.diffId, origin: 'built' };
    state.rootfs.addUnpackedLayer(layer, dir);
  }
  if (step.kind === 'workdir') state.config = { ...state.config, config: applyConfigStep(state.config.config ?? {}, step).config };
  addLayerToConfig(rt, state, step, layer);
  return {
    layer: {
      ...(layer.blob === undefined ? {} : { descriptor: layer.blob.descriptor }),
      diffId: result.diffId,
      uncompressedSize: result.uncompressedSize,
    },
  };
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

/** One step; returns the layer it added, if any. `key` is the step's cache key. */
async function executeStep(rt: BuildRuntime, stage: PlanStage, name: string, state: StageState, step: PlanStep, identity: StepIdentity, key: string): Promise<StepOutcome> {
  switch (step.kind) {
    case 'run': {
      const outcome = await executeRun(rt, step, { config: state.config.config ?? {}, rootfs: state.rootfs, platform: state.platform, output: rt.isOutputStage(stage.index) }, identity);
      let dir = outcome.dir ?? (await rt.cache.layerDir(outcome.layer, rt.signal));
      // A layer only kept unpacked goes into the rootfs cache, where a later build finds it.
      if (outcome.layer.blob === undefined) dir = await keepUnpacked(rt, outcome.layer, dir);
      state.rootfs.addUnpackedLayer(outcome.layer, dir);
      addLayerToConfig(rt, state, step, outcome.layer);
      return { record: outcome.record, layer: outcome.layer, dir };
    }
    case 'copy':
    case 'add': {
      const prepared = await prepareCopy(rt, step, { rootfs: state.rootfs, platform: state.platform });
      const plan = await withRootfs(rt, stage, name, state, () => planCopy(rt, step, { rootfs: state.rootfs, platform: state.platform }, prepared));
      return commitPlan(rt, state, step, plan, identity, key);
    }
    case 'workdir': {
      state.config = { ...state.config, config: applyConfigStep(state.config.config ?? {}, step).config };
      if (step.workdir === '/') {
        pushHistory(rt, state, step, true);
        return {};
      }
      // BuildKit's `Mkdir(wd, 0755, WithParents, WithUser(USER))`: an existing directory is kept.
      const plan = await withRootfs(rt, stage, name, state, async () => {
        const owner = await workdirOwner(rt, state);
        const plan = new CopyPlan({ view: state.rootfs.view(), lazy: !state.rootfs.known, epoch: rt.epoch, timestamps: rt.timestamps });
        await plan.mkdirAll(step.workdir, owner);
        return plan;
      });
      return commitPlan(rt, state, step, plan, identity, key);
    }
    case 'onbuild': {
      // Recorded for images built FROM this one; BuildKit writes no history entry for it.
      state.config = { ...state.config, config: applyConfigStep(state.config.config ?? {}, step).config };
      return {};
    }
    default: {
      const applied = applyConfigStep(state.config.config ?? {}, step);
      state.config = { ...state.config, config: applied.config, ...(applied.author === undefined ? {} : { author: applied.author }) };
      pushHistory(rt, state, step, true);
      return {};
    }
  }
}

/** Moves an unpacked layer into the rootfs cache (by diffID); where that cannot be done, it stays where it is. */
async function keepUnpacked(rt: BuildRuntime, layer: StageLayer, dir: LayerDir): Promise<LayerDir> {
  if (dir.path.startsWith(`${rt.cache.cacheDir}/layers/`)) return dir;
  const opaque = dir.opaque instanceof Set ? [...dir.opaque] : { xattr: (dir.opaque as { xattr: 'user' | 'trusted' }).xattr };
  try {
    return await rt.cache.adoptLayerDir(layer.diffId, dir.path, opaque);
  } catch {
    return dir; // another filesystem: kept for this build only
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

async function commitPlan(rt: BuildRuntime, state: StageState, step: PlanStep, plan: CopyPlan, identity: StepIdentity, key: string): Promise<StepOutcome> {
  await plan.includeParents();
  if (!rt.isOutputStage(identity.stage)) {
    const unpacked = await unpackStepLayer(rt, plan.layerSource(), unpackedLayerId(key));
    const dir = await keepUnpacked(rt, unpacked.layer, unpacked.dir);
    state.rootfs.addUnpackedLayer(unpacked.layer, dir);
    addLayerToConfig(rt, state, step, unpacked.layer);
    return { record: unpacked.record, layer: unpacked.layer, dir };
  }
  const built = await buildStepLayer(rt, identity, plan.layerSource());
  const nodes = [...plan.nodes()];
  state.rootfs.addLayer(built.layer, nodes);
  addLayerToConfig(rt, state, step, built.layer);
  return { record: built.record, layer: built.layer, nodes };
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
