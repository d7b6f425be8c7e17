import { StringDecoder } from 'node:string_decoder';

/**
 * Turns a byte stream into lines. Bytes are decoded as UTF-8 (invalid sequences become U+FFFD;
 * a character split across chunks is kept whole), lines lose their `\n` (and a `\r` before it),
 * and a line longer than `maxLine` characters is delivered in pieces so a command that prints
 * megabytes without a newline cannot grow memory.
 */
export class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  constructor(
    private readonly emit: (line: string) => void,
    private readonly maxLine = 16 * 1024,
  ) {}

  push(chunk: Uint8Array): void {
    this.#feed(this.#decoder.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
  }

  /** Delivers what is left (a last line without `\n`). */
  end(): void {
    this.#feed(this.#decoder.end());
    if (this.#pending !== '') this.emit(this.#pending);
    this.#pending = '';
  }

  #feed(text: string): void {
    let rest = this.#pending + text;
    for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      this.#deliver(line.endsWith('\r') ? line.slice(0, -1) : line);
    }
    while (rest.length > this.maxLine) {
      this.emit(rest.slice(0, this.maxLine));
      rest = rest.slice(this.maxLine);
    }
    this.#pending = rest;
  }

  #deliver(line: string): void {
    for (let i = this.maxLine; line.length > i; line = line.slice(i)) this.emit(line.slice(0, i));
    this.emit(line);
  }
}
