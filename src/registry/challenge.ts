/**
 * `WWW-Authenticate` parsing (RFC 7235): one header may carry several challenges, and a response
 * may carry several headers. Scheme names are case-insensitive and returned lower-cased, as are
 * parameter names.
 */
export interface Challenge {
  /** `basic`, `bearer`, ... (lower case). */
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

const TOKEN = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parses every challenge of one or more `WWW-Authenticate` header values. Never throws. */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = typeof header === 'string' ? [header] : header;
  return values.flatMap(parseOne);
}

function parseOne(input: string): Challenge[] {
  const challenges: { scheme: string; params: Record<string, string> }[] = [];
  let i = 0;
  const n = input.length;
  const skipSpace = (): void => {
    while (i < n && (input[i] === ' ' || input[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN.test(input[i]!)) i++;
    return input.slice(start, i);
  };
  // Unquoted values should be tokens; some servers send URLs bare, so read up to a separator.
  const readBare = (): string => {
    const start = i;
    while (i < n && input[i] !== ',' && input[i] !== ' ' && input[i] !== '\t') i++;
    return input.slice(start, i);
  };
  const readQuoted = (): string => {
    // At the opening quote.
    i++;
    let out = '';
    while (i < n && input[i] !== '"') {
      if (input[i] === '\\' && i + 1 < n) i++;
      out += input[i];
      i++;
    }
    i++; // closing quote (or end of input)
    return out;
  };

  while (i < n) {
    skipSpace();
    if (input[i] === ',') {
      i++;
      continue;
    }
    const scheme = readToken();
    if (scheme === '') {
      i++; // an unexpected character: skip it rather than loop forever
      continue;
    }
    const challenge = { scheme: scheme.toLowerCase(), params: {} as Record<string, string> };
    challenges.push(challenge);
    // auth-params: name=value pairs separated by commas, until a token that is not followed by
    // '=' starts the next challenge.
    for (;;) {
      skipSpace();
      const save = i;
      const name = readToken();
      skipSpace();
      if (name === '' || input[i] !== '=') {
        // The next challenge's scheme (or a token68, which registries do not use): rewind.
        i = save;
        break;
      }
      i++; // '='
      skipSpace();
      const value = input[i] === '"' ? readQuoted() : readBare();
      challenge.params[name.toLowerCase()] = value;
      skipSpace();
      if (input[i] === ',') i++;
    }
  }
  return challenges;
}

/** The first challenge with the given scheme, if any. */
export function findChallenge(challenges: readonly Challenge[], scheme: 'basic' | 'bearer'): Challenge | undefined {
  return challenges.find((c) => c.scheme === scheme);
}
