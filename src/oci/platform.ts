import { endianness } from 'node:os';
import { InvalidPlatformError } from './errors.js';
import type { Descriptor, ImageIndex, Platform } from './schemas.js';

/**
 * Platforms (`os/arch[/variant]`) and the choice of a manifest from an index, following
 * containerd's `platforms` package: names are lowercased and aliases normalised
 * (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`), the default variant of a
 * family is made explicit or dropped so that equal platforms compare equal (`arm` → `arm/v7`,
 * `arm64/v8` → `arm64`, `amd64/v1` → `amd64`).
 */

/** What Stevedore builds for when nothing else is asked: `linux/amd64`. */
export const DEFAULT_PLATFORM: Platform = Object.freeze({ os: 'linux', architecture: 'amd64' });

const SPECIFIER_RE = /^[A-Za-z0-9_.-]+$/;

/**
 * Parses `os[(os.version)]/arch[/variant]` (containerd's syntax, e.g. `linux/arm64/v8`,
 * `linux/arm/v7`, `windows(10.0.17763)/amd64`) into a normalised platform.
 */
export function parsePlatform(input: string): Platform {
  const parts = input.split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new InvalidPlatformError(input, 'expected "os/architecture" or "os/architecture/variant", e.g. "linux/amd64"');
  }
  const [osPart = '', architecture = '', variant] = parts;
  const osMatch = /^([^()]*)(?:\(([^()]*)\))?$/.exec(osPart);
  const os = osMatch?.[1] ?? '';
  const osVersion = osMatch?.[2];
  for (const [label, value] of [['os', os], ['architecture', architecture], ['variant', variant]] as const) {
    if (value === undefined) continue;
    if (!SPECIFIER_RE.test(value)) {
      throw new InvalidPlatformError(input, `${label} ${JSON.stringify(value)} must be non-empty letters, digits, "_", "." or "-"`);
    }
  }
  if (osVersion !== undefined && osVersion === '') throw new InvalidPlatformError(input, 'empty os.version in parentheses');
  return normalizePlatform({
    os,
    architecture,
    ...(variant === undefined ? {} : { variant }),
    ...(osVersion === undefined ? {} : { 'os.version': osVersion }),
  });
}

/** `os/arch[/variant]`, the form `--platform` takes and `parsePlatform` reads back. */
export function formatPlatform(platform: Platform): string {
  const { os, architecture, variant } = platform;
  return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
}

/**
 * The canonical form of a platform: lowercase, aliases resolved, default variants made explicit
 * (32-bit arm) or dropped (arm64 v8, amd64 v1). Other fields (`os.version`, `os.features`, …)
 * are kept as they are.
 */
export function normalizePlatform(platform: Platform): Platform {
  const { os, architecture, variant, ...rest } = platform;
  const [arch, normalVariant] = normalizeArchitecture(architecture.toLowerCase(), (variant ?? '').toLowerCase());
  return {
    ...rest,
    os: normalizeOs(os),
    architecture: arch,
    ...(normalVariant === '' ? {} : { variant: normalVariant }),
  };
}

function normalizeOs(os: string): string {
  const lower = os.toLowerCase();
  return lower === 'macos' ? 'darwin' : lower;
}

/** containerd `normalizeArch`. */
function normalizeArchitecture(arch: string, variant: string): [string, string] {
  switch (arch) {
    case 'i386':
      return ['386', ''];
    case 'x86_64':
    case 'x86-64':
    case 'amd64':
      return ['amd64', variant === 'v1' ? '' : variant];
    case 'aarch64':
    case 'arm64':
      if (variant === '8' || variant === 'v8' || variant === 'v8.0') return ['arm64', ''];
      if (variant === '9' || variant === '9.0' || variant === 'v9.0') return ['arm64', 'v9'];
      return ['arm64', variant];
    case 'armhf':
      return ['arm', 'v7'];
    case 'armel':
      return ['arm', 'v6'];
    case 'arm':
      if (variant === '' || variant === '7') return ['arm', 'v7'];
      if (variant === '5' || variant === '6' || variant === '8') return ['arm', `v${variant}`];
      return ['arm', variant];
    default:
      return [arch, variant];
  }
}

const NODE_ARCH: Readonly<Record<string, string>> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

const NODE_OS: Readonly<Record<string, string>> = { win32: 'windows', sunos: 'solaris' };

/** The platform this process runs on, in OCI names (`linux/amd64`, `linux/arm/v7`, …). */
export function hostPlatform(): Platform {
  let architecture = NODE_ARCH[process.arch] ?? process.arch;
  if (process.arch === 'ppc64') architecture = endianness() === 'LE' ? 'ppc64le' : 'ppc64';
  // Node only knows the ARM level it was compiled for; that is also the level it can run.
  const armVersion = (process.config.variables as Record<string, unknown>)['arm_version'];
  const variant = process.arch === 'arm' && typeof armVersion === 'string' ? armVersion : undefined;
  return normalizePlatform({
    os: NODE_OS[process.platform] ?? process.platform,
    architecture,
    ...(variant === undefined ? {} : { variant }),
  });
}

/**
 * Whether an image for `have` is what `want` asks for: same OS and architecture after
 * normalisation, and the same variant when `want` names one (after normalisation, `linux/arm`
 * names `v7`; `linux/arm64` and `linux/amd64` name none and accept any variant).
 * `os.version` and feature lists are not compared.
 */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalizePlatform(want);
  const h = normalizePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  return w.variant === undefined || w.variant === h.variant;
}

/**
 * Picks the manifest for `want` from an index: among the entries whose platform matches, the
 * first one whose normalised variant is exactly the one wanted (so `linux/arm64` prefers an
 * `arm64` or `arm64/v8` entry over `arm64/v9`), else the first match. Entries without a platform
 * (and attestation manifests, whose platform is `unknown/unknown`) never match.
 */
export function selectManifest(index: ImageIndex, want: Platform): Descriptor | undefined {
  const w = normalizePlatform(want);
  let fallback: Descriptor | undefined;
  for (const desc of index.manifests) {
    if (desc.platform === undefined || !platformMatches(w, desc.platform)) continue;
    if (normalizePlatform(desc.platform).variant === w.variant) return desc;
    fallback ??= desc;
  }
  return fallback;
}

/**
 * mk3's `ResolveBaseImage` semantics, kept for images built by (and compared with) that
 * builder: the FIRST index entry whose `platform.os + "-" + platform.architecture` is exactly
 * `linux-amd64`. No normalisation, variants ignored, entries without a platform skipped.
 */
export function selectGitpodManifest(index: ImageIndex): Descriptor | undefined {
  return index.manifests.find((desc) => desc.platform !== undefined && `${desc.platform.os}-${desc.platform.architecture}` === 'linux-amd64');
}
