import { open, type FileHandle } from 'node:fs/promises';

/** Appends are gathered into writes of about this size. */
const WRITE_BUFFER = 1024 * 1024;
/** Reads go out in chunks of at most this size. */
const READ_CHUNK = 1024 * 1024;

/**
 * An append-only temporary file of contents, addressed by offset: what lets flatten keep file
 * bytes out of memory while it decides which entries win. Small appends are buffered.
 */
export class Spool {
  readonly #handle: FileHandle;
  #size = 0;
  #flushed = 0;
  #buffer = new Uint8Array(WRITE_BUFFER);
  #buffered = 0;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  static async create(path: string): Promise<Spool> {
    return new Spool(await open(path, 'wx+', 0o600));
  }

  get size(): number {
    return this.#size;
  }

  /** Appends the chunks; returns the offset of the first byte. */
  async append(chunks: AsyncIterable<Uint8Array>): Promise<number> {
    const start = this.#size;
    for await (const chunk of chunks) await this.#write(chunk);
    return start;
  }

  async #write(chunk: Uint8Array): Promise<void> {
    this.#size += chunk.byteLength;
    if (this.#buffered + chunk.byteLength > WRITE_BUFFER) await this.flush();
    if (chunk.byteLength >= WRITE_BUFFER) {
      await writeAll(this.#handle, chunk, this.#flushed);
      this.#flushed += chunk.byteLength;
      return;
    }
    this.#buffer.set(chunk, this.#buffered);
    this.#buffered += chunk.byteLength;
  }

  async flush(): Promise<void> {
    if (this.#buffered === 0) return;
    await writeAll(this.#handle, this.#buffer.subarray(0, this.#buffered), this.#flushed);
    this.#flushed += this.#buffered;
    this.#buffered = 0;
  }

  /** The `size` bytes at `offset`, in fresh buffers. */
  async *read(offset: number, size: number): AsyncGenerator<Uint8Array> {
    if (offset + size > this.#flushed) await this.flush();
    let position = offset;
    const end = offset + size;
    while (position < end) {
      const buffer = Buffer.allocUnsafeSlow(Math.min(READ_CHUNK, end - position));
      const { bytesRead } = await this.#handle.read(buffer, 0, buffer.byteLength, position);
      if (bytesRead === 0) throw new Error(`spool file ended early at ${position} of ${end}`);
      position += bytesRead;
      yield bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
    }
  }

  /** Forgets every byte (the file is truncated to zero). */
  async clear(): Promise<void> {
    this.#buffered = 0;
    this.#size = 0;
    this.#flushed = 0;
    await this.#handle.truncate(0);
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < data.byteLength) {
    const { bytesWritten } = await handle.write(data, offset, data.byteLength - offset, position + offset);
    offset += bytesWritten;
  }
}
