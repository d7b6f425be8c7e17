// The two call shapes the services use (unary and server-streaming), with everything every
// handler shares: an AbortSignal that fires when the client goes away, errors mapped through the
// one table in status.ts, backpressure on streams, and go-grpc-prometheus's metrics (mk3's
// dashboards read grpc_server_started_total, grpc_server_handled_total{grpc_code},
// grpc_server_handling_seconds, grpc_server_msg_received_total, grpc_server_msg_sent_total).
import { status as GrpcStatus, type handleServerStreamingCall, type handleUnaryCall, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import type { MetricsRegistry } from '../index.js';
import { grpcCodeName, grpcFailureOf } from './status.js';

/** go-grpc-prometheus's handling-time buckets as mk3 configures them: 5 ms to 10 minutes. */
export const HANDLING_SECONDS_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

type CallType = 'unary' | 'server_stream';
type Labels = { grpc_service: string; grpc_method: string; grpc_type: CallType };

/** The grpc_server_* families, registered once per MetricsRegistry. */
export class GrpcServerMetrics {
  private readonly started;
  private readonly handled;
  private readonly seconds;
  private readonly received;
  private readonly sent;

  constructor(registry: MetricsRegistry) {
    const labels = ['grpc_method', 'grpc_service', 'grpc_type'] as const;
    this.started = registry.counter('grpc_server_started_total', 'Total number of RPCs started on the server.', labels);
    this.handled = registry.counter('grpc_server_handled_total', 'Total number of RPCs completed on the server, regardless of success or failure.', [...labels, 'grpc_code']);
    this.seconds = registry.histogram('grpc_server_handling_seconds', 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.', HANDLING_SECONDS_BUCKETS, labels);
    this.received = registry.counter('grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', labels);
    this.sent = registry.counter('grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', labels);
  }

  /** Counts a call's start and request; returns what its end and its sent messages record. */
  begin(labels: Labels): { sent(): void; end(code: GrpcStatus): void } {
    const start = process.hrtime.bigint();
    this.started.inc(labels);
    this.received.inc(labels);
    return {
      sent: () => this.sent.inc(labels),
      end: (code) => {
        this.handled.inc({ ...labels, grpc_code: grpcCodeName(code) });
        this.seconds.observe(Number(process.hrtime.bigint() - start) / 1e9, labels);
      },
    };
  }
}

/** An AbortSignal that fires when the client cancels the call (or its deadline passes, or the server is forced down). */
function clientSignal(call: Pick<ServerUnaryCall<unknown, unknown>, 'cancelled' | 'once' | 'off'>): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onCancelled = (): void => controller.abort(new Error('the client cancelled the call'));
  if (call.cancelled) onCancelled();
  else call.once('cancelled', onCancelled);
  return { signal: controller.signal, dispose: () => call.off('cancelled', onCancelled) };
}

/** Resolves when the stream wants more (or the client is gone, so waiting would never end). */
function drained(call: ServerWritableStream<unknown, unknown>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Builds handlers for one service, all reporting into the same metrics. */
export class CallFactory {
  constructor(
    private readonly metrics: GrpcServerMetrics,
    private readonly service: string,
  ) {}

  /** A unary handler: `fn` gets the decoded request and the client's signal; its result is the response. */
  unary<Req, Res>(method: string, fn: (request: Req, signal: AbortSignal) => Promise<Res>): handleUnaryCall<Req, Res> {
    return (call, callback) => {
      const record = this.metrics.begin({ grpc_service: this.service, grpc_method: method, grpc_type: 'unary' });
      const client = clientSignal(call);
      const respond = async (): Promise<GrpcStatus> => {
        let response: Res;
        try {
          response = await fn(call.request, client.signal);
        } catch (err) {
          const failure = grpcFailureOf(err);
          callback(failure);
          return failure.code;
        }
        record.sent();
        callback(null, response);
        return GrpcStatus.OK;
      };
      void respond().then((code) => {
        client.dispose();
        record.end(call.cancelled ? GrpcStatus.CANCELLED : code);
      });
    };
  }

  /**
   * A server-streaming handler: every value `fn` yields is written (waiting for the client to
   * take it), the stream ends OK when the iterable does, and with the mapped status when it
   * throws. A client that goes away aborts `signal`, which ends only this call's iteration.
   */
  serverStream<Req, Res>(method: string, fn: (request: Req, signal: AbortSignal) => AsyncIterable<Res>): handleServerStreamingCall<Req, Res> {
    return (call) => {
      const record = this.metrics.begin({ grpc_service: this.service, grpc_method: method, grpc_type: 'server_stream' });
      const client = clientSignal(call);
      const run = async (): Promise<GrpcStatus> => {
        try {
          for await (const message of fn(call.request, client.signal)) {
            if (client.signal.aborted) break;
            record.sent();
            if (!call.write(message)) await drained(call as ServerWritableStream<unknown, unknown>, client.signal);
          }
          if (client.signal.aborted) return GrpcStatus.CANCELLED;
          call.end();
          return GrpcStatus.OK;
        } catch (err) {
          if (client.signal.aborted) return GrpcStatus.CANCELLED;
          const failure = grpcFailureOf(err);
          // grpc-js ends a server stream with the status of the 'error' it is handed.
          call.emit('error', failure);
          return failure.code;
        }
      };
      void run().then((code) => {
        client.dispose();
        record.end(code);
      });
    };
  }
}
