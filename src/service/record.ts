import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { BuildLog } from './logs.js';
import type { ImageBuildInfo, ImageBuildStatus, ImageBuildUpdate } from './types.js';

/** The header `log_info.headers` names; mk3's, so Gitpod's server passes it on unchanged. */
export const LOG_TOKEN_HEADER = 'x-gitpod-owner-token';

export interface BuildRecordInit {
  readonly ref: string;
  readonly baseRef: string;
  /** Base URL of the HTTP listener: the log is at `<base>/builds/<buildId>/log`. */
  readonly httpBaseUrl: string;
  readonly maxLogBytes: number;
  readonly triggeredBy?: string | undefined;
}

/**
 * One real build, as its callers see it: identity (a random UUID, as mk3 since 2021), status,
 * the updates published so far, its log, and the token that authorises reading the log over
 * HTTP. Every caller of an identical build follows the same record (decision 3).
 */
export class BuildRecord {
  readonly buildId = randomUUID();
  readonly ref: string;
  readonly baseRef: string;
  /** Unix seconds. */
  readonly startedAt = Math.floor(Date.now() / 1000);
  readonly startedAtMs = Date.now();
  readonly triggeredBy: string | undefined;
  readonly log: BuildLog;
  /** Aborted to cancel the build (shutdown, time limit); client disconnects never touch it. */
  readonly controller = new AbortController();
  readonly #logToken = randomBytes(24).toString('base64url');
  readonly #httpBaseUrl: string;
  readonly #updates: ImageBuildUpdate[] = [];
  #waiters: (() => void)[] = [];
  #status: ImageBuildStatus = 'running';

  constructor(init: BuildRecordInit) {
    this.ref = init.ref;
    this.baseRef = init.baseRef;
    this.triggeredBy = init.triggeredBy;
    this.#httpBaseUrl = init.httpBaseUrl.replace(/\/+$/, '');
    this.log = new BuildLog(init.maxLogBytes);
  }

  get status(): ImageBuildStatus {
    return this.#status;
  }

  get finished(): boolean {
    return this.#status === 'done_success' || this.#status === 'done_failure';
  }

  info(): ImageBuildInfo {
    return {
      ref: this.ref,
      baseRef: this.baseRef,
      status: this.#status,
      startedAt: this.startedAt,
      buildId: this.buildId,
      logInfo: { url: `${this.#httpBaseUrl}/builds/${this.buildId}/log`, headers: { [LOG_TOKEN_HEADER]: this.#logToken } },
    };
  }

  /** Whether `token` is this build's log token (constant time). */
  authorizes(token: string | undefined): boolean {
    if (token === undefined) return false;
    const expected = Buffer.from(this.#logToken);
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** Publishes an update to every follower. Nothing is published after a terminal one. */
  publish(status: ImageBuildStatus, message: string): void {
    if (this.finished) return;
    this.#status = status;
    const censored = this.log.censor.apply(message);
    this.#updates.push({ ref: this.ref, baseRef: this.baseRef, status, message: censored, info: this.info() });
    if (this.finished) this.log.end();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  /**
   * The updates a caller sees: the latest one (for a caller that arrives late, the build's
   * current `running` state with its info), then every later one up to the terminal update.
   * Ends early, without error, when `signal` aborts (the client went away; the build goes on).
   */
  async *follow(signal?: AbortSignal): AsyncGenerator<ImageBuildUpdate> {
    let next = Math.max(0, this.#updates.length - 1);
    while (!signal?.aborted) {
      if (next < this.#updates.length) {
        const update = this.#updates[next++]!;
        yield update;
        if (update.status === 'done_success' || update.status === 'done_failure') return;
        continue;
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        this.#waiters.push(done);
        signal?.addEventListener('abort', done, { once: true });
      });
    }
  }

  /** Resolves once the build has a terminal status. */
  async settled(): Promise<ImageBuildUpdate> {
    for await (const update of this.follow()) {
      if (update.status === 'done_success' || update.status === 'done_failure') return update;
    }
    throw new Error('unreachable: follow ended without a terminal update');
  }
}
