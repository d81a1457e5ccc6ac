/** otlp_grpc: spans exported over OTLP gRPC, through h2o-otel's batch processor, to a receiver in another process. */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { OtlpTraceEncoder } from '../src/export/otlp-encoder.js';
import type { ExportResult } from '@opentelemetry/core';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { createOtlpExporter } from '../src/export/otlp.js';
import { runPipeline } from './pipeline.js';

/** What the receiver saw: spans (SERVER ones apart) and export requests. */
export interface ReceiverCounts {
  spans: number;
  serverSpans: number;
  requests: number;
}

export interface CountReceiver {
  readonly url: string;
  readonly child: ChildProcess;
  counts(): Promise<ReceiverCounts>;
  close(): void;
}

/** A counting receiver in its own process, on `port` (default: any free one). */
export async function startCountReceiver(port = 0): Promise<CountReceiver> {
  const child = fork(fileURLToPath(new URL('./count-receiver.js', import.meta.url)), [String(port)], {
    stdio: 'inherit',
  });
  const bound = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`count receiver exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${bound}`,
    child,
    counts: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as ReceiverCounts));
        child.send('counts');
      }),
    close: () => child.kill(),
  };
}

/** Keeps the spans the pipeline produced, to replay them into the exporter as fast as it takes them. */
class CollectingExporter implements SpanExporter {
  readonly spans: ReadableSpan[] = [];
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    for (const s of spans) this.spans.push(s);
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export interface OtlpResult {
  spans: number;
  spans_per_s: number;
  dropped: number;
  received: number;
  /** h2o-otel's encoder alone on the same spans, same batches, same process: the exporter's ceiling. */
  serializer_only_spans_per_s: number;
  /** The SDK's ProtobufTraceSerializer alone on the same batches, for comparison. */
  sdk_serializer_only_spans_per_s: number;
  ratio_to_serializer: number;
  /** Of the measured export's wall time: inside the serializer the exporter calls, and on a CPU at all. */
  serializer_share_of_export: number;
  cpu_share_of_export: number;
}

/**
 * Times every call the exporter makes to its encoder while `run` runs: the exporter's serializer calls
 * `OtlpTraceEncoder.prototype.encode`, so that method is wrapped for the measured pass and restored after.
 */
async function timingSerializer(
  run: () => Promise<number>,
): Promise<{ seconds: number; serializeSeconds: number }> {
  const proto = OtlpTraceEncoder.prototype as { encode: (spans: readonly ReadableSpan[]) => Uint8Array };
  const original = proto.encode;
  let ns = 0n;
  proto.encode = function (this: OtlpTraceEncoder, spans) {
    const t0 = process.hrtime.bigint();
    const body = original.call(this, spans);
    ns += process.hrtime.bigint() - t0;
    return body;
  };
  try {
    const seconds = await run();
    return { seconds, serializeSeconds: Number(ns) / 1e9 };
  } finally {
    proto.encode = original;
  }
}

const SERIALIZER_PASSES = 3;

/** Spans/s of `serialize` alone over `target` spans taken from `sample` in export-sized batches. */
function serializerOnly(
  serialize: (spans: ReadableSpan[]) => Uint8Array | undefined,
  sample: readonly ReadableSpan[],
  target: number,
  batch: number,
): number {
  const batches: ReadableSpan[][] = [];
  for (let sent = 0; sent < target;) {
    const b: ReadableSpan[] = [];
    while (b.length < batch && sent < target) b.push(sample[sent++ % sample.length]!);
    batches.push(b);
  }
  const t0 = process.hrtime.bigint();
  let bytes = 0;
  for (const b of batches) bytes += serialize(b)?.length ?? 0;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return bytes > 0 ? Math.round(target / seconds) : 0;
}

export async function otlpGrpcBench(input: Buffer, target: number): Promise<OtlpResult> {
  const collected = new CollectingExporter();
  await runPipeline(input, collected);
  const sample = collected.spans;
  const encoder = new OtlpTraceEncoder();
  const ours = (spans: ReadableSpan[]): Uint8Array => encoder.encode(spans);
  const sdk = (spans: ReadableSpan[]): Uint8Array | undefined =>
    ProtobufTraceSerializer.serializeRequest(spans);
  const batch = DEFAULT_BATCH_OPTIONS.maxExportBatchSize;
  for (const f of [ours, sdk]) serializerOnly(f, sample, Math.min(target, 20_000), batch); // warm up
  // The fastest of a few passes, alternating: noise on a shared machine only ever adds time.
  let ceiling = 0;
  let sdkCeiling = 0;
  for (let pass = 0; pass < SERIALIZER_PASSES; pass++) {
    ceiling = Math.max(ceiling, serializerOnly(ours, sample, target, batch));
    sdkCeiling = Math.max(sdkCeiling, serializerOnly(sdk, sample, target, batch));
  }
  const rx = await startCountReceiver();
  try {
    const processor = new CountingBatchProcessor(
      createOtlpExporter({ protocol: 'grpc', url: rx.url, headers: {} }),
      {
        ...DEFAULT_BATCH_OPTIONS,
        maxQueueSize: 1 << 18,
      },
    );
    // Spans are handed to the processor as the CLI's span factory does. The first pass connects and warms up the
    // export path (it is not timed); the second is measured.
    const feed = async (n: number): Promise<number> => {
      const t0 = process.hrtime.bigint();
      let sent = 0;
      while (sent < n) {
        for (const s of sample) {
          processor.onEnd(s);
          if (++sent >= n) break;
        }
        await new Promise((r) => setImmediate(r));
      }
      await processor.forceFlush();
      return Number(process.hrtime.bigint() - t0) / 1e9;
    };
    const warmUp = sample.length;
    await feed(warmUp);
    const cpu0 = process.cpuUsage();
    const { seconds, serializeSeconds } = await timingSerializer(() => feed(target));
    const cpu = process.cpuUsage(cpu0);
    await processor.shutdown(5000);
    const counts = await rx.counts();
    const spansPerS = Math.round(target / seconds);
    return {
      spans: target,
      spans_per_s: spansPerS,
      dropped: processor.stats.dropped + processor.stats.failed,
      received: counts.spans - warmUp,
      serializer_only_spans_per_s: ceiling,
      sdk_serializer_only_spans_per_s: sdkCeiling,
      ratio_to_serializer: Math.round((100 * spansPerS) / ceiling) / 100,
      serializer_share_of_export: Math.round((100 * serializeSeconds) / seconds) / 100,
      cpu_share_of_export: Math.round((cpu.user + cpu.system) / 1e4 / seconds) / 100,
    };
  } finally {
    rx.close();
  }
}
