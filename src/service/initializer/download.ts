import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { throwIfAborted } from '../../errors.js';
import { digestAlgorithm, DigestingStream, parseDigest, type Digest } from '../../oci/index.js';
import { ServiceError } from '../errors.js';
import type { DownloadInitializerSpec } from '../types.js';
import { InitializerError, safeUrl, type InitializerContext } from './context.js';
import { workspacePath } from './paths.js';

/**
 * The download initializer: each file fetched over HTTP(S) into `target_location/file_path`
 * (parent directories created), streamed through a hash into a temporary file next to its
 * destination, and renamed into place only when its digest matches ("digest mismatch"
 * otherwise). Nothing half-downloaded is ever left under its final name.
 */
export async function downloadInitializer(spec: DownloadInitializerSpec, root: string, ctx: InitializerContext): Promise<void> {
  const target = workspacePath(root, spec.targetLocation === '' ? '.' : spec.targetLocation, 'download target_location');
  const files = spec.files.map((file) => {
    let digest: Digest;
    try {
      digest = parseDigest(file.digest);
    } catch (err) {
      throw new ServiceError('INVALID_ARGUMENT', `download initializer: ${file.filePath}: ${(err as Error).message}`, { cause: err });
    }
    if (!/^https?:\/\//i.test(file.url)) throw new ServiceError('INVALID_ARGUMENT', `download initializer: ${file.filePath}: only http and https URLs can be downloaded`);
    if (file.filePath === '') throw new ServiceError('INVALID_ARGUMENT', 'download initializer: a file has an empty file_path');
    return { ...file, digest, path: workspacePath(target, file.filePath, 'download file_path') };
  });
  for (const file of files) {
    throwIfAborted(ctx.signal);
    ctx.log(`download: ${file.filePath} from ${safeUrl(file.url)}`);
    await downloadOne(file.url, file.path, file.digest, file.filePath, ctx);
  }
}

async function downloadOne(url: string, path: string, digest: Digest, name: string, ctx: InitializerContext): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.download`);
  try {
    let response: Response;
    try {
      response = await fetch(url, { signal: requestSignal(ctx), redirect: 'follow' });
    } catch (err) {
      throwIfAborted(ctx.signal);
      throw new InitializerError('download', `${name}: cannot fetch ${safeUrl(url)} (${(err as Error).name})`, { cause: err });
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel().catch(() => undefined);
      throw new InitializerError('download', `${name}: ${safeUrl(url)} answered HTTP ${response.status}`);
    }
    const hasher = new DigestingStream(digestAlgorithm(digest));
    try {
      await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), hasher, createWriteStream(temp, { mode: 0o644 }), ctx.signal === undefined ? {} : { signal: ctx.signal });
    } catch (err) {
      throwIfAborted(ctx.signal);
      throw new InitializerError('download', `${name}: the download from ${safeUrl(url)} failed (${(err as Error).message})`, { cause: err });
    }
    if (hasher.digest() !== digest) throw new InitializerError('download', `${name}: digest mismatch: expected ${digest}, got ${hasher.digest()}`);
    await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}

function requestSignal(ctx: InitializerContext): AbortSignal {
  // A body is bounded by the build's own time limit; the timeout bounds a silent server.
  const timeout = AbortSignal.timeout(ctx.requestTimeoutMs ?? 10 * 60_000);
  return ctx.signal === undefined ? timeout : AbortSignal.any([ctx.signal, timeout]);
}
