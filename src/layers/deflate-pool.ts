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
    const input = new Uint8Array(task.input, task.offset, task.length);
    const options = {
      level: task.level,
      // A sync flush ends every block but the last on a byte boundary, so the raw deflate
      // streams of consecutive blocks concatenate into one valid stream (pigz's method).
      finishFlush: task.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
      // Room for the whole output in one buffer (deflate expands incompressible data by a few
      // bytes per 16 KiB), so zlib allocates once per block and nothing needs concatenating.
      chunkSize: Math.max(64 * 1024, task.length + (task.length >> 6) + 1024),
    };
    if (task.dictionary !== null) options.dictionary = new Uint8Array(task.dictionary);
    const out = zlib.deflateRawSync(input, options);
    // The output is a view of zlib's buffer: send the whole buffer (no copy) unless it is mostly
    // empty, then a copy of the bytes (small outputs may also share a pool slab).
    const whole = out.byteOffset === 0 && out.byteLength * 2 >= out.buffer.byteLength && out.buffer.byteLength >= 8192;
    const output = whole ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength);
    // The input block goes back too, so the encoder can refill it instead of allocating.
    parentPort.postMessage({ id: task.id, output, length: out.byteLength, input: task.input }, [output, task.input]);
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
  readonly resolve: (result: DeflateResult) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Tasks posted to this worker, in the order it answers them. */
  readonly pending: Pending[];
}

interface WorkerReply {
  readonly id: number;
  readonly output?: ArrayBuffer;
  readonly length?: number;
  readonly input?: ArrayBuffer;
  readonly error?: string;
}

export class DeflatePool {
  readonly #slots: Slot[] = [];
  #nextId = 0;

  get size(): number {
    return this.#slots.length;
  }

  /** Grows the pool to at least `workers` threads. */
  ensure(workers: number): void {
    while (this.#slots.length < workers) this.#spawn();
  }

  /**
   * Deflates one block on the least busy of the first `threads` workers. Tasks are posted to
   * the worker at once and queue in its port: a worker that finishes a block starts the next
   * without waiting for this thread to be scheduled (which matters on a busy machine).
   */
  run(task: DeflateTask, threads = 1): Promise<DeflateResult> {
    const limit = Math.max(1, threads);
    this.ensure(limit);
    let slot = this.#slots[0]!;
    for (let i = 1; i < limit; i++) if (this.#slots[i]!.pending.length < slot.pending.length) slot = this.#slots[i]!;
    return new Promise<DeflateResult>((resolve, reject) => {
      const id = this.#nextId++;
      slot.pending.push({ id, resolve, reject });
      slot.worker.ref();
      const { input, dictionary, level, last } = task;
      // The dictionary is a copy of at most 32 KiB, so it can be transferred too.
      const dict = dictionary === null ? null : dictionary.slice().buffer;
      const transfer = [input.buffer as ArrayBuffer, ...(dict === null ? [] : [dict])];
      slot.worker.postMessage({ id, input: input.buffer, offset: input.byteOffset, length: input.byteLength, dictionary: dict, level, last }, transfer);
    });
  }

  /** Stops every worker; pending tasks fail. Later calls start new workers. */
  async close(): Promise<void> {
    const slots = this.#slots.splice(0);
    const error = new Error('deflate pool closed');
    await Promise.all(
      slots.map(async (slot) => {
        for (const pending of slot.pending.splice(0)) pending.reject(error);
        await slot.worker.terminate();
      }),
    );
  }

  #spawn(): void {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, pending: [] };
    worker.on('message', (reply: WorkerReply) => {
      const pending = slot.pending[0];
      if (pending === undefined || pending.id !== reply.id) return;
      slot.pending.shift();
      // An idle worker must not keep the process alive; a busy one must, or the process could
      // exit under a pending compression.
      if (slot.pending.length === 0) worker.unref();
      if (reply.output !== undefined && reply.input !== undefined) pending.resolve({ output: new Uint8Array(reply.output, 0, reply.length), input: reply.input });
      else pending.reject(new Error(`deflate worker failed: ${reply.error ?? 'unknown error'}`));
    });
    const fail = (err: Error): void => {
      const index = this.#slots.indexOf(slot);
      if (index < 0) return;
      // A replacement takes the slot; the tasks the dead worker held fail (their streams error).
      this.#slots.splice(index, 1);
      for (const pending of slot.pending.splice(0)) pending.reject(err);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`deflate worker exited with code ${code}`)));
    // Unref only now: adding a 'message' listener refs the worker's port again, so a worker
    // unref'd before it would keep an idle process alive.
    worker.unref();
    this.#slots.push(slot);
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
