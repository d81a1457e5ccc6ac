/**
 * pipeline: bytes → decode → correlate → map → OTLP protobuf (the real serializer; the network replaced by a byte
 * counter), against a floor that only splits the same bytes into lines and JSON.parses them, in the same process.
 */
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { defaultResource } from '@opentelemetry/resources';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { headerPolicy } from '../src/otel/header-policy.js';
import { SpanFactory } from '../src/otel/finished-span.js';
import { SpanMapper } from '../src/otel/span-mapper.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../src/otel/url.js';
import { Pipeline } from '../src/pipeline.js';
import { JsonLineDecoder } from '../src/events/decode-json.js';
import { newDecodeStats } from '../src/events/types.js';
import type { ProbeEvent } from '../src/events/types.js';
import { DiscardExporter } from '../src/export/discard-exporter.js';

const CHUNK = 64 * 1024;

/**
 * Serializes every batch exactly as the OTLP/HTTP exporter would, and counts the bytes and the time the real
 * serializer took: a part of the pipeline no change of ours can make cheaper.
 */
export class SerializingExporter implements SpanExporter {
  bytes = 0;
  spans = 0;
  serializeNs = 0n;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const t0 = process.hrtime.bigint();
    const body = ProtobufTraceSerializer.serializeRequest(spans);
    this.serializeNs += process.hrtime.bigint() - t0;
    this.bytes += body?.length ?? 0;
    this.spans += spans.length;
    done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

export function floorEventsPerSecond(bytes: Buffer): { events: number; seconds: number } {
  const t0 = process.hrtime.bigint();
  let events = 0;
  let start = 0;
  for (;;) {
    const nl = bytes.indexOf(0x0a, start);
    if (nl < 0) break;
    const obj: unknown = JSON.parse(bytes.toString('utf8', start, nl));
    if (obj !== null) events++;
    start = nl + 1;
  }
  return { events, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

export interface PipelineRun {
  events: number;
  spans: number;
  seconds: number;
  otlpBytes: number;
  /** Of `seconds`, the time inside the real OTLP serializer. */
  serializeSeconds: number;
  dropped: number;
  /** Header lines no span uses: counted, not parsed. */
  unusedHeaders: number;
  /** Other lines no span uses (QUIC streams without a request, TLS secrets): counted, not parsed. */
  unusedEvents: number;
}

/** Correlates and drops the records: the pipeline up to the correlator, for the stage ladder. */
class RecordsOnly extends SpanMapper {
  override requestCompleted(): void {}
  override connectionClosed(): void {}
}

function benchMapper(processor: CountingBatchProcessor, recordsOnly = false): SpanMapper {
  const spans = new SpanFactory(processor, {
    sampler: new AlwaysOnSampler(),
    resource: defaultResource(),
    scope: { name: 'h2o-otel-bench' },
  });
  const opts = {
    // The stream has H2O's response header lines, which H2O sends only when some are captured.
    headers: headerPolicy({
      request: ['user-agent'],
      response: ['content-type'],
      sanitize: [],
      maxValueLength: 4096,
    }),
    sensitiveQueryParams: new Set(DEFAULT_SENSITIVE_QUERY_PARAMS),
  };
  return recordsOnly ? new RecordsOnly(spans, opts) : new SpanMapper(spans, opts);
}

/** Decode only (lines → events, as the pipeline decodes them), the first rung of the stage ladder: seconds. */
export function decodeSeconds(bytes: Buffer): number {
  const mapper = benchMapper(new CountingBatchProcessor(new DiscardExporter(), DEFAULT_BATCH_OPTIONS));
  const pipeline = new Pipeline(
    { correlator: DEFAULT_CORRELATOR_OPTIONS, maxLineBytes: 16 << 20, qlog: undefined },
    mapper,
    undefined,
  );
  const decoder = new JsonLineDecoder(pipeline.decoderOptions, newDecodeStats());
  const out: ProbeEvent[] = [];
  const t0 = process.hrtime.bigint();
  for (let off = 0; off < bytes.length; off += CHUNK) {
    out.length = 0;
    decoder.push(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)), out);
  }
  decoder.end(out);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * Run the pipeline over `bytes`, with `exporter` (default: serialize and count) behind the real processor; with
 * `upTo` 'correlate', the records are dropped instead of mapped to spans.
 */
export async function runPipeline(
  bytes: Buffer,
  exporter: SpanExporter = new SerializingExporter(),
  upTo: 'correlate' | 'export' = 'export',
): Promise<PipelineRun> {
  const processor = new CountingBatchProcessor(exporter, { ...DEFAULT_BATCH_OPTIONS, maxQueueSize: 1 << 20 });
  const mapper = benchMapper(processor, upTo === 'correlate');
  const pipeline = new Pipeline(
    { correlator: DEFAULT_CORRELATOR_OPTIONS, maxLineBytes: 16 << 20, qlog: undefined },
    mapper,
    undefined,
  );
  const t0 = process.hrtime.bigint();
  const session = pipeline.newSession();
  for (let off = 0; off < bytes.length; off += CHUNK) {
    session.push(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)));
    // Let the batch processor's exports run between chunks, as they do between socket reads.
    if ((off / CHUNK) % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  session.end();
  await processor.forceFlush();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  await processor.shutdown(5000);
  return {
    events: pipeline.decodeStats.events,
    spans: mapper.stats.requestSpans + mapper.stats.connectionSpans + mapper.stats.tunnelSpans,
    seconds,
    otlpBytes: exporter instanceof SerializingExporter ? exporter.bytes : 0,
    serializeSeconds: exporter instanceof SerializingExporter ? Number(exporter.serializeNs) / 1e9 : 0,
    dropped: processor.stats.dropped + processor.stats.failed,
    unusedHeaders: pipeline.decodeStats.unusedHeaders,
    unusedEvents: pipeline.decodeStats.unusedEvents,
  };
}
