import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { defaultCacheDir } from '../build/index.js';
import { parseReference } from '../oci/index.js';
import { parseGoDuration } from './duration.js';
import { ServiceConfigError } from './errors.js';

/**
 * The service's configuration file (decision 10): mk3's JSON shape where it applies
 * (`orchestrator`, `refCache`, `server.services`) plus Stevedore's own keys under `stevedore`.
 * mk3-only keys that drive machinery Stevedore does not have (ws-manager, the builder image, a
 * Kubernetes pull secret, ECR, the unused subassembly bucket) are accepted and ignored with a
 * warning, so an existing mk3 config file starts; every other unknown key is an error.
 */

/** The parsed, validated configuration file (`stevedore serve --config FILE`). */
export interface ServiceConfig {
  readonly orchestrator: {
    /** e.g. `127.0.0.1:5000/base-images`: where Dockerfile builds are pushed (`<repo>:<hash>`). */
    readonly baseImageRepository: string;
    /** e.g. `127.0.0.1:5000/workspace-images`: where workspace images are tagged. */
    readonly workspaceImageRepository: string;
    /** A Docker config.json whose `auths` are the installation credentials (read, and re-read when it changes). */
    readonly pullSecretFile?: string | undefined;
  };
  readonly refCache?: { readonly intervalMs: number; readonly refs: readonly string[] } | undefined;
  readonly server: {
    /** gRPC listen address, `host:port` (port 0 = any free port; the api reports the bound one). */
    readonly grpc: { readonly address: string; readonly tls?: { readonly caPath?: string; readonly certPath: string; readonly keyPath: string } | undefined };
    /** HTTP listener for /metrics, /ready, /live, build logs, subassembly downloads. */
    readonly http: { readonly address: string; /** Base URL clients use to reach it (default `http://<bound address>`). */ readonly publicUrl?: string | undefined };
    /** Largest gRPC message accepted (default 100 MiB, as mk3). */
    readonly maxReceiveMessageBytes: number;
  };
  readonly stevedore: {
    readonly workDir: string;
    readonly cacheDir: string;
    /** Builds run at once; further builds wait (queued), none refused. */
    readonly concurrency: number;
    readonly runExecutor: 'auto' | 'namespace' | 'runc';
    /** Hosts spoken to over plain HTTP (and loopback always). */
    readonly insecureRegistries: readonly string[];
    /** How long finished builds (status, logs) stay queryable. */
    readonly buildRetentionMs: number;
    /** Log bytes kept per build (the oldest are dropped beyond it, with a marker line). */
    readonly maxLogBytes: number;
    /** Longest a build may run (mk3: 60 minutes). */
    readonly maxBuildMs: number;
    /** How long SIGTERM waits for running builds before cancelling them. */
    readonly shutdownGraceMs: number;
    readonly subassembly: {
      /** A registry repository where subassemblies are pushed as one-layer images. */
      readonly repository?: string | undefined;
      /** A local directory where subassembly files are stored (and served over HTTP). */
      readonly directory?: string | undefined;
    };
  };
}

/** The defaults of every Stevedore-specific key, in one place. */
export const SERVICE_CONFIG_DEFAULTS = Object.freeze({
  grpcAddress: '127.0.0.1:8080',
  /** mk3 serves Prometheus metrics on 9500. */
  httpAddress: '127.0.0.1:9500',
  maxReceiveMessageBytes: 100 * 1024 * 1024,
  workDir: join(tmpdir(), 'stevedore-service'),
  concurrency: 2,
  runExecutor: 'auto' as const,
  buildRetention: '1h',
  maxLogBytes: 4 * 1024 * 1024,
  /** mk3's `maxBuildRuntime`. */
  maxBuildDuration: '60m',
  shutdownGrace: '30s',
});

/** mk3 keys that configure machinery Stevedore replaces: accepted, ignored, warned about. */
const MK3_ONLY_ORCHESTRATOR_KEYS = ['wsman', 'builderImage', 'pullSecret', 'enableAdditionalECRAuth', 'subassemblyBucketName', 'subassemblyBucketPrefix'] as const;

const repositoryName = z.string().superRefine((value, ctx) => {
  const problem = repositoryProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

const address = z.string().superRefine((value, ctx) => {
  if (!/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/.test(value) || Number(value.slice(value.lastIndexOf(':') + 1)) > 65535) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected "host:port" (port 0-65535), got ${JSON.stringify(value)}` });
  }
});

const duration = z.string().superRefine((value, ctx) => {
  const ms = parseGoDuration(value);
  if (ms === undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a Go duration such as "6h0m0s" or "90s", got ${JSON.stringify(value)}` });
  else if (ms <= 0) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `must be longer than zero, got ${JSON.stringify(value)}` });
});

const nonEmpty = z.string().min(1, 'must not be empty');
const positiveInt = z.number().int('must be an integer').positive('must be greater than zero');

const tlsSchema = z.object({ caPath: z.string().optional(), certPath: nonEmpty, keyPath: nonEmpty }).strict();

const fileSchema = z
  .object({
    orchestrator: z
      .object({
        baseImageRepository: repositoryName,
        workspaceImageRepository: repositoryName,
        pullSecretFile: z.string().optional(),
        wsman: z.unknown().optional(),
        builderImage: z.unknown().optional(),
        pullSecret: z.unknown().optional(),
        enableAdditionalECRAuth: z.unknown().optional(),
        subassemblyBucketName: z.unknown().optional(),
        subassemblyBucketPrefix: z.unknown().optional(),
      })
      .strict(),
    refCache: z
      .object({
        interval: z.string().optional(),
        refs: z
          .array(
            z.string().superRefine((value, ctx) => {
              try {
                parseReference(value);
              } catch (err) {
                ctx.addIssue({ code: z.ZodIssueCode.custom, message: (err as Error).message });
              }
            }),
          )
          .optional(),
      })
      .strict()
      .optional(),
    server: z
      .object({
        services: z
          .object({
            grpc: z.object({ address, tls: tlsSchema.optional() }).strict().optional(),
            http: z.object({ address }).strict().optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .optional(),
    stevedore: z
      .object({
        workDir: nonEmpty.optional(),
        cacheDir: nonEmpty.optional(),
        concurrency: positiveInt.max(64, 'must be at most 64').optional(),
        runExecutor: z.enum(['auto', 'namespace', 'runc']).optional(),
        insecureRegistries: z.array(nonEmpty).optional(),
        buildRetention: duration.optional(),
        maxLogBytes: positiveInt.min(4096, 'must be at least 4096').optional(),
        maxBuildDuration: duration.optional(),
        shutdownGrace: z
          .string()
          .refine((v) => (parseGoDuration(v) ?? -1) >= 0, (v) => ({ message: `expected a Go duration such as "30s", got ${JSON.stringify(v)}` }))
          .optional(),
        publicUrl: z
          .string()
          .url('must be an absolute URL')
          .refine((v) => /^https?:/.test(v), 'must be an http:// or https:// URL')
          .optional(),
        maxReceiveMessageBytes: positiveInt.optional(),
        subassembly: z.object({ repository: repositoryName.optional(), directory: nonEmpty.optional() }).strict().optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

/**
 * Parses and validates the configuration; throws `ServiceConfigError` naming every bad key by its
 * path (`server.services.grpc.address: ...`). Returns warnings for mk3-only keys that are ignored.
 */
export function parseServiceConfig(json: unknown, options: { file?: string | undefined } = {}): { config: ServiceConfig; warnings: string[] } {
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    throw new ServiceConfigError(parsed.error.issues.map(formatIssue), { file: options.file });
  }
  const file = parsed.data;
  const warnings: string[] = [];
  for (const key of MK3_ONLY_ORCHESTRATOR_KEYS) {
    if (file.orchestrator[key] !== undefined) warnings.push(`orchestrator.${key} is an image-builder-mk3 setting Stevedore does not use; ignored`);
  }

  let refCache: ServiceConfig['refCache'];
  const interval = file.refCache?.interval;
  const refs = file.refCache?.refs ?? [];
  if (interval !== undefined && interval !== '') {
    const ms = parseGoDuration(interval);
    if (ms === undefined || ms <= 0) throw new ServiceConfigError([`refCache.interval: expected a Go duration such as "6h0m0s", got ${JSON.stringify(interval)}`], { file: options.file });
    // As mk3: the cache is on only when both an interval and refs are given.
    if (refs.length > 0) refCache = { intervalMs: ms, refs };
    else warnings.push('refCache.interval is set but refCache.refs is empty: the reference cache is off');
  } else if (refs.length > 0) {
    warnings.push('refCache.refs is set but refCache.interval is not: the reference cache is off');
  }

  const s = file.stevedore ?? {};
  const grpc = file.server?.services?.grpc;
  const config: ServiceConfig = {
    orchestrator: {
      baseImageRepository: file.orchestrator.baseImageRepository,
      workspaceImageRepository: file.orchestrator.workspaceImageRepository,
      pullSecretFile: file.orchestrator.pullSecretFile === '' ? undefined : file.orchestrator.pullSecretFile,
    },
    refCache,
    server: {
      grpc: {
        address: grpc?.address ?? SERVICE_CONFIG_DEFAULTS.grpcAddress,
        tls: grpc?.tls === undefined ? undefined : { ...(grpc.tls.caPath === undefined || grpc.tls.caPath === '' ? {} : { caPath: grpc.tls.caPath }), certPath: grpc.tls.certPath, keyPath: grpc.tls.keyPath },
      },
      http: { address: file.server?.services?.http?.address ?? SERVICE_CONFIG_DEFAULTS.httpAddress, publicUrl: s.publicUrl?.replace(/\/+$/, '') },
      maxReceiveMessageBytes: s.maxReceiveMessageBytes ?? SERVICE_CONFIG_DEFAULTS.maxReceiveMessageBytes,
    },
    stevedore: {
      workDir: s.workDir ?? SERVICE_CONFIG_DEFAULTS.workDir,
      cacheDir: s.cacheDir ?? defaultCacheDir(),
      concurrency: s.concurrency ?? SERVICE_CONFIG_DEFAULTS.concurrency,
      runExecutor: s.runExecutor ?? SERVICE_CONFIG_DEFAULTS.runExecutor,
      insecureRegistries: s.insecureRegistries ?? [],
      buildRetentionMs: parseGoDuration(s.buildRetention ?? SERVICE_CONFIG_DEFAULTS.buildRetention)!,
      maxLogBytes: s.maxLogBytes ?? SERVICE_CONFIG_DEFAULTS.maxLogBytes,
      maxBuildMs: parseGoDuration(s.maxBuildDuration ?? SERVICE_CONFIG_DEFAULTS.maxBuildDuration)!,
      shutdownGraceMs: parseGoDuration(s.shutdownGrace ?? SERVICE_CONFIG_DEFAULTS.shutdownGrace)!,
      subassembly: { repository: s.subassembly?.repository, directory: s.subassembly?.directory },
    },
  };
  return { config, warnings };
}

/** Reads and parses a configuration file (JSON). */
export async function loadServiceConfig(file: string): Promise<{ config: ServiceConfig; warnings: string[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ServiceConfigError([`cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`], { file, cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ServiceConfigError([`not valid JSON (${(err as Error).message})`], { file });
  }
  return parseServiceConfig(json, { file });
}

/** Why a string is not a repository name (`host[:port]/path`, no tag or digest), or undefined. */
export function repositoryProblem(value: string): string | undefined {
  if (value === '') return 'must not be empty';
  try {
    const ref = parseReference(value, { defaultTag: false });
    if (ref.tag !== undefined || ref.digest !== undefined) return `expected a repository without tag or digest, got ${JSON.stringify(value)}`;
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function formatIssue(issue: z.ZodIssue): string {
  const path = issue.path.join('.') || '(root)';
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const prefix = issue.path.length === 0 ? '' : `${issue.path.join('.')}.`;
    return issue.keys.map((key) => `${prefix}${key}: unknown key`).join('; ');
  }
  if (issue.code === z.ZodIssueCode.invalid_type && issue.received === 'undefined') return `${path}: required`;
  return `${path}: ${issue.message}`;
}
