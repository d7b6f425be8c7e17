import { Worker } from 'node:worker_threads';

/**
 * A pool of worker threads that deflate independent blocks. The worker is plain JavaScript
 * evaluated from a string and uses only node:zlib, so it runs the same under tsx, vitest and
 * compiled dist/ (no worker file path to resolve).
 *
 * The pool is shared by every gzip stream of the process and grows to the largest worker count
 * asked for. Idle workers are unref'd so they never keep the process alive; a worker with a
 * task is ref'd so the process does not exit under a pending compression.
 */

const WORKER_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', (task) => {
  try {
    const options = {
      level: task.level,
      // A sync flush ends every block but the last on a byte boundary, so the raw deflate
      // streams of consecutive blocks concatenate into one valid stream (pigz's method).
      finishFlush: task.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      chunkSize: 256 * 1024,
    };
    if (task.dictionary !== null) options.dictionary = new Uint8Array(task.dictionary);
    const out = zlib.deflateRawSync(new Uint8Array(task.input, task.offset, task.length), options);
    // Transfer only a buffer the result owns entirely (small results can share a pool slab).
    const owned = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength
      ? out.buffer
      : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    // The input block goes back too, so the encoder can refill it instead of allocating.
    parentPort.postMessage({ id: task.id, output: owned, input: task.input }, [owned, task.input]);
  } catch (err) {
    parentPort.postMessage({ id: task.id, error: String((err && err.message) || err) });
  }
});
`;

export interface DeflateTask {
  /**
   * The block; its buffer is transferred to the worker (unusable by the caller until it comes
   * back as `DeflateResult.input`).
   */
  readonly input: Uint8Array;
  /** Up to 32 KiB of the data preceding the block, or null for the first block. */
  readonly dictionary: Uint8Array | null;
  readonly level: number;
  readonly last: boolean;
}

export interface DeflateResult {
  /** The raw deflate bytes of the block. */
  readonly output: Uint8Array;
  /** The block's buffer, returned for reuse. */
  readonly input: ArrayBuffer;
}

interface Pending {
  readonly id: number;
  readonly task: DeflateTask;
  readonly resolve: (result: DeflateResult) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  busy: Pending | undefined;
}

interface WorkerReply {
  readonly id: number;
  readonly output?: ArrayBuffer;
  readonly input?: ArrayBuffer;
  readonly error?: string;
}

export class DeflatePool {
  readonly #slots: Slot[] = [];
  readonly #queue: Pending[] = [];
  #nextId = 0;

  get size(): number {
    return this.#slots.length;
  }

  /** Grows the pool to at least `workers` threads. */
  ensure(workers: number): void {
    while (this.#slots.length < workers) this.#spawn();
  }

  /** Deflates one block on the next free worker. */
  run(task: DeflateTask): Promise<DeflateResult> {
    if (this.#slots.length === 0) this.ensure(1);
    return new Promise<DeflateResult>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, task, resolve, reject });
      this.#dispatch();
    });
  }

  /** Stops every worker; queued and running tasks fail. Later calls start new workers. */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    const error = new Error('deflate pool closed');
    for (const pending of this.#queue.splice(0)) pending.reject(error);
    await Promise.all(
      slots.map(async (slot) => {
        slot.busy?.reject(error);
        slot.busy = undefined;
        await slot.worker.terminate();
      }),
    );
  }

  #spawn(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, busy: undefined };
    worker.unref();
    worker.on('message', (reply: WorkerReply) => {
      const pending = slot.busy;
      if (pending === undefined || pending.id !== reply.id) return;
      slot.busy = undefined;
      if (reply.output !== undefined && reply.input !== undefined) pending.resolve({ output: new Uint8Array(reply.output), input: reply.input });
      else pending.reject(new Error(`deflate worker failed: ${reply.error ?? 'unknown error'}`));
      this.#dispatch();
    });
    const fail = (err: Error): void => {
      const index = this.#slots.indexOf(slot);
      if (index >= 0) this.#slots.splice(index, 1);
      slot.busy?.reject(err);
      slot.busy = undefined;
      // Keep the pool at its size so queued tasks still run.
      if (this.#queue.length > 0) {
        this.#spawn();
        this.#dispatch();
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.#slots.includes(slot)) fail(new Error(`deflate worker exited with code ${code}`));
    });
    this.#slots.push(slot);
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.busy !== undefined) continue;
      const next = this.#queue.shift();
      if (next === undefined) {
        slot.worker.unref();
        continue;
      }
      slot.busy = next;
      slot.worker.ref();
      const { input, dictionary, level, last } = next.task;
      const transfer: ArrayBuffer[] = [input.buffer as ArrayBuffer];
      // The dictionary is a small copy; transferring it saves nothing but a copy of 32 KiB.
      const dict = dictionary === null ? null : dictionary.slice().buffer;
      slot.worker.postMessage(
        { id: next.id, input: input.buffer, offset: input.byteOffset, length: input.byteLength, dictionary: dict, level, last },
        dict === null ? transfer : [...transfer, dict],
      );
    }
  }
}

let shared: DeflatePool | undefined;

/** The process-wide pool used by the gzip encoder. */
export function sharedDeflatePool(): DeflatePool {
  shared ??= new DeflatePool();
  return shared;
}

/** Terminates the shared pool's workers (they are unref'd, so this is only for tidy shutdowns). */
export async function closeDeflateWorkers(): Promise<void> {
  await shared?.close();
}
