/**
 * pipeline: bytes → decode → correlate → map → OTLP protobuf (the real serializer; the network replaced by a byte
 * counter), against a floor that only splits the same bytes into lines and JSON.parses them, in the same process.
 */
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { defaultResource } from '@opentelemetry/resources';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import { DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../src/otel/url.js';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { RedMetrics } from '../src/otel/red-metrics.js';
import { INSTRUMENTATION_SCOPE } from '../src/otel/scope.js';
import { buildPipeline } from '../src/pipeline.js';
import type { Pipeline, PipelineEdges } from '../src/pipeline.js';
import { JsonLinesSession } from '../src/sources/json-lines.js';
import { JsonLineDecoder } from '../src/events/decode-json.js';
import { newDecodeStats } from '../src/events/types.js';
import type { ProbeEvent } from '../src/events/types.js';
import { DiscardExporter } from '../src/export/discard-exporter.js';
import { OtlpTraceEncoder } from '../src/export/otlp-encoder.js';

const CHUNK = 64 * 1024;

/**
 * Serializes every batch exactly as the OTLP exporters do (h2o-otel's encoder), and counts the bytes and the time
 * it took.
 */
export class SerializingExporter implements SpanExporter {
  bytes = 0;
  spans = 0;
  serializeNs = 0n;
  private readonly _encoder = new OtlpTraceEncoder();
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const t0 = process.hrtime.bigint();
    const body = this._encoder.encode(spans);
    this.serializeNs += process.hrtime.bigint() - t0;
    this.bytes += body.length;
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

/** What the pipeline may do besides making spans, each measured on its own. */
export interface PipelineFeatures {
  /** The RED metrics, recorded as the CLI records them (into a provider whose reader is never asked to collect). */
  readonly metrics?: boolean;
}

class IdleReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

function benchMetrics(): PipelineEdges['metrics'] {
  const provider = new MeterProvider({ resource: defaultResource(), readers: [new IdleReader()] });
  return { meter: provider.getMeter('bench'), red: new RedMetrics(defaultResource(), INSTRUMENTATION_SCOPE) };
}

/** The pipeline as the CLI builds it, with the stream's captured headers (H2O sends response header lines only then). */
function benchPipeline(
  exporter: SpanExporter,
  maxQueueSize: number,
  stopAtRecords = false,
  features: PipelineFeatures = {},
): Pipeline {
  return buildPipeline(
    {
      correlator: DEFAULT_CORRELATOR_OPTIONS,
      maxLineBytes: 16 << 20,
      headers: {
        request: ['user-agent'],
        response: ['content-type'],
        sanitize: [],
        maxValueLength: 4096,
      },
      sensitiveQueryParams: DEFAULT_SENSITIVE_QUERY_PARAMS,
      sampler: new AlwaysOnSampler(),
      resource: defaultResource(),
      batch: { ...DEFAULT_BATCH_OPTIONS, maxQueueSize },
    },
    { exporter, stopAtRecords, metrics: features.metrics === true ? benchMetrics() : undefined },
  );
}

/** Decode only (lines → events, as the pipeline decodes them), the first rung of the stage ladder: seconds. */
export function decodeSeconds(bytes: Buffer): number {
  const pipeline = benchPipeline(new DiscardExporter(), DEFAULT_BATCH_OPTIONS.maxQueueSize);
  const decoder = new JsonLineDecoder(pipeline.decode.json, newDecodeStats());
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
  features: PipelineFeatures = {},
): Promise<PipelineRun> {
  const pipeline = benchPipeline(exporter, 1 << 20, upTo === 'correlate', features);
  const { processor, stats } = pipeline;
  const t0 = process.hrtime.bigint();
  const session = new JsonLinesSession(pipeline);
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
    events: stats.decode.events,
    spans: stats.spans.requestSpans + stats.spans.connectionSpans + stats.spans.tunnelSpans,
    seconds,
    otlpBytes: exporter instanceof SerializingExporter ? exporter.bytes : 0,
    serializeSeconds: exporter instanceof SerializingExporter ? Number(exporter.serializeNs) / 1e9 : 0,
    dropped: stats.export.dropped + stats.export.failed,
    unusedHeaders: stats.decode.unusedHeaders,
    unusedEvents: stats.decode.unusedEvents,
  };
}
