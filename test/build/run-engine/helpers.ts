import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BuildEvent } from '../../../src/build/index.js';
import { decompress, readTar, type TarHeader } from '../../../src/layers/index.js';
import { OciLayout } from '../../../src/oci/index.js';
import { layoutManifest } from '../helpers.js';

/** Helpers of the RUN engine tests: reading every byte an image holds, and picking events. */

export interface LayerFile {
  readonly layer: number;
  readonly header: TarHeader;
  readonly content: Buffer;
}

/** Every entry of every layer of an image in a layout, with its content. */
export async function layerFiles(layoutDir: string, tag: string): Promise<LayerFile[]> {
  const layout = await OciLayout.open(layoutDir);
  const manifest = await layoutManifest(layoutDir, tag);
  const files: LayerFile[] = [];
  for (const [index, layer] of manifest.layers.entries()) {
    for await (const entry of readTar(decompress(await layout.fetch(layer)))) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.content) chunks.push(Buffer.from(chunk));
      files.push({ layer: index, header: entry.header, content: Buffer.concat(chunks) });
    }
  }
  return files;
}

/** Every blob of the image (manifest, config, compressed layers) and index.json, as raw bytes. */
export async function layoutBlobs(layoutDir: string): Promise<Buffer[]> {
  const dir = join(layoutDir, 'blobs', 'sha256');
  const blobs = await Promise.all((await readdir(dir)).map((name) => readFile(join(dir, name))));
  return [...blobs, await readFile(join(layoutDir, 'index.json'))];
}

export type LogEvent = Extract<BuildEvent, { type: 'log' }>;

export function logLines(events: readonly BuildEvent[]): string[] {
  return events.filter((e): e is LogEvent => e.type === 'log').map((e) => e.line);
}

/** The network interfaces a RUN saw, from its `cat /proc/net/dev` (header lines skipped). */
export function interfaces(procNetDev: string): string[] {
  return procNetDev
    .split('\n')
    .slice(2)
    .map((line) => line.split(':')[0]!.trim())
    .filter((name) => name !== '')
    .sort();
}
