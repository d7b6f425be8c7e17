import type { Writable } from 'node:stream';
import {
  copyGraph,
  fetchManifest,
  formatPlatform,
  formatReference,
  isIndexMediaType,
  parsePlatform,
  selectManifest,
  DEFAULT_PLATFORM,
  PlatformNotFoundError,
  RegistryClientPool,
  type CopyEvent,
  type RegistryEvent,
} from '../../index.js';
import { LiveDisplay, formatBytes, shortDigest } from '../display.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { describeEndpoint, mountSource, openEndpoint, parseEndpoint, resolveEndpoint } from './endpoints.js';
import { parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryOptions, type RegistryFlagValues } from './registry-flags.js';

const USAGE = `Usage: stevedore copy SRC DST [--all] [--platform os/arch[/variant]] [--progress MODE]

Copies an image between registries and OCI layout directories, like "skopeo copy": blobs
first (skipping what the destination has, mounting across repositories of one registry),
manifests last, every digest verified. Prints DST pinned by digest.

SRC and DST are each:
  oci:DIR[:NAME]           an OCI image layout directory (NAME: the org.opencontainers.image.ref.name)
  [docker://]REF           a registry reference (alpine, host:5000/app:tag, ghcr.io/x/y@sha256:...)

  --all                    copy a multi-platform index whole (default: only the --platform image)
  --platform P             the platform to take from an index (default linux/amd64)
  --progress MODE          auto (a live display on a terminal, plain lines otherwise), plain, json
                           (one JSON event per line), or none; progress goes to standard error
  --concurrency N          blobs moved at once (default 8)

${REGISTRY_FLAGS_USAGE}
`;

type ProgressMode = 'auto' | 'plain' | 'json' | 'none';


export const copyCommand: Command = {
  name: 'copy',
  summary: 'copy an image between registries and OCI layouts',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('copy', args, {
      ...REGISTRY_FLAG_OPTIONS,
      all: { type: 'boolean' },
      platform: { type: 'string' },
      progress: { type: 'string' },
      concurrency: { type: 'string' },
    });
    if (positionals.length !== 2) throw new UsageError('copy takes a source and a destination');
    const source = parseEndpoint(positionals[0]!, io.cwd, 'source');
    const destination = parseEndpoint(positionals[1]!, io.cwd, 'destination');
    const mode = (values.progress ?? 'auto') as ProgressMode;
    if (!['auto', 'plain', 'json', 'none'].includes(mode)) throw new UsageError(`--progress must be auto, plain, json or none, not ${JSON.stringify(mode)}`);
    if (values.all === true && values.platform !== undefined) throw new UsageError('--all and --platform exclude each other');
    const platform = values.platform === undefined ? DEFAULT_PLATFORM : parsePlatform(values.platform as string);
    const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
    if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)) {
      throw new UsageError('--concurrency must be an integer from 1 to 64');
    }

    const progress = new Progress(io.stderr, mode === 'auto' ? ((io.stderr as { isTTY?: boolean }).isTTY === true ? 'tty' : 'plain') : mode);
    const pool = new RegistryClientPool(registryOptions(values as RegistryFlagValues, io, (e) => progress.registry(e)));
    const signal = io.signal === undefined ? {} : { signal: io.signal };
    try {
      const src = await openEndpoint(source, pool, false);
      let root = await resolveEndpoint(source, src, signal);
      if (isIndexMediaType(root.mediaType) && values.all !== true) {
        const index = await fetchManifest(src, root, signal);
        if (index.kind !== 'index') throw new UsageError('the source index is not an index');
        const chosen = selectManifest(index.value, platform);
        if (chosen === undefined) {
          const available = index.value.manifests.flatMap((m) => (m.platform === undefined ? [] : [formatPlatform(m.platform)]));
          throw new PlatformNotFoundError(describeEndpoint(source), formatPlatform(platform), available);
        }
        root = chosen;
      }
      if (destination.kind === 'registry' && destination.reference.digest !== undefined && destination.reference.digest !== root.digest) {
        throw new UsageError(`the destination names digest ${destination.reference.digest}, but the source is ${root.digest}`);
      }

      const dst = await openEndpoint(destination, pool, true);
      const mountFrom = mountSource(source, destination);
      // copyGraph hands the registry re-openable content: an upload cut off mid-stream restarts
      // inside the copy, under the retry policy.
      const result = await copyGraph(src, dst, root, {
        ...signal,
        onEvent: (e) => progress.copy(e),
        ...(concurrency === undefined ? {} : { concurrency }),
        ...(mountFrom === undefined ? {} : { mountFrom: () => mountFrom }),
      });

      let pinned: string;
      if (destination.kind === 'registry') {
        const tag = destination.reference.tag;
        if (tag !== undefined && destination.reference.digest === undefined) await dst.tag(root, tag, signal);
        pinned = formatReference({ registry: destination.reference.registry, repository: destination.reference.repository, digest: root.digest });
      } else {
        const tag = destination.tag ?? (source.kind === 'layout' ? source.tag : source.reference.tag) ?? 'latest';
        await dst.tag(root, tag, signal);
        pinned = `oci:${destination.dir}:${tag}@${root.digest}`;
      }
      progress.done(result);
      io.stdout.write(`${pinned}\n`);
      return 0;
    } finally {
      progress.stop();
      await pool.close();
    }
  },
};

interface Transfer {
  readonly digest: string;
  transferred: number;
  readonly size: number;
}

/**
 * Renders copy and registry events: a live display on a terminal (one line per blob in flight,
 * redrawn at most ten times a second), plain lines, or JSON lines.
 */
class Progress {
  readonly #mode: 'tty' | 'plain' | 'json' | 'none';
  readonly #active = new Map<string, Transfer>();
  readonly #display: LiveDisplay;

  constructor(out: Writable, mode: 'tty' | 'plain' | 'json' | 'none') {
    this.#mode = mode;
    this.#display = new LiveDisplay(out, mode === 'tty', () => this.#live());
  }

  copy(event: CopyEvent): void {
    const { descriptor } = event;
    if (this.#mode === 'json') {
      this.#display.line(JSON.stringify({ source: 'copy', type: event.type, digest: descriptor.digest, mediaType: descriptor.mediaType, size: descriptor.size }));
      return;
    }
    if (event.type === 'started') {
      this.#active.set(descriptor.digest, { digest: descriptor.digest, transferred: 0, size: descriptor.size });
      return;
    }
    this.#active.delete(descriptor.digest);
    if (this.#mode === 'none') return;
    const verb = event.type === 'copied' ? 'copied ' : event.type === 'skipped' ? 'exists ' : 'mounted';
    this.#display.line(`${verb} ${shortDigest(descriptor.digest)} ${formatBytes(descriptor.size).padStart(10)}  ${descriptor.mediaType}`);
  }

  registry(event: RegistryEvent): void {
    if (this.#mode === 'json') {
      this.#display.line(JSON.stringify({ source: 'registry', ...event }));
      return;
    }
    if (event.type === 'blob-progress') {
      const transfer = this.#active.get(event.digest);
      if (transfer) transfer.transferred = event.transferred;
      else this.#active.set(event.digest, { digest: event.digest, transferred: event.transferred, size: event.size });
    } else if (event.type === 'retry' && this.#mode !== 'none') {
      this.#display.line(`retry   ${event.operation} (attempt ${event.attempt}/${event.maxAttempts} failed: ${event.cause.message}); again in ${event.delayMs} ms`);
    } else if (event.type === 'upload-resumed' && this.#mode !== 'none') {
      this.#display.line(`resume  ${shortDigest(event.digest)} from byte ${event.offset}`);
    }
  }

  done(result: { copied: number; mounted: number; skipped: number; bytes: number }): void {
    if (this.#mode === 'json') {
      this.#display.line(JSON.stringify({ source: 'copy', type: 'done', ...result }));
    } else if (this.#mode !== 'none') {
      this.#display.line(`done: ${result.copied} copied (${formatBytes(result.bytes)}), ${result.mounted} mounted, ${result.skipped} already there`);
    }
  }

  stop(): void {
    this.#display.stop();
  }

  /** The live lines: what is in flight. */
  #live(): readonly string[] {
    return [...this.#active.values()].slice(0, 12).map((t) => {
      const ratio = t.size > 0 ? Math.min(1, t.transferred / t.size) : 1;
      const bar = '#'.repeat(Math.round(ratio * 20)).padEnd(20, '.');
      return `${shortDigest(t.digest)} [${bar}] ${formatBytes(t.transferred)} / ${formatBytes(t.size)}`;
    });
  }
}


