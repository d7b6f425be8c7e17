import { describe, expect, it } from 'vitest';
import { CENSORED, censorer } from '../../../src/build/run-step.js';

describe('censorer: secret values masked in RUN output', () => {
  it('masks a value with or without its trailing newline, wherever it appears in a line', () => {
    const censor = censorer([Buffer.from('hunter2-secret\n')]);
    expect(censor('token=hunter2-secret; again hunter2-secret')).toBe(`token=${CENSORED}; again ${CENSORED}`);
    expect(censor('nothing to see')).toBe('nothing to see');
  });

  it('masks each long line of a multi-line secret, not its short lines', () => {
    const key = '-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n}\n-----END KEY-----\n';
    const censor = censorer([Buffer.from(key)]);
    expect(censor('MIIEvQIBADANBgkqhkiG9w0BAQEFAASC')).toBe(CENSORED);
    expect(censor('-----END KEY-----')).toBe(CENSORED);
    expect(censor('}')).toBe('}');
  });

  it('prefers the longest value when one secret contains another', () => {
    const censor = censorer([Buffer.from('abcd'), Buffer.from('xxabcdxx')]);
    expect(censor('[xxabcdxx] [abcd]')).toBe(`[${CENSORED}] [${CENSORED}]`);
  });

  it('leaves output alone when there are no secrets or only empty ones', () => {
    expect(censorer([])('line')).toBe('line');
    expect(censorer([Buffer.alloc(0)])('line')).toBe('line');
  });
});
