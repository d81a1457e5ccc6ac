// Proves the OTLP receiver against the real exporters: whatever they put on the wire (gRPC or HTTP/protobuf,
// optionally gzip) must decode back to the spans and counters made.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Metadata } from '@grpc/grpc-js';
import { context, SpanKind, SpanStatusCode, trace, TraceFlags, ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

import { withReceiver, type OtlpReceiver, type ReceivedSpan } from '../../harness/otlp-receiver.js';

type ProtoExporterConfig = NonNullable<ConstructorParameters<typeof ProtoTraceExporter>[0]>;

const LINK_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const LINK_SPAN_ID = 'b7ad6b7169203331';
// Fixed timestamps so the fixed64 nanosecond fields can be checked exactly.
const START: [number, number] = [1_700_000_000, 123_456_789];
const EVENT_TIME: [number, number] = [1_700_000_000, 500_000_000];
const END: [number, number] = [1_700_000_001, 0];

function newProvider(exporter: SpanExporter): BasicTracerProvider {
  return new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'otlp-receiver-test' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
}

/** A SERVER root with a CLIENT child carrying every field the receiver is expected to decode. */
function emitSample(provider: BasicTracerProvider): void {
  const tracer = provider.getTracer('otlp-receiver-test-scope', '1.2.3');
  const root = tracer.startSpan('GET /', { kind: SpanKind.SERVER, startTime: START });
  const child = tracer.startSpan(
    'upstream',
    {
      kind: SpanKind.CLIENT,
      startTime: START,
      attributes: {
        'http.request.method': 'GET',
        'server.port': 8443,
        'h2o.ratio': 0.25,
        'h2o.reused': true,
        'h2o.protocols': ['h2', 'h3'],
      },
      links: [
        {
          context: { traceId: LINK_TRACE_ID, spanId: LINK_SPAN_ID, traceFlags: TraceFlags.SAMPLED },
          attributes: { 'link.reason': 'retry' },
        },
      ],
    },
    // Explicit parent context: BasicTracerProvider does not install a context manager.
    trace.setSpan(context.active(), root),
  );
  child.addEvent('first-byte', { 'h2o.bytes': 512 }, EVENT_TIME);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream reset' });
  child.end(END);
  root.end(END);
}

function assertSample(spans: ReceivedSpan[]): void {
  assert.equal(spans.length, 2);
  const root = spans.find((s) => s.name === 'GET /');
  const child = spans.find((s) => s.name === 'upstream');
  assert.ok(root && child, `unexpected span names: ${spans.map((s) => s.name).join(', ')}`);

  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.match(root.spanId, /^[0-9a-f]{16}$/);
  assert.equal(root.parentSpanId, '');
  assert.equal(root.kind, 2); // SERVER
  assert.equal(root.status.code, 0); // UNSET

  assert.equal(child.traceId, root.traceId);
  assert.equal(child.parentSpanId, root.spanId);
  assert.equal(child.kind, 3); // CLIENT
  assert.equal(child.startTimeUnixNano, 1_700_000_000_123_456_789n);
  assert.equal(child.endTimeUnixNano, 1_700_000_001_000_000_000n);
  assert.deepEqual(child.attributes, {
    'http.request.method': 'GET',
    'server.port': 8443,
    'h2o.ratio': 0.25,
    'h2o.reused': true,
    'h2o.protocols': ['h2', 'h3'],
  });
  assert.deepEqual(child.events, [
    { name: 'first-byte', timeUnixNano: 1_700_000_000_500_000_000n, attributes: { 'h2o.bytes': 512 } },
  ]);
  assert.deepEqual(child.links, [
    { traceId: LINK_TRACE_ID, spanId: LINK_SPAN_ID, traceState: '', attributes: { 'link.reason': 'retry' } },
  ]);
  assert.deepEqual(child.status, { code: 2, message: 'upstream reset' }); // ERROR
  assert.equal(child.droppedAttributesCount, 0);
  assert.equal(child.droppedEventsCount, 0);

  for (const span of spans) {
    assert.equal(span.resource[ATTR_SERVICE_NAME], 'otlp-receiver-test');
    assert.deepEqual(span.scope, { name: 'otlp-receiver-test-scope', version: '1.2.3' });
  }
}

/** The exporters as h2o-otel configures them: a header on every request, gzip optional for HTTP. */
const TRACE_EXPORTERS: Record<string, (r: OtlpReceiver) => SpanExporter> = {
  grpc: (r) => {
    const metadata = new Metadata();
    metadata.set('x-h2o-test', 'secret');
    return new GrpcTraceExporter({ url: r.grpcUrl, metadata });
  },
  http: (r) => new ProtoTraceExporter({ url: `${r.httpUrl}/v1/traces`, headers: { 'x-h2o-test': 'secret' } }),
  'http+gzip': (r) =>
    new ProtoTraceExporter({
      url: `${r.httpUrl}/v1/traces`,
      headers: { 'x-h2o-test': 'secret' },
      // The enum lives in a transitive package; its runtime value is the plain string.
      compression: 'gzip' as ProtoExporterConfig['compression'],
    }),
};

for (const [name, exporter] of Object.entries(TRACE_EXPORTERS)) {
  void test(`${name}: spans, attributes, events, links, status and headers arrive intact`, () =>
    withReceiver(async (receiver) => {
      const provider = newProvider(exporter(receiver));
      try {
        emitSample(provider);
        await provider.forceFlush();
        assertSample(await receiver.waitForSpans(2));
        assert.ok(receiver.requests.length >= 1);
        for (const req of receiver.requests) {
          assert.equal(req.transport, name === 'grpc' ? 'grpc' : 'http');
          assert.equal(req.headers['x-h2o-test'], 'secret');
          if (name === 'http+gzip') assert.equal(req.headers['content-encoding'], 'gzip');
        }
      } finally {
        await provider.shutdown();
      }
    }));
}

for (const transport of ['grpc', 'http'] as const) {
  void test(`${transport}: a counter arrives as a monotonic sum with its attributes and resource`, () =>
    withReceiver(async (receiver) => {
      const exporter =
        transport === 'grpc'
          ? new GrpcMetricExporter({ url: receiver.grpcUrl })
          : new ProtoMetricExporter({ url: `${receiver.httpUrl}/v1/metrics` });
      const provider = new MeterProvider({
        resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'otlp-receiver-test' }),
        readers: [new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 100 })],
      });
      try {
        const events = provider
          .getMeter('otlp-receiver-test-scope', '1.2.3')
          .createObservableCounter('h2o_otel.test.events', { unit: '{event}', valueType: ValueType.INT });
        events.addCallback((r) => r.observe(2 ** 40, { stage: 'decode' }));
        const p = await receiver.waitForMetric('h2o_otel.test.events');
        assert.equal(p.kind, 'sum');
        assert.equal(p.monotonic, true);
        assert.equal(p.value, 2 ** 40);
        assert.equal(p.unit, '{event}');
        assert.deepEqual(p.attributes, { stage: 'decode' });
        assert.equal(p.resource[ATTR_SERVICE_NAME], 'otlp-receiver-test');
        assert.deepEqual(p.scope, { name: 'otlp-receiver-test-scope', version: '1.2.3' });
        assert.ok(receiver.requests.some((r) => r.kind === 'metrics' && r.transport === transport));
      } finally {
        await provider.shutdown();
      }
    }));
}

void test('waits reject saying what did arrive', () =>
  withReceiver(async (receiver) => {
    await assert.rejects(receiver.waitForSpans(1, 50), /expected 1 span\(s\) within 50 ms, got 0/);
    await assert.rejects(
      receiver.waitForMetric('x', () => true, 50),
      /no point of metric "x"/,
    );
  }));
