import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  dockerConfigCredentials,
  retryPolicies,
  type RegistryClientOptions,
  type RegistryEventListener,
} from '../../index.js';
import { UsageError, type CliIO } from '../command.js';

/**
 * The registry options the registry commands share (resolve, copy, login, logout), and the
 * argument parsing they all use: node:util's strict `parseArgs`, with its errors turned into
 * usage errors.
 */

export const REGISTRY_FLAGS_USAGE = `Registry options:
  --authfile FILE            Docker config.json with credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)
  --insecure-registry HOST   allow plain HTTP and unverified TLS for HOST (repeatable); loopback hosts may always use HTTP
  --ca-file FILE             trust this PEM CA bundle for TLS registries
  --cert-file FILE           client certificate (PEM) for registries that require one
  --key-file FILE            its private key (PEM)
  --retry POLICY             default (exponential backoff, 5 attempts), gitpod (4 attempts, linear from 500 ms) or none`;

export const REGISTRY_FLAG_OPTIONS = {
  authfile: { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  'ca-file': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  retry: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

export interface RegistryFlagValues {
  readonly authfile?: string | undefined;
  readonly 'insecure-registry'?: string[] | undefined;
  readonly 'ca-file'?: string | undefined;
  readonly 'cert-file'?: string | undefined;
  readonly 'key-file'?: string | undefined;
  readonly retry?: string | undefined;
}

/** `parseArgs` in strict mode, with its errors as `UsageError`s naming the command. */
export function parseCommandLine<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  args: readonly string[],
  options: T,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
    return { values: parsed.values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: parsed.positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message.split('\n')[0]}; see "stevedore ${command} --help"`);
  }
}

/** The path of the Docker config file the commands read and write. */
export function authFile(values: RegistryFlagValues, io: CliIO): string | undefined {
  return values.authfile === undefined ? undefined : resolve(io.cwd, values.authfile);
}

/** Client options from the shared flags. */
export function registryOptions(values: RegistryFlagValues, io: CliIO, onEvent?: RegistryEventListener): RegistryClientOptions {
  const policyName = values.retry ?? 'default';
  if (!Object.hasOwn(retryPolicies, policyName)) throw new UsageError(`--retry must be default, gitpod or none, not ${JSON.stringify(policyName)}`);
  const certFile = values['cert-file'];
  const keyFile = values['key-file'];
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--cert-file and --key-file go together');
  const caFile = values['ca-file'];
  const path = authFile(values, io);
  return {
    credentials: dockerConfigCredentials({ env: io.env, ...(path === undefined ? {} : { path }) }),
    insecureRegistries: values['insecure-registry'] ?? [],
    retryPolicy: retryPolicies[policyName as keyof typeof retryPolicies],
    ...(caFile === undefined && certFile === undefined
      ? {}
      : {
          tls: {
            ...(caFile === undefined ? {} : { caFile: resolve(io.cwd, caFile) }),
            ...(certFile === undefined ? {} : { certFile: resolve(io.cwd, certFile) }),
            ...(keyFile === undefined ? {} : { keyFile: resolve(io.cwd, keyFile) }),
          },
        }),
    ...(onEvent === undefined ? {} : { onEvent }),
  };
}

/**
 * A registry host as the user typed it for login/logout: `host[:port]`, a URL
 * (`https://host/v1/`), or Docker Hub's names; returned as the registry name references use.
 */
export function registryHostArgument(input: string | undefined): string {
  if (input === undefined || input === '') return 'docker.io';
  let host = input;
  const scheme = host.indexOf('://');
  if (scheme >= 0) host = host.slice(scheme + 3);
  const slash = host.indexOf('/');
  if (slash >= 0) host = host.slice(0, slash);
  if (host === '' || /\s/.test(host)) throw new UsageError(`invalid registry ${JSON.stringify(input)}`);
  const lower = host.toLowerCase();
  if (lower === 'index.docker.io' || lower === 'registry-1.docker.io' || lower === 'docker.io' || lower === 'registry.hub.docker.com') return 'docker.io';
  return host;
}
