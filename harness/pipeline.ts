/** The pipeline as tests build it: every span kept and collected, every queue large enough to drop nothing. */
import { defaultResource } from '@opentelemetry/resources';
import { AlwaysOnSampler, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import { DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import type { HeaderPolicyOptions } from '../src/otel/header-policy.js';
import { DEFAULT_SENSITIVE_QUERY_PARAMS } from '../src/otel/url.js';
import { buildPipeline } from '../src/pipeline.js';
import type { Pipeline, PipelineEdges } from '../src/pipeline.js';
import { JsonLinesSession } from '../src/sources/json-lines.js';

export interface TestPipeline {
  readonly pipeline: Pipeline;
  readonly exporter: InMemorySpanExporter;
}

export function testPipeline(
  headers: HeaderPolicyOptions,
  edges: Omit<PipelineEdges, 'exporter'> = {},
): TestPipeline {
  const exporter = new InMemorySpanExporter();
  const pipeline = buildPipeline(
    {
      correlator: DEFAULT_CORRELATOR_OPTIONS,
      maxLineBytes: 1 << 20,
      headers,
      sensitiveQueryParams: DEFAULT_SENSITIVE_QUERY_PARAMS,
      sampler: new AlwaysOnSampler(),
      resource: defaultResource(),
      batch: { ...DEFAULT_BATCH_OPTIONS, maxQueueSize: 1 << 20 },
    },
    { ...edges, exporter },
  );
  return { pipeline, exporter };
}

/** h2olog JSON lines through one session of `t`, cut into `chunk`-byte reads; the spans once all are exported. */
export async function replayInto(
  t: TestPipeline,
  bytes: Buffer,
  chunk = bytes.length,
): Promise<ReadableSpan[]> {
  const session = new JsonLinesSession(t.pipeline);
  for (let off = 0; off < bytes.length; off += chunk) session.push(bytes.subarray(off, off + chunk));
  session.end();
  await t.pipeline.processor.forceFlush();
  return t.exporter.getFinishedSpans();
}
