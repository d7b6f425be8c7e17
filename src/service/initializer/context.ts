import { StevedoreError } from '../../errors.js';

/** What an initializer may use while it fills a workspace. */
export interface InitializerContext {
  readonly signal?: AbortSignal | undefined;
  /**
   * Told every secret the initializer learns (git passwords, one-time-secret answers) before any
   * output that might contain it is logged or thrown, so the build's censor can remove it.
   */
  readonly onSecret: (secret: string) => void;
  /** One progress line for the build log. */
  readonly log: (line: string) => void;
  /** A private directory (mode 0700) for helper files such as the git askpass script. */
  readonly scratchDir: string;
  /** Bound on each network request an initializer makes itself (downloads, one-time secrets). */
  readonly requestTimeoutMs?: number | undefined;
}

/** An initializer could not produce the build context; the message is safe to show (no credentials, URLs redacted). */
export class InitializerError extends StevedoreError {
  override name = 'InitializerError';
  readonly initializer: string;

  constructor(initializer: string, message: string, options?: { cause?: unknown }) {
    super('INITIALIZER_FAILED', `${initializer} initializer: ${message}`, options);
    this.initializer = initializer;
  }
}

/** A URL safe for a message: no user info, no query (one-time-secret and signed URLs carry tokens there). */
export function safeUrl(input: string): string {
  try {
    const url = new URL(input);
    url.username = '';
    url.password = '';
    url.search = url.search === '' ? '' : '?REDACTED';
    url.hash = '';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Removes user info from every URL in a text (git prints remote URLs in its errors). */
export function stripUrlCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@]*@/gi, '$1');
}
