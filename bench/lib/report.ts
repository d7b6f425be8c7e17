import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A short note of the machine a benchmark ran on, stored next to its numbers. */
export interface MachineNote {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
  readonly date: string;
}

export function machineNote(): MachineNote {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 1024 ** 3),
    node: process.version,
    kernel: release(),
    date: new Date().toISOString(),
  };
}

/** Runs a shell pipeline (bash, pipefail) and returns its wall time in seconds and its stdout. */
export async function timeShell(script: string): Promise<{ seconds: number; stdout: string }> {
  const start = process.hrtime.bigint();
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = spawn('bash', ['-o', 'pipefail', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`${script} exited with ${code}: ${Buffer.concat(err).toString().slice(0, 500)}`));
    });
  });
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, stdout };
}

/** Prints rows as an aligned text table (first column left-aligned, the rest right-aligned). */
export function printTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

export async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Where a benchmark's JSON goes: `--json FILE`, else bench/results/NAME.json (kept out of git). */
export function resultFile(flags: ReadonlyMap<string, string>, name: string): string {
  return flags.get('json') ?? fileURLToPath(new URL(`../results/${name}.json`, import.meta.url));
}

/** Parses `--name value` and `--flag` arguments. */
export function parseArgs(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${JSON.stringify(arg)}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) out.set(name, inline);
    else if (i + 1 < args.length && !args[i + 1]!.startsWith('--')) out.set(name, args[++i]!);
    else out.set(name, 'true');
  }
  return out;
}

/** A size argument: `64K`, `256M`, `1G` (powers of 1024, `KiB`/`MB` spellings too, fractions allowed). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([KMG]i?B?)?$/i.exec(text.trim());
  if (m === null) throw new Error(`invalid size ${JSON.stringify(text)} (e.g. 1G, 256M, 64K)`);
  const unit = (m[2] ?? '').toUpperCase()[0];
  const scale = unit === 'K' ? 1024 : unit === 'M' ? 1024 ** 2 : unit === 'G' ? 1024 ** 3 : 1;
  return Math.round(Number(m[1]) * scale);
}
