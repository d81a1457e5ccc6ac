// Spans built straight from records: the configured sampler decides, parents are followed, only sampled spans leave.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ROOT_CONTEXT, SpanKind, TraceFlags, trace } from '@opentelemetry/api';
import { defaultResource } from '@opentelemetry/resources';
import type { Attributes } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  SamplingDecision,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan, Sampler, SamplingResult } from '@opentelemetry/sdk-trace-base';
import { AttributeList } from '../../src/otel/attribute-list.js';
import { SpanFactory } from '../../src/otel/finished-span.js';
import { ignoresAttributes, samplerFrom, SAMPLER_NAMES } from '../../src/otel/sampler.js';

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
    const s = spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [1, 0], new AttributeList(), []);
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
    AttributeList.from({ 'http.request.method': 'GET' }),
    [],
  );
  child.events.push({ name: 'response_start', time: [10, 500] });
  spans.end(child, [11, 250]);
  spans.end(spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [10, 0], new AttributeList(), []), [10, 1]);
  assert.equal(out.length, 1);
  const s = out[0]!;
  assert.equal(s.spanContext().traceId, parent.traceId);
  assert.notEqual(s.spanContext().spanId, parent.spanId);
  assert.equal(s.parentSpanContext?.spanId, parent.spanId);
  assert.deepEqual(s.duration, [1, 250]);
  assert.deepEqual(s.events, [{ name: 'response_start', time: [10, 500] }]);
  assert.equal(spans.notSampled, 1);
});

/** A sampler that reads attributes: it keeps what it was shown and adds its own. */
class ReadingSampler implements Sampler {
  seen: Attributes[] = [];
  shouldSample(
    _ctx: unknown,
    _traceId: string,
    _name: string,
    _kind: SpanKind,
    attributes: Attributes,
  ): SamplingResult {
    this.seen.push({ ...attributes });
    return {
      decision: SamplingDecision.RECORD_AND_SAMPLED,
      attributes: { 'sampler.added': 'yes', 'http.request.method': 'POST' },
    };
  }
  toString(): string {
    return 'ReadingSampler';
  }
}

test('a sampler that may read attributes is shown them, and what it returns is added as Object.assign adds', () => {
  const sampler = new ReadingSampler();
  const { spans, out } = factory(sampler);
  const s = spans.start(
    ROOT_CONTEXT,
    'GET',
    SpanKind.SERVER,
    [1, 0],
    AttributeList.from({ 'http.request.method': 'GET', 'url.path': '/' }),
    [],
  );
  spans.end(s, [1, 5]);
  assert.deepEqual(sampler.seen, [{ 'http.request.method': 'GET', 'url.path': '/' }]);
  assert.deepEqual(Object.entries(out[0]!.attributes), [
    ['http.request.method', 'POST'],
    ['url.path', '/'],
    ['sampler.added', 'yes'],
  ]);
});

test("the configured samplers and the SDK's own leaf samplers ignore attributes: no object is built for them", () => {
  for (const name of SAMPLER_NAMES) assert.ok(ignoresAttributes(samplerFrom(name, '0.5')), name);
  assert.ok(ignoresAttributes(new AlwaysOnSampler()));
  assert.ok(ignoresAttributes(new TraceIdRatioBasedSampler(0.5)));
  assert.ok(!ignoresAttributes(new ParentBasedSampler({ root: new ReadingSampler() })));
  assert.ok(!ignoresAttributes(new ReadingSampler()));
  class Subclass extends AlwaysOnSampler {}
  assert.ok(!ignoresAttributes(new Subclass()));

  let built = 0;
  class Counting extends AttributeList {
    override toAttributes(): Attributes {
      built++;
      return super.toAttributes();
    }
  }
  const { spans, out } = factory(samplerFrom('parentbased_always_on', undefined));
  const list = new Counting();
  spans.end(spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [1, 0], list, []), [1, 5]);
  assert.equal(out.length, 1);
  assert.equal(built, 0);
  factory(new ReadingSampler()).spans.start(ROOT_CONTEXT, 'GET', SpanKind.SERVER, [1, 0], list, []);
  assert.equal(built, 1);
});
