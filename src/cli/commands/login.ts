import { RegistryClient, storeDockerCredential } from '../../index.js';
import { UsageError, type CliIO, type Command } from '../command.js';
import { authFile, parseCommandLine, REGISTRY_FLAG_OPTIONS, REGISTRY_FLAGS_USAGE, registryHostArgument, registryOptions, type RegistryFlagValues } from './registry-flags.js';

const USAGE = `Usage: stevedore login [HOST] -u USER --password-stdin

Checks the credentials against the registry (as "docker login" does) and stores them in
Docker's config.json (or the configured credential helper), where Docker, skopeo, buildah
and Stevedore find them. HOST defaults to Docker Hub.

  -u, --username USER      the user name
  --password-stdin         read the password (or token) from standard input
  -p, --password PASS      the password on the command line (visible to other users: avoid)

${REGISTRY_FLAGS_USAGE}
`;

const MAX_PASSWORD = 64 * 1024;

async function readPassword(io: CliIO): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_PASSWORD) throw new UsageError('the password on standard input is too long');
    chunks.push(buffer);
  }
  // Like docker: one trailing newline (from echo or a file) is not part of the password.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export const loginCommand: Command = {
  name: 'login',
  summary: 'log in to a registry (stores credentials in Docker config.json)',
  usage: USAGE,
  async run(args: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseCommandLine('login', args, {
      ...REGISTRY_FLAG_OPTIONS,
      username: { type: 'string', short: 'u' },
      password: { type: 'string', short: 'p' },
      'password-stdin': { type: 'boolean' },
    });
    if (positionals.length > 1) throw new UsageError('login takes at most one registry');
    const registry = registryHostArgument(positionals[0]);
    const username = values.username as string | undefined;
    if (username === undefined || username === '') throw new UsageError('a user name is required (-u USER)');
    if (values.password !== undefined && values['password-stdin'] === true) throw new UsageError('--password and --password-stdin exclude each other');
    let password: string;
    if (values['password-stdin'] === true) {
      password = await readPassword(io);
    } else if (typeof values.password === 'string') {
      io.stderr.write('WARNING! Using --password via the command line is insecure. Use --password-stdin.\n');
      password = values.password;
    } else {
      throw new UsageError('give the password with --password-stdin');
    }
    if (password === '') throw new UsageError('the password is empty');

    const credential = { username, password };
    const options = registryOptions(values as RegistryFlagValues, io);
    const client = new RegistryClient(registry, { ...options, credentials: credential });
    try {
      await client.checkLogin(io.signal === undefined ? {} : { signal: io.signal });
    } finally {
      await client.close();
    }
    const path = authFile(values as RegistryFlagValues, io);
    await storeDockerCredential(registry, credential, { env: io.env, ...(path === undefined ? {} : { path }) });
    io.stdout.write('Login Succeeded\n');
    return 0;
  },
};
