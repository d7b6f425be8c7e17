/**
 * A build's log (decision 4): text appended line by line, censored as it arrives, kept in a
 * bounded buffer (the oldest chunks are dropped beyond `maxBytes`, leaving a marker), replayed
 * from the start to every subscriber and followed live until the build ends. Subscribers read
 * from the shared buffer at their own pace: a slow reader costs no memory, it only misses what
 * was dropped (and is told so).
 */

/** Removes every occurrence of a set of strings (longest first, so a ref goes before its repository part). */
export class Censor {
  #words: string[] = [];
  readonly #replacements = new Map<string, string>();

  /** `replacement` defaults to nothing (mk3 deletes refs); secrets are better shown as `***`. */
  add(words: Iterable<string>, replacement = ''): void {
    let changed = false;
    for (const word of words) {
      if (word === '' || this.#replacements.has(word)) continue;
      this.#replacements.set(word, replacement);
      changed = true;
    }
    if (changed) this.#words = [...this.#replacements.keys()].sort((a, b) => b.length - a.length);
  }

  apply(text: string): string {
    let out = text;
    for (const word of this.#words) {
      if (out.includes(word)) out = out.split(word).join(this.#replacements.get(word)!);
    }
    return out;
  }
}

interface Chunk {
  readonly seq: number;
  readonly bytes: Uint8Array;
}

export class BuildLog {
  readonly censor = new Censor();
  readonly #maxBytes: number;
  readonly #chunks: Chunk[] = [];
  #bytes = 0;
  #nextSeq = 0;
  #dropped = 0;
  #ended = false;
  #waiters: (() => void)[] = [];

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Bytes dropped from the start so far. */
  get droppedBytes(): number {
    return this.#dropped;
  }

  /** Appends one line (a newline is added), censored. Ignored once the log has ended. */
  line(text: string): void {
    this.write(`${text}\n`);
  }

  /** Appends text, censored. Callers pass whole lines so no censored word is split across chunks. */
  write(text: string): void {
    if (this.#ended || text === '') return;
    let bytes = Buffer.from(this.censor.apply(text), 'utf8');
    // One enormous line must not defeat the bound: keep its start (the censor has run already).
    if (bytes.byteLength > this.#maxBytes) bytes = Buffer.concat([bytes.subarray(0, Math.max(0, this.#maxBytes - 16)), Buffer.from(' [truncated]\n')]);
    this.#chunks.push({ seq: this.#nextSeq++, bytes });
    this.#bytes += bytes.byteLength;
    while (this.#bytes > this.#maxBytes && this.#chunks.length > 1) {
      const oldest = this.#chunks.shift()!;
      this.#bytes -= oldest.bytes.byteLength;
      this.#dropped += oldest.bytes.byteLength;
    }
    this.#wake();
  }

  /** No more output: every subscriber's iteration ends once it has read what is left. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#wake();
  }

  /** The whole retained log (for tests and small consumers). */
  text(): string {
    return Buffer.concat(this.#chunks.map((c) => c.bytes)).toString('utf8');
  }

  /** The log from the start (what is retained), then live chunks until the log ends or `signal` aborts. */
  async *subscribe(signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    let next = 0;
    while (!signal?.aborted) {
      const first = this.#chunks[0];
      if (first !== undefined && next < first.seq) {
        // What this reader had not read yet was dropped: say so, then go on from the oldest kept.
        yield Buffer.from(`[... earlier log output dropped (${this.#dropped} bytes in all) ...]\n`, 'utf8');
        next = first.seq;
      }
      const index = first === undefined ? 0 : next - first.seq;
      if (index < this.#chunks.length) {
        const chunk = this.#chunks[index]!;
        next = chunk.seq + 1;
        yield chunk.bytes;
        continue;
      }
      if (this.#ended) return;
      await this.#changed(signal);
    }
  }

  #changed(signal: AbortSignal | undefined): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
