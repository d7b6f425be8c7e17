import { isIP } from 'node:net';

/** The registry name references use for Docker Hub. */
export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API actually lives. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';
/** The key Docker's config.json and credential helpers use for Docker Hub. */
export const DOCKER_HUB_CONFIG_KEY = 'https://index.docker.io/v1/';

const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** Whether a registry host (with or without a port) names Docker Hub. */
export function isDockerHub(registry: string): boolean {
  return DOCKER_HUB_ALIASES.has(hostName(registry).toLowerCase());
}

/** The host and port to send API requests to for a registry name from a reference. */
export function apiHost(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_API_HOST : registry;
}

/** The name part of `host[:port]`, brackets of an IPv6 literal removed. */
export function hostName(registry: string): string {
  if (registry.startsWith('[')) {
    const end = registry.indexOf(']');
    return end < 0 ? registry : registry.slice(1, end);
  }
  const colon = registry.lastIndexOf(':');
  // A bare IPv6 address (several colons, no brackets) has no port part.
  if (colon >= 0 && registry.indexOf(':') === colon) return registry.slice(0, colon);
  return registry;
}

/**
 * Loopback registries (`localhost`, 127.0.0.0/8, ::1) may be spoken to over plain HTTP, as Docker
 * does: HTTPS is tried first, then HTTP.
 */
export function isLoopbackHost(registry: string): boolean {
  const name = hostName(registry).toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  if (isIP(name) === 6) return name === '::1' || name === '0:0:0:0:0:0:0:1';
  return false;
}

/**
 * Converts a config.json key (`https://host/v1/`, `http://host`, `host`) to its `host[:port]`
 * part, as docker/cli's `ConvertToHostname` does.
 */
export function configKeyHost(key: string): string {
  let rest = key;
  const scheme = rest.indexOf('://');
  if (scheme >= 0) rest = rest.slice(scheme + 3);
  const slash = rest.indexOf('/');
  return slash < 0 ? rest : rest.slice(0, slash);
}

/** The key Docker writes into config.json for a registry host. */
export function dockerConfigKey(registry: string): string {
  return isDockerHub(registry) ? DOCKER_HUB_CONFIG_KEY : registry;
}
