/** otlp_grpc: spans exported over OTLP gRPC, through h2o-otel's batch processor, to a receiver in another process. */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { createOtlpExporter } from '../src/export/otlp.js';
import { runPipeline } from './pipeline.js';

export interface CountReceiver {
  readonly url: string;
  readonly child: ChildProcess;
  counts(): Promise<{ spans: number; serverSpans: number; requests: number }>;
  close(): void;
}

export async function startCountReceiver(): Promise<CountReceiver> {
  const child = fork(fileURLToPath(new URL('./count-receiver.js', import.meta.url)), [], {
    stdio: 'inherit',
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`count receiver exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    child,
    counts: () =>
      new Promise((resolve) => {
        child.once('message', (m) => resolve(m as { spans: number; serverSpans: number; requests: number }));
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
}

export async function otlpGrpcBench(input: Buffer, target: number): Promise<OtlpResult> {
  const collected = new CollectingExporter();
  await runPipeline(input, collected);
  const sample = collected.spans;
  const rx = await startCountReceiver();
  try {
    const processor = new CountingBatchProcessor(
      createOtlpExporter({ protocol: 'grpc', url: rx.url, headers: {} }),
      {
        ...DEFAULT_BATCH_OPTIONS,
        maxQueueSize: 1 << 18,
      },
    );
    // The provider wires the processor like the CLI does; spans are handed to it directly.
    new BasicTracerProvider({ spanProcessors: [processor] });
    const t0 = process.hrtime.bigint();
    let sent = 0;
    while (sent < target) {
      for (const s of sample) {
        processor.onEnd(s);
        if (++sent >= target) break;
      }
      await new Promise((r) => setImmediate(r));
    }
    await processor.forceFlush();
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    await processor.shutdown(5000);
    const counts = await rx.counts();
    return {
      spans: sent,
      spans_per_s: Math.round(sent / seconds),
      dropped: processor.stats.dropped + processor.stats.failed,
      received: counts.spans,
    };
  } finally {
    rx.close();
  }
}
