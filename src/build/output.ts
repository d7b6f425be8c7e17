import { link, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import {
  copyGraph,
  formatReference,
  isValidLayoutRefName,
  InvalidReferenceError,
  OciLayout,
  parseReference,
  type CopyEvent,
  type Descriptor,
  type Reference,
} from '../oci/index.js';
import { apiHost, type RegistryClientPool } from '../registry/index.js';
import { OutputError } from './errors.js';
import type { BuildEvent } from './events.js';
import type { BuildOutput } from './options.js';
import type { BuildContentSource } from './store.js';

/**
 * Writing the built image to its outputs. Every blob is copied children-first (a manifest only
 * once its blobs are there); blobs an output has are skipped, base blobs on the same registry are
 * mounted from the base's repository (never downloaded), and blobs pushed to one repository are
 * mounted into the next repository of the same registry. Tags come last, once every output holds
 * the whole image: a failed push leaves no tag pointing at a partial image, and a new OCI layout
 * that could not be completed is removed.
 */

export type OutputRecord =
  | { readonly type: 'registry'; readonly reference: string; readonly digest: string }
  | { readonly type: 'layout'; readonly dir: string; readonly tag: string; readonly digest: string };

export interface WriteOutputsOptions {
  readonly content: BuildContentSource;
  readonly registries: RegistryClientPool;
  /**
   * Blobs the build made (config, new layers): hard-linked into a local layout when possible.
   * Never the manifest: `copyGraph` skips the subtree of a node that exists, so the manifest must
   * arrive last, after the base layers.
   */
  readonly localBlobs: readonly Descriptor[];
  readonly emit: (event: BuildEvent) => void;
  readonly signal: AbortSignal;
}

interface RegistryTarget {
  readonly reference: Reference;
  readonly display: string;
}

export async function writeOutputs(root: Descriptor, outputs: readonly BuildOutput[], options: WriteOutputsOptions): Promise<OutputRecord[]> {
  const registryTargets: RegistryTarget[] = [];
  const layouts: { dir: string; tag: string }[] = [];
  for (const output of outputs) {
    if (output.type === 'registry') {
      let reference: Reference;
      try {
        reference = parseReference(output.reference);
      } catch (err) {
        throw new OutputError(output.reference, err);
      }
      if (reference.digest !== undefined && reference.digest !== root.digest) {
        throw new OutputError(output.reference, new InvalidReferenceError(output.reference, `it names digest ${reference.digest}, but the image is ${root.digest}`));
      }
      registryTargets.push({ reference, display: formatReference(reference) });
    } else {
      const tag = output.tag ?? 'latest';
      if (!isValidLayoutRefName(tag)) throw new OutputError(`oci:${output.dir}:${tag}`, new InvalidReferenceError(tag, 'not a valid image name inside an OCI layout'));
      layouts.push({ dir: resolvePath(output.dir), tag });
    }
  }

  const records: OutputRecord[] = [];
  const tags: (() => Promise<void>)[] = [];

  // OCI layouts first (local and quick), then registries; every tag at the very end.
  const created: { dir: string; existed: boolean }[] = [];
  try {
    for (const { dir, tag } of layouts) {
      const destination = `oci:${dir}:${tag}`;
      const began = Date.now();
      options.emit({ type: 'output-started', time: began, destination });
      try {
        const state = await directoryState(dir);
        if (state !== 'used') created.push({ dir, existed: state === 'empty' });
        const layout = await OciLayout.open(dir, { create: true });
        await linkLocalBlobs(layout, options);
        await copyGraph(options.content, layout, root, { signal: options.signal, onEvent: (event) => options.emit(blobEvent(destination, event, 'written')) });
        tags.push(async () => {
          try {
            await layout.tag(root, tag, { signal: options.signal });
          } catch (err) {
            throw new OutputError(destination, err);
          }
          options.emit({ type: 'output-finished', time: Date.now(), destination, reference: `${destination}@${root.digest}`, durationMs: Date.now() - began });
        });
      } catch (err) {
        throw err instanceof OutputError ? err : new OutputError(destination, err);
      }
      records.push({ type: 'layout', dir, tag, digest: root.digest });
    }
    // Registries: one copy per repository; each registry remembers the repositories it received.
    const pushedTo = new Map<string, string[]>();
    const repositories = new Map<string, RegistryTarget[]>();
    for (const target of registryTargets) {
      const key = `${apiHost(target.reference.registry)}/${target.reference.repository}`;
      repositories.set(key, [...(repositories.get(key) ?? []), target]);
    }
    for (const targets of repositories.values()) {
      const first = targets[0]!;
      const registry = apiHost(first.reference.registry);
      const repository = options.registries.repository(first.reference);
      const destination = `${first.reference.registry}/${first.reference.repository}`;
      const began = Date.now();
      options.emit({ type: 'output-started', time: began, destination });
      try {
        await copyGraph(options.content, repository, root, {
          signal: options.signal,
          onEvent: (event) => options.emit(blobEvent(destination, event, 'pushed')),
          mountFrom: (desc) => {
            const candidates: string[] = [];
            const remote = options.content.remote(desc.digest);
            if (remote?.registry !== undefined && remote.repository !== undefined && apiHost(remote.registry) === registry && remote.repository !== first.reference.repository) {
              candidates.push(remote.repository);
            }
            for (const other of pushedTo.get(registry) ?? []) if (other !== first.reference.repository) candidates.push(other);
            return candidates;
          },
        });
      } catch (err) {
        throw new OutputError(destination, err);
      }
      pushedTo.set(registry, [...(pushedTo.get(registry) ?? []), first.reference.repository]);
      for (const target of targets) {
        const tag = target.reference.tag;
        const pinned = formatReference({ registry: target.reference.registry, repository: target.reference.repository, digest: root.digest });
        if (tag !== undefined && target.reference.digest === undefined) {
          tags.push(async () => {
            try {
              await repository.tag(root, tag, { signal: options.signal });
            } catch (err) {
              throw new OutputError(target.display, err);
            }
            options.emit({ type: 'output-finished', time: Date.now(), destination: target.display, reference: `${target.display}@${root.digest}`, durationMs: Date.now() - began });
          });
        } else {
          tags.push(async () => options.emit({ type: 'output-finished', time: Date.now(), destination: target.display, reference: pinned, durationMs: Date.now() - began }));
        }
        records.push({ type: 'registry', reference: tag !== undefined && target.reference.digest === undefined ? `${target.display}@${root.digest}` : pinned, digest: root.digest });
      }
    }

    for (const tag of tags) await tag();
  } catch (err) {
    // A layout this build created and could not complete must not be left half-written.
    for (const { dir, existed } of created) {
      const targets = existed ? (await readdir(dir).catch(() => [])).map((name) => join(dir, name)) : [dir];
      for (const target of targets) await rm(target, { recursive: true, force: true }).catch(() => undefined);
    }
    throw err;
  }
  return records;
}

function blobEvent(destination: string, event: CopyEvent, copied: 'pushed' | 'written'): BuildEvent {
  if (event.type === 'started') return { type: 'push-progress', time: Date.now(), destination, digest: event.descriptor.digest, transferred: 0, size: event.descriptor.size };
  const action = event.type === 'copied' ? copied : event.type;
  return { type: 'blob', time: Date.now(), destination, action, descriptor: event.descriptor };
}

/** `missing` or `empty`: a layout this output creates from nothing (and removes if it fails); `used` otherwise. */
async function directoryState(dir: string): Promise<'missing' | 'empty' | 'used'> {
  try {
    if (!(await stat(dir)).isDirectory()) return 'used';
    return (await readdir(dir)).length === 0 ? 'empty' : 'used';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw err;
  }
}

/**
 * Hard-links the build's own blobs into the layout (same filesystem): a gigabyte layer is not
 * copied a second time. Anything that cannot be linked is copied by `copyGraph` afterwards.
 */
async function linkLocalBlobs(layout: OciLayout, options: WriteOutputsOptions): Promise<void> {
  for (const desc of options.localBlobs) {
    if (!(await options.content.local.has(desc.digest, desc.size))) continue;
    const target = layout.blobPath(desc.digest);
    try {
      await mkdir(join(target, '..'), { recursive: true });
      await link(options.content.local.blobPath(desc.digest), target);
    } catch {
      // EEXIST (already there), EXDEV (another filesystem): copyGraph handles it.
    }
  }
}
