// Spans built straight from records: the configured sampler decides, parents are followed, only sampled spans leave.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { defaultResource } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, Sampler } from '@opentelemetry/sdk-trace-base';
import { SpanFactory } from '../../src/otel/finished-span.js';

function factory(sampler: Sampler): { spans: SpanFactory; out: ReadableSpan[] } {
  const out: ReadableSpan[] = [];
  const spans = new SpanFactory(
    { onEnd: (s) => out.push(s) },
    { sampler, resource: defaultResource(), scope: { name: 'test' } },
  );
  return { spans, out };
}

test('a trace-id ratio sampler keeps about its share of root spans and counts the rest', () => {
  const { spans, out } = factory(new TraceIdRatioBasedSampler(0.25));
  for (let i = 0; i < 4000; i++) {
    const s = spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [1, 0], {}, []);
    spans.end(s, [1, 5]);
  }
  assert.ok(out.length > 800 && out.length < 1200, `kept ${out.length} of 4000`);
  assert.equal(out.length + spans.notSampled, 4000);
  for (const s of out) assert.equal(s.spanContext().traceFlags & TraceFlags.SAMPLED, TraceFlags.SAMPLED);
});

test('a sampled remote parent is followed: same trace, parent span id, exported even when roots are not', () => {
  const { spans, out } = factory(new ParentBasedSampler({ root: new AlwaysOffSampler() }));
  const parent = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
  };
  const child = spans.start(
    trace.setSpanContext(ROOT_CONTEXT, parent),
    'GET',
    SpanKind.SERVER,
    [10, 0],
    { 'http.request.method': 'GET' },
    [],
  );
  child.events.push({ name: 'response_start', time: [10, 500] });
  spans.end(child, [11, 250]);
  spans.end(spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [10, 0], {}, []), [10, 1]);
  assert.equal(out.length, 1);
  const s = out[0]!;
  assert.equal(s.spanContext().traceId, parent.traceId);
  assert.notEqual(s.spanContext().spanId, parent.spanId);
  assert.equal(s.parentSpanContext?.spanId, parent.spanId);
  assert.deepEqual(s.duration, [1, 250]);
  assert.deepEqual(s.events, [{ name: 'response_start', time: [10, 500] }]);
  assert.equal(spans.notSampled, 1);
});
