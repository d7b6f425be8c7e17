import { DEFAULT_PATH_ENV, type PlanStep } from '../dockerfile/index.js';
import type { ContainerConfig, HistoryEntry, ImageConfig, Platform } from '../oci/index.js';

/**
 * The image config a stage builds, step by step, as BuildKit's Dockerfile frontend writes it:
 * the fields it knows (unknown fields of a base config, such as Docker's `container_config`,
 * are not carried over, as BuildKit's typed config drops them), `Env` with `PATH` always set,
 * and one history entry per instruction with BuildKit's `created_by` and comment. Unlike
 * BuildKit, `ArgsEscaped` is never written for Linux images (it is a Windows-only field; the
 * image-spec calls it undefined elsewhere), and `created` is `SOURCE_DATE_EPOCH` (default 0).
 */

export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** The runtime fields BuildKit's `DockerOCIImageConfig` holds. */
const CONTAINER_FIELDS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'] as const;

/** The config of a scratch stage (BuildKit's `emptyImage`): PATH set, working directory `/`. */
export function scratchImageConfig(platform: Platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform['os.version'] === undefined ? {} : { 'os.version': platform['os.version'] }),
    ...(platform['os.features'] === undefined ? {} : { 'os.features': [...platform['os.features']] }),
    ...(platform.variant === undefined ? {} : { variant: platform.variant }),
    config: { Env: [`PATH=${DEFAULT_PATH_ENV}`], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}

/** A base image's config as a stage starts from it: known fields only, PATH ensured. */
export function baseImageConfig(base: ImageConfig): ImageConfig {
  const source = base.config ?? {};
  const config: Record<string, unknown> = {};
  for (const field of CONTAINER_FIELDS) {
    const value = source[field];
    if (value !== undefined && value !== null) config[field] = structuredClone(value);
  }
  const env = (config.Env as string[] | undefined) ?? [];
  if (!env.some((e) => envKey(e) === 'PATH')) config.Env = [...env, `PATH=${DEFAULT_PATH_ENV}`];
  if (base.os === 'linux') delete config.ArgsEscaped;
  return {
    ...(base.created === undefined ? {} : { created: base.created }),
    ...(base.author === undefined ? {} : { author: base.author }),
    architecture: base.architecture,
    os: base.os,
    ...(base['os.version'] === undefined ? {} : { 'os.version': base['os.version'] }),
    ...(base['os.features'] === undefined ? {} : { 'os.features': [...base['os.features']] }),
    ...(base.variant === undefined ? {} : { variant: base.variant }),
    config: config as ContainerConfig,
    rootfs: { type: 'layers', diff_ids: [...base.rootfs.diff_ids] },
    history: (base.history ?? []).map((h) => ({ ...h })),
  };
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** BuildKit's `addEnv`: replaces the variable in place, or appends it. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const at = out.findIndex((e) => envKey(e) === key);
  if (at >= 0) out[at] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/**
 * Applies a step that only changes the config (everything but RUN, COPY, ADD; WORKDIR's config
 * part). Returns the new container config; the caller adds history.
 */
export function applyConfigStep(config: ContainerConfig, step: PlanStep): { config: ContainerConfig; author?: string } {
  const next: Record<string, unknown> = { ...config };
  switch (step.kind) {
    case 'env': {
      let env = (config.Env as string[] | undefined) ?? [];
      for (const [k, v] of step.env) env = setEnv(env, k, v);
      next.Env = env;
      break;
    }
    case 'label':
      next.Labels = { ...(config.Labels ?? {}), ...Object.fromEntries(step.labels) };
      break;
    case 'workdir':
      next.WorkingDir = step.workdir;
      break;
    case 'user':
      next.User = step.user;
      break;
    case 'expose':
      next.ExposedPorts = { ...(config.ExposedPorts ?? {}), ...Object.fromEntries(step.ports.map((p) => [p, {}])) };
      break;
    case 'volume':
      next.Volumes = { ...(config.Volumes ?? {}), ...Object.fromEntries(step.volumes.map((v) => [v, {}])) };
      break;
    case 'stopsignal':
      next.StopSignal = step.signal;
      break;
    case 'cmd':
      next.Cmd = [...step.argv];
      break;
    case 'entrypoint':
      if (step.argv === null || step.argv.length === 0) delete next.Entrypoint;
      else next.Entrypoint = [...step.argv];
      // A new ENTRYPOINT drops a CMD inherited from the base (unless this stage set CMD first).
      if (step.resetsCmd) delete next.Cmd;
      break;
    case 'healthcheck': {
      const hc: Record<string, unknown> = { Test: [...step.test] };
      // Go's `omitempty`: zero durations and retries are not written.
      if (step.interval) hc.Interval = step.interval;
      if (step.timeout) hc.Timeout = step.timeout;
      if (step.startPeriod) hc.StartPeriod = step.startPeriod;
      if (step.startInterval) hc.StartInterval = step.startInterval;
      if (step.retries) hc.Retries = step.retries;
      next.Healthcheck = hc;
      break;
    }
    case 'shell':
      next.Shell = [...step.shell];
      break;
    case 'onbuild':
      next.OnBuild = [...(config.OnBuild ?? []), step.expression];
      break;
    case 'maintainer':
      return { config: next as ContainerConfig, author: step.maintainer };
    case 'arg':
    case 'run':
    case 'copy':
    case 'add':
      break;
  }
  return { config: next as ContainerConfig };
}

/** The history entry of a step, as BuildKit writes it. */
export function historyEntry(step: PlanStep, created: string, emptyLayer: boolean): HistoryEntry {
  return { created, created_by: step.createdBy, comment: HISTORY_COMMENT, ...(emptyLayer ? { empty_layer: true } : {}) };
}

/** Drops empty optional fields the way Go's `omitempty` would, so configs serialise stably. */
export function finalizeConfig(config: ImageConfig, created: string): ImageConfig {
  const container: Record<string, unknown> = {};
  for (const field of CONTAINER_FIELDS) {
    const value = config.config?.[field];
    if (value === undefined || value === null) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    if (value === '' || value === false) continue;
    container[field] = value;
  }
  if (config.os === 'linux') delete container.ArgsEscaped;
  return {
    created,
    ...(config.author === undefined ? {} : { author: config.author }),
    architecture: config.architecture,
    os: config.os,
    ...(config['os.version'] === undefined ? {} : { 'os.version': config['os.version'] }),
    ...(config['os.features'] === undefined ? {} : { 'os.features': config['os.features'] }),
    ...(config.variant === undefined ? {} : { variant: config.variant }),
    config: container as ContainerConfig,
    rootfs: { type: 'layers', diff_ids: [...config.rootfs.diff_ids] },
    history: config.history ?? [],
  };
}
