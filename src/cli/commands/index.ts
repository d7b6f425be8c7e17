import type { Command } from '../command.js';
import { appendCommand } from './append.js';
import { parseCommand } from './parse.js';

/** Every verb of the command line, in the order `--help` lists them. */
export const commands: readonly Command[] = [appendCommand, parseCommand];
