import { expect } from 'vitest';
import { DockerfileError } from '../../src/dockerfile/index.js';

/** Runs `fn`, expecting a DockerfileError with this code (and line, when given); returns it. */
export function expectDockerfileError(fn: () => unknown, code: string, line?: number): DockerfileError {
  let error: unknown;
  try {
    fn();
  } catch (err) {
    error = err;
  }
  expect(error, 'expected a DockerfileError').toBeInstanceOf(DockerfileError);
  const e = error as DockerfileError;
  expect(e.code, e.message).toBe(code);
  if (line !== undefined) expect(e.startLine, e.message).toBe(line);
  return e;
}
