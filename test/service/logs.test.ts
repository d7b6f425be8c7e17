import { describe, expect, it } from 'vitest';
import { BuildLog, Censor } from '../../src/service/index.js';

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of iterable) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

describe('Censor', () => {
  it('removes longer words before their prefixes, and replaces secrets', () => {
    const censor = new Censor();
    censor.add(['reg/ws:abc', 'reg/ws']);
    censor.add(['hunter2'], '***');
    expect(censor.apply('push reg/ws:abc then reg/ws/other with hunter2')).toBe('push  then /other with ***');
  });
});

describe('BuildLog', () => {
  it('replays from the start to every subscriber and ends when the build ends', async () => {
    const log = new BuildLog(1 << 20);
    log.line('one');
    const early = collect(log.subscribe());
    log.line('two');
    const late = collect(log.subscribe());
    log.line('three');
    log.end();
    log.line('after the end');
    expect(await early).toBe('one\ntwo\nthree\n');
    expect(await late).toBe('one\ntwo\nthree\n');
    expect(await collect(log.subscribe())).toBe('one\ntwo\nthree\n');
  });

  it('censors what it stores', () => {
    const log = new BuildLog(1 << 20);
    log.censor.add(['s3cr3t'], '***');
    log.line('password is s3cr3t');
    expect(log.text()).toBe('password is ***\n');
  });

  it('stays bounded, dropping the oldest output with a marker', async () => {
    const log = new BuildLog(100);
    for (let i = 0; i < 50; i++) log.line(`line ${String(i).padStart(2, '0')}`);
    log.end();
    const text = await collect(log.subscribe());
    expect(text).toMatch(/^\[\.\.\. earlier log output dropped \(\d+ bytes in all\) \.\.\.\]\n/);
    expect(text.endsWith('line 49\n')).toBe(true);
    expect(text).not.toContain('line 00');
    expect(log.text().length).toBeLessThanOrEqual(100);
  });

  it('truncates a single line longer than the bound', () => {
    const log = new BuildLog(100);
    log.line('x'.repeat(1000));
    expect(log.text()).toMatch(/^x+ \[truncated\]\n$/);
    expect(Buffer.byteLength(log.text())).toBeLessThanOrEqual(100);
  });

  it('a subscriber that falls behind is told what it missed', async () => {
    const log = new BuildLog(50);
    log.line('first');
    const iterator = log.subscribe()[Symbol.asyncIterator]();
    expect(Buffer.from((await iterator.next()).value as Uint8Array).toString()).toBe('first\n');
    for (let i = 0; i < 20; i++) log.line(`more ${i}`);
    log.end();
    expect(Buffer.from((await iterator.next()).value as Uint8Array).toString()).toMatch(/dropped/);
  });

  it('a subscriber stops when its signal aborts, the log goes on', async () => {
    const log = new BuildLog(1 << 20);
    log.line('hello');
    const controller = new AbortController();
    const reading = collect(log.subscribe(controller.signal));
    await new Promise((resolve) => setImmediate(resolve));
    controller.abort();
    expect(await reading).toBe('hello\n');
    log.line('still logging');
    expect(log.ended).toBe(false);
  });
});
