// Load, bounded and self-stopping: many concurrent Build streams against one server. Every call
// count is fixed and every wait ends with the builds (which the test registry makes quick).
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildResponse__Output } from '../../src/api/gen/builder/BuildResponse.js';
import { collect, gitSource, metricsText, sample, startApiSuite, unary, type ApiSuite } from './helpers.js';

const CONCURRENCY = 2;
const STARTED = 'gitpod_image_builder_builds_started_total';
const RUNNING = 'stevedore_image_builder_builds_running';

let suite: ApiSuite;

beforeAll(async () => {
  suite = await startApiSuite({
    files: {
      'Dockerfile': 'FROM ${BASE}\nCOPY hello.txt /hello.txt\n',
      'hello.txt': 'hello from git\n',
      'slow/Dockerfile': 'FROM ${BASE}\nRUN sleep 3\n',
      // A RUN of its own, so the build cache cannot answer it from the slow build above.
      'shutdown/Dockerfile': 'FROM ${BASE}\nRUN sleep 5 && echo cancelled before this\n',
    },
    concurrency: CONCURRENCY,
  });
});

afterAll(async () => {
  await suite?.stop();
});

async function started(): Promise<number> {
  return sample(await metricsText(suite.server), STARTED);
}

describe('concurrent Build calls', () => {
  it('starts exactly one build for 50 identical calls, and all 50 streams end alike', async () => {
    const before = await started();
    const source = gitSource(suite.repo, { dockerfileVersion: 'identical' });
    const results = await Promise.all(Array.from({ length: 50 }, () => collect(suite.clients.imageBuilder.Build({ source }))));
    expect(results.map((r) => r.error)).toEqual(Array(50).fill(undefined));
    const terminal = results.map((r) => r.messages.at(-1)!);
    expect(new Set(terminal.map((t) => t.status))).toEqual(new Set(['done_success']));
    expect(new Set(terminal.map((t) => t.ref)).size).toBe(1);
    // Callers that arrived while it ran followed the same build.
    const ids = new Set(results.flatMap((r) => r.messages.map((m) => m.info?.build_id)).filter((id) => id !== undefined));
    expect(ids.size).toBe(1);
    expect((await started()) - before).toBe(1);
  });

  it('runs 20 distinct builds under the concurrency limit, none lost', async () => {
    const before = await started();
    let highest = 0;
    let polling = true;
    // Samples the running gauge while the builds go on (a bounded loop: it stops with them).
    const poll = (async () => {
      while (polling) {
        highest = Math.max(highest, sample(await metricsText(suite.server), RUNNING));
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => collect(suite.clients.imageBuilder.Build({ source: gitSource(suite.repo, { dockerfileVersion: `distinct-${i}` }) }))),
    ).finally(() => {
      polling = false;
    });
    await poll;
    for (const [i, result] of results.entries()) {
      expect(result.error, `build ${i}`).toBeUndefined();
      expect(result.messages[0]!.status, `build ${i}`).toBe('running');
      expect(result.messages.at(-1)!.status, `build ${i}: ${result.messages.at(-1)!.message}`).toBe('done_success');
    }
    expect(new Set(results.map((r) => r.messages[0]!.ref)).size).toBe(20);
    expect((await started()) - before).toBe(20);
    expect(highest).toBeGreaterThan(0);
    expect(highest).toBeLessThanOrEqual(CONCURRENCY);
  });

  it('goes on with a build when one of its clients disconnects', async () => {
    const source = gitSource(suite.repo, { dockerfilePath: 'slow/Dockerfile' });
    const leaving = suite.clients.imageBuilder.Build({ source });
    const first = await new Promise<BuildResponse__Output>((resolve, reject) => {
      leaving.once('data', resolve);
      leaving.once('error', reject);
    });
    expect(first.status).toBe('running');
    const staying = collect(suite.clients.imageBuilder.Build({ source }));
    const left = collect(leaving);
    leaving.cancel();
    expect((await left).error?.code).toBe(status.CANCELLED);

    const { messages, error } = await staying;
    expect(error).toBeUndefined();
    expect(messages[0]).toMatchObject({ status: 'running', info: { build_id: first.info!.build_id } });
    expect(messages.at(-1)!.status).toBe('done_success');
    const { imageBuilder } = suite.clients;
    expect((await unary(imageBuilder, imageBuilder.ResolveWorkspaceImage, { source })).status).toBe('done_success');
    // The server saw the departure as a cancelled call, not as an error of its own.
    const metrics = await metricsText(suite.server);
    expect(sample(metrics, 'grpc_server_handled_total', { grpc_method: 'Build', grpc_code: 'Canceled' })).toBeGreaterThan(0);
  });
});

describe('graceful shutdown', () => {
  it('gives a running build the grace period, then cancels it, ends its stream with done_failure, and stops answering', async () => {
    const source = gitSource(suite.repo, { dockerfilePath: 'shutdown/Dockerfile' });
    const stream = suite.clients.imageBuilder.Build({ source });
    const finished = collect(stream);
    const first = await new Promise<BuildResponse__Output>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    expect(first.status).toBe('running');

    // The build sleeps 5 s; 300 ms of grace is not enough, so it is cancelled.
    const closed = suite.server.close(300);
    const { messages, error } = await finished;
    await closed;
    expect(error).toBeUndefined();
    const last = messages.at(-1)!;
    expect(last.status).toBe('done_failure');
    expect(last.message).toMatch(/shutting down/);

    const refused = await collect(suite.clients.imageBuilder.Build({ source }));
    expect(refused.error?.code).toBe(status.UNAVAILABLE);
    expect((await fetch(`${suite.server.httpUrl}/live`).catch((err: unknown) => err)) instanceof Error).toBe(true);
  });
});
