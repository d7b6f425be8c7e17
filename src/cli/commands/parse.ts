import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { dumpAst, parseDockerfile } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';

const USAGE = `Usage: stevedore parse [FILE|-] [--format dump|json]

Parses a Dockerfile the way BuildKit does and prints its syntax tree.

  FILE               the Dockerfile to read (default: ./Dockerfile); "-" reads standard input
  --format dump      BuildKit's S-expression dump, one instruction per line (default)
  --format json      the syntax tree as JSON: instructions with flags, arguments, heredocs and lines

Warnings (such as empty continuation lines) go to standard error.
`;

type Format = 'dump' | 'json';

function parseArgs(args: readonly string[]): { file: string; format: Format } {
  let file: string | undefined;
  let format: Format = 'dump';
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    let value: string | undefined;
    if (arg === '--format' || arg === '-f') {
      value = args[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value: dump or json`);
    } else if (arg.startsWith('--format=')) {
      value = arg.slice('--format='.length);
    } else if (arg.startsWith('-') && arg !== '-') {
      throw new UsageError(`unknown option ${JSON.stringify(arg)}; see "stevedore parse --help"`);
    } else {
      if (file !== undefined) throw new UsageError('parse takes one file');
      file = arg;
      continue;
    }
    if (value !== 'dump' && value !== 'json') throw new UsageError(`--format must be dump or json, not ${JSON.stringify(value)}`);
    format = value;
  }
  return { file: file ?? 'Dockerfile', format };
}

async function readAll(stream: Readable): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks);
}

export const parseCommand: Command = {
  name: 'parse',
  summary: 'print the syntax tree of a Dockerfile',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { file, format } = parseArgs(args);
    let bytes: Uint8Array;
    if (file === '-') {
      bytes = await readAll(io.stdin);
    } else {
      try {
        bytes = await readFile(resolve(io.cwd, file));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        io.stderr.write(`stevedore parse: cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}\n`);
        return 1;
      }
    }
    const name = file === '-' ? 'stdin' : file;
    const parsed = parseDockerfile(bytes, { file: name });
    for (const w of parsed.warnings) io.stderr.write(`warning: ${name}:${w.startLine}: ${w.message} [${w.rule}]\n`);
    io.stdout.write(format === 'dump' ? dumpAst(parsed) : `${JSON.stringify(parsed, null, 2)}\n`);
    return 0;
  },
};
