// The build cache (internal to src/build): step keys, the local store, the registry cache, the
// stat index of context files, and the per-build view of them the stages use.
export { cacheKey, chainState, firstDifference, inputDigest, type CacheInput } from './key.js';
export { CACHE_ARTIFACT_TYPE, CACHE_ENTRY_MEDIA_TYPE, parseCacheEntry, type CacheEntry, type CachedResult } from './entry.js';
export { LocalCacheStore, type PruneResult } from './local.js';
export { RegistryCache, type ExportItem, type RemoteHit } from './remote.js';
export { StatIndex } from './stat-index.js';
export { StepCache, type CacheStatus, type Lookup, type StepCacheOptions, type StepPosition } from './step-cache.js';
export { argsInScope, bindMounts, canonicalInstruction, planInputs, previousLayerInput, rootInputs, rootState, stableJson } from './inputs.js';
