import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pLimit, { type LimitFunction } from 'p-limit';
import { AbortedError } from '../errors.js';
import { digestHex, isDigest, parseReference, type Digest, type Reference } from '../oci/index.js';
import type { RegistryClientPool, RegistryRepository } from '../registry/index.js';
import { SubassemblyError, toSubassemblyError } from './errors.js';
import { pushSquashedImage, squashedImage } from './image.js';
import { encodeSubassemblyManifest, type SubassemblyManifest } from './manifest.js';
import { loadSource, resolveManifest, squashImage, type ResolvedManifest, type ResolvedSquashSource } from './squash.js';
import { SubassemblyDirectory, type SubassemblyPhase, type SubassemblyRecord } from './store.js';

export interface SubassemblyStatus {
  readonly phase: SubassemblyPhase;
  readonly message: string;
  /** Only when AVAILABLE. */
  readonly digest?: Digest | undefined;
  readonly url?: string | undefined;
  /** The SubassemblyManifest as JSON bytes; only when AVAILABLE. */
  readonly manifest?: Uint8Array | undefined;
}

export interface SubassemblyManagerOptions {
  readonly registries: RegistryClientPool;
  /** Local store of subassembly files + status records (survives restarts). At least one of directory/repository. */
  readonly directory?: string | undefined;
  /** `host/repo`: each subassembly also pushed as a one-layer OCI image tagged by the source digest's hex. */
  readonly repository?: string | undefined;
  readonly workDir: string;
  /** The download URL of a stored file: the api's HTTP endpoint (`<base>/subassemblies/<digest>`). Without it (or with no directory), the registry blob URL is used. */
  readonly urlFor?: ((digest: Digest) => string) | undefined;
  /** Jobs at once (default 2). */
  readonly concurrency?: number | undefined;
}

export const SUBASSEMBLY_DEFAULTS = {
  concurrency: 2,
  /** How long `close()` lets running jobs finish before cancelling them. */
  closeGraceMs: 30_000,
} as const;

/** One source image's subassembly, as the manager tracks it. */
interface Entry {
  readonly sourceDigest: Digest;
  readonly reference: string;
  phase: SubassemblyPhase;
  message: string;
  manifest?: SubassemblyManifest | undefined;
  manifestBytes?: Uint8Array | undefined;
  url?: string | undefined;
  /** The running job, while CREATING. */
  job?: Promise<void> | undefined;
}

/**
 * Tracks subassemblies by the digest of their source image: CREATING while a job squashes it,
 * then AVAILABLE (file digest, download URL, manifest) or UNAVAILABLE (the failure, in
 * `message`). `create` is idempotent: a reference resolving to a digest that is available or
 * being created returns that status and starts nothing; concurrent creates share one job. A
 * create of an UNAVAILABLE subassembly starts a new attempt.
 *
 * Storage: a local directory (`SubassemblyDirectory`: content-addressed, atomic writes) and/or a
 * registry repository, where each subassembly is pushed as a one-layer OCI image tagged with the
 * source digest's hex (blobs before the manifest). With a directory, status survives a restart:
 * `open` recomputes it from what is stored, and only a record whose file is present and hashes
 * to its digest is AVAILABLE. A job that was CREATING when the process stopped is reported
 * UNAVAILABLE with a message saying so (not restarted: a restart should not start work nobody is
 * waiting for); creating it again retries.
 */
export class SubassemblyManager {
  readonly #options: SubassemblyManagerOptions;
  readonly #directory: SubassemblyDirectory | undefined;
  readonly #repository: Reference | undefined;
  readonly #entries = new Map<Digest, Entry>();
  /** Digest-pinned references (immutable) → the source digest they resolved to. */
  readonly #aliases = new Map<string, Digest>();
  readonly #limit: LimitFunction;
  readonly #abort = new AbortController();
  #closed = false;

  private constructor(options: SubassemblyManagerOptions, directory: SubassemblyDirectory | undefined, repository: Reference | undefined) {
    this.#options = options;
    this.#directory = directory;
    this.#repository = repository;
    const concurrency = options.concurrency ?? SUBASSEMBLY_DEFAULTS.concurrency;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    this.#limit = pLimit(concurrency);
  }

  /** Opens the directory, recomputing status from what is stored (nothing half-written counts as available). */
  static async open(options: SubassemblyManagerOptions): Promise<SubassemblyManager> {
    if (options.directory === undefined && options.repository === undefined) {
      throw new TypeError('SubassemblyManager needs a directory, a repository, or both');
    }
    let repository: Reference | undefined;
    if (options.repository !== undefined) {
      const parsed = parseReference(options.repository);
      if (parsed.digest !== undefined || /[:@]/.test(options.repository.slice(options.repository.lastIndexOf('/') + 1))) {
        throw new TypeError(`the subassembly repository is host/repository, without tag or digest (got ${JSON.stringify(options.repository)})`);
      }
      repository = { registry: parsed.registry, repository: parsed.repository };
    }
    await mkdir(options.workDir, { recursive: true });
    const directory = options.directory === undefined ? undefined : await SubassemblyDirectory.open(options.directory);
    const manager = new SubassemblyManager(options, directory, repository);
    if (directory !== undefined) await manager.#recover(directory);
    return manager;
  }

  /** Validates and resolves now (bad ref → INVALID_REFERENCE; missing image → NOT_FOUND), then returns CREATING (or the known status) while a job runs. Idempotent by source digest. */
  async create(reference: string, signal?: AbortSignal): Promise<SubassemblyStatus> {
    this.#checkOpen();
    const source = await resolveManifest(reference, { registries: this.#options.registries, signal });
    this.#checkOpen();
    const digest = source.descriptor.digest;
    this.#remember(source.parsed, digest);
    const known = this.#entries.get(digest);
    if (known !== undefined && known.phase !== 'UNAVAILABLE') return statusOf(known);
    const entry: Entry = {
      sourceDigest: digest,
      reference: source.reference,
      phase: 'CREATING',
      message: `squashing ${source.reference} (${digest})`,
    };
    this.#entries.set(digest, entry);
    // Recorded before CREATING is answered: a job accepted and then lost to a crash is reported
    // (as interrupted) after a restart rather than forgotten.
    try {
      await this.#directory?.writeRecord(recordOf(entry));
    } catch (err) {
      entry.phase = 'UNAVAILABLE';
      entry.message = `cannot record the job in ${this.#directory!.root}: ${(err as Error).message}`;
      return statusOf(entry);
    }
    entry.job = this.#limit(() => this.#run(entry, source)).finally(() => {
      entry.job = undefined;
    });
    return statusOf(entry);
  }

  /** Current status; never created → SubassemblyError NOT_FOUND. */
  async get(reference: string, signal?: AbortSignal): Promise<SubassemblyStatus> {
    let parsed: Reference;
    try {
      parsed = parseReference(reference);
    } catch (err) {
      throw toSubassemblyError(err, `get ${reference}`, reference);
    }
    const pinned = parsed.digest === undefined ? undefined : (this.#aliases.get(aliasKey(parsed)) ?? parsed.digest);
    if (pinned !== undefined && this.#entries.has(pinned)) return statusOf(this.#entries.get(pinned)!);
    // A tag may have moved since: resolve it again.
    const source = await resolveManifest(reference, { registries: this.#options.registries, signal });
    const digest = source.descriptor.digest;
    this.#remember(source.parsed, digest);
    const entry = this.#entries.get(digest);
    if (entry === undefined) throw new SubassemblyError('NOT_FOUND', `no subassembly was created for ${source.reference} (${digest})`, { reference });
    return statusOf(entry);
  }

  /** For the HTTP download: a stored file by digest, with its size; undefined when not stored locally. `range` is inclusive. */
  async openFile(digest: Digest, range?: { start: number; end: number }): Promise<{ size: number; stream: NodeJS.ReadableStream } | undefined> {
    if (this.#directory === undefined || !isDigest(digest)) return undefined;
    return await this.#directory.openFile(digest, range);
  }

  /** Waits for running jobs (cancelling them after `graceMs`). */
  async close(graceMs: number = SUBASSEMBLY_DEFAULTS.closeGraceMs): Promise<void> {
    this.#closed = true;
    const running = (): Promise<void>[] => [...this.#entries.values()].flatMap((e) => (e.job === undefined ? [] : [e.job]));
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, graceMs));
    });
    await Promise.race([Promise.allSettled(running()), deadline]);
    clearTimeout(timer);
    this.#abort.abort(new AbortedError('the subassembly manager was closed'));
    await Promise.allSettled(running());
  }

  #checkOpen(): void {
    if (this.#closed) throw new SubassemblyError('UNAVAILABLE', 'the subassembly manager is closed');
  }

  /** Digest-pinned references never change what they name: remember them to answer `get` offline. */
  #remember(parsed: Reference, digest: Digest): void {
    if (parsed.digest !== undefined) this.#aliases.set(aliasKey(parsed), digest);
  }

  async #run(entry: Entry, resolved: ResolvedManifest): Promise<void> {
    const directory = this.#directory;
    if (this.#closed) {
      entry.phase = 'UNAVAILABLE';
      entry.message = 'cancelled: the subassembly manager was closed before the job started';
      await directory?.writeRecord(recordOf(entry)).catch(() => undefined);
      return;
    }
    const signal = this.#abort.signal;
    let workDir: string | undefined;
    try {
      workDir = await mkdtemp(join(this.#options.workDir, 'subassembly-'));
      const source = await loadSource(resolved, signal);
      const squashed = await squashImage(source, { workDir, compression: 'gzip', signal });
      const digest = squashed.manifest.file.digest;
      const blobUrl = this.#repository === undefined ? undefined : await this.#push(squashed, source, signal);
      if (directory !== undefined) await directory.installFile(squashed.file, digest);
      const available: SubassemblyRecord = {
        phase: 'AVAILABLE',
        message: `squashed ${source.image.manifest.value.layers.length} layers of ${entry.reference} (${entry.sourceDigest})`,
        sourceDigest: entry.sourceDigest,
        reference: entry.reference,
        manifest: squashed.manifest,
        ...(blobUrl === undefined ? {} : { blobUrl }),
      };
      await directory?.writeRecord(available);
      this.#apply(entry, available);
    } catch (err) {
      const failure = signal.aborted ? 'cancelled: the subassembly manager was closed' : toSubassemblyError(err, `create ${entry.reference}`, entry.reference).message;
      entry.phase = 'UNAVAILABLE';
      entry.message = failure;
      // Best effort: if even this fails, the CREATING record reads as interrupted after a restart.
      await directory?.writeRecord(recordOf(entry)).catch(() => undefined);
    } finally {
      if (workDir !== undefined) await rm(workDir, { recursive: true, force: true });
    }
  }

  /** Pushes the one-layer image (blob, config, manifest, then the tag); returns the blob URL. */
  async #push(squashed: Awaited<ReturnType<typeof squashImage>>, source: ResolvedSquashSource, signal: AbortSignal): Promise<string> {
    const target = this.#options.registries.repository(this.#repository!);
    try {
      const image = squashedImage(squashed, source.image, { config: 'consumer' });
      const manifest = await pushSquashedImage(target, image, squashed, { signal });
      await target.tag(manifest, digestHex(source.image.descriptor.digest), { signal });
      return await blobUrl(target, squashed.manifest.file.digest, signal);
    } catch (err) {
      throw toSubassemblyError(err, `push to ${target.toString()}`, source.reference);
    }
  }

  #apply(entry: Entry, record: SubassemblyRecord): void {
    entry.phase = record.phase;
    entry.message = record.message;
    if (record.phase !== 'AVAILABLE' || record.manifest === undefined) return;
    entry.manifest = record.manifest;
    entry.manifestBytes = encodeSubassemblyManifest(record.manifest);
    entry.url = this.#urlFor(record.manifest.file.digest, record.blobUrl);
  }

  #urlFor(digest: Digest, registryUrl: string | undefined): string {
    if (this.#directory !== undefined && this.#options.urlFor !== undefined) return this.#options.urlFor(digest);
    if (registryUrl !== undefined) return registryUrl;
    // A directory alone, and nobody serving it: the file itself.
    return pathToFileURL(this.#directory!.filePath(digest)).href;
  }

  /** Rebuilds the status table from the directory; see the class comment for the rules. */
  async #recover(directory: SubassemblyDirectory): Promise<void> {
    const checks = pLimit(2);
    await Promise.all(
      (await directory.records()).map((state) =>
        checks(async () => {
          if (state.kind === 'unreadable') {
            const message = `unavailable: the stored status record is unreadable (${state.reason}); create it again`;
            this.#entries.set(state.sourceDigest, { sourceDigest: state.sourceDigest, reference: '', phase: 'UNAVAILABLE', message });
            return;
          }
          const record = state.record;
          const entry: Entry = { sourceDigest: record.sourceDigest, reference: record.reference, phase: 'UNAVAILABLE', message: record.message };
          this.#entries.set(record.sourceDigest, entry);
          if (record.phase === 'CREATING') {
            const interrupted: SubassemblyRecord = {
              ...record,
              phase: 'UNAVAILABLE',
              message: 'interrupted: the service stopped while this subassembly was being created; create it again',
            };
            await directory.writeRecord(interrupted);
            this.#apply(entry, interrupted);
            return;
          }
          if (record.phase === 'UNAVAILABLE' || record.manifest === undefined) return;
          const file = record.manifest.file;
          const check = await directory.checkFile(file.digest, file.size);
          if (check === 'ok') {
            this.#apply(entry, record);
            return;
          }
          if (check === 'corrupt') await directory.removeFile(file.digest);
          const lost: SubassemblyRecord = {
            phase: 'UNAVAILABLE',
            message: `unavailable: the stored file ${file.digest} is ${check === 'missing' ? 'missing' : 'damaged (it does not match its digest) and was removed'}; create it again`,
            sourceDigest: record.sourceDigest,
            reference: record.reference,
          };
          await directory.writeRecord(lost);
          this.#apply(entry, lost);
        }),
      ),
    );
  }
}

function aliasKey(ref: Reference): string {
  return `${ref.registry}/${ref.repository}@${ref.digest ?? ''}`;
}

/** The record of a CREATING or UNAVAILABLE entry (an AVAILABLE one is written with its manifest). */
function recordOf(entry: Entry): SubassemblyRecord {
  return { phase: entry.phase, message: entry.message, sourceDigest: entry.sourceDigest, reference: entry.reference };
}

function statusOf(entry: Entry): SubassemblyStatus {
  if (entry.phase !== 'AVAILABLE') return { phase: entry.phase, message: entry.message };
  return {
    phase: 'AVAILABLE',
    message: entry.message,
    digest: entry.manifest!.file.digest,
    url: entry.url,
    manifest: Uint8Array.from(entry.manifestBytes!),
  };
}

/** `http(s)://host/v2/<repo>/blobs/<digest>`, with the scheme the registry answered on. */
async function blobUrl(repository: RegistryRepository, digest: Digest, signal: AbortSignal): Promise<string> {
  const { origin } = await repository.client.ping({ signal });
  return new URL(`/v2/${repository.name}/blobs/${digest}`, origin).href;
}
