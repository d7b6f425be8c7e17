import type { Command } from '../command.js';
import { appendCommand } from './append.js';
import { buildCommand } from './build.js';
import { copyCommand } from './copy.js';
import { loginCommand } from './login.js';
import { logoutCommand } from './logout.js';
import { parseCommand } from './parse.js';
import { pruneCommand } from './prune.js';
import { resolveCommand } from './resolve.js';
import { serveCommand } from './serve.js';
import { squashCommand } from './squash.js';

/** Every verb of the command line, in the order `--help` lists them. */
export const commands: readonly Command[] = [buildCommand, appendCommand, copyCommand, squashCommand, serveCommand, resolveCommand, pruneCommand, loginCommand, logoutCommand, parseCommand];
