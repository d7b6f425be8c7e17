import { isStevedoreError } from '../index.js';
import { UsageError, type CliIO, type Command } from './command.js';
import { commands } from './commands/index.js';

const VERSION = '0.1.0';

function overview(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    'stevedore: build and move OCI images without a daemon',
    '',
    'Usage: stevedore COMMAND [OPTIONS]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Run "stevedore COMMAND --help" for the options of a command.',
    '',
  ].join('\n');
}

/** Runs one command line; returns the exit code. Never throws. */
export async function runCli(argv: string[], io: CliIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`stevedore ${VERSION}\n`);
    return 0;
  }
  const command: Command | undefined = commands.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`stevedore: unknown command ${JSON.stringify(name)}; see "stevedore --help"\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(command.usage.endsWith('\n') ? command.usage : `${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`stevedore ${name}: ${err.message}\n`);
      return 2;
    }
    if (isStevedoreError(err)) {
      io.stderr.write(`stevedore ${name}: ${err.message} [${err.code}]\n`);
      return 1;
    }
    // An unexpected failure: say so, with the stack, since it is a bug of ours.
    io.stderr.write(`stevedore ${name}: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 70;
  }
}
