// The metrics encoder against the SDK's ProtobufMetricsSerializer on what the SDK collected (every instrument kind,
// int and double values, attributes, explicit and exponential histograms, two scopes): both requests decoded with
// the official OTLP .proto files are equal field by field. Then the one thing the SDK cannot write: exemplars.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValueType } from '@opentelemetry/api';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OtlpMetricsEncoder } from '../../src/export/otlp-metrics-encoder.js';
import { ExemplarStore } from '../../src/otel/exemplars.js';
import { decodeMetricsRequest } from '../../harness/otlp-receiver.js';

class CollectingReader extends MetricReader {
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

async function collected(): Promise<ResourceMetrics> {
  const reader = new CollectingReader();
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'h2o', 'host.id': 7 }),
    readers: [reader],
    views: [{ instrumentName: 'expo', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter('h2o-otel', '1.2.3');
  const other = provider.getMeter('other');
  meter.createCounter('requests', { unit: '{request}', valueType: ValueType.INT }).add(5, { method: 'GET' });
  meter.createUpDownCounter('open', { description: 'open ones' }).add(-2.5);
  meter
    .createObservableGauge('temp', { valueType: ValueType.INT })
    .addCallback((r) => r.observe(-3, { where: 'here' }));
  meter.createObservableCounter('big', { valueType: ValueType.INT }).addCallback((r) => r.observe(2 ** 40));
  const h = meter.createHistogram('latency', {
    unit: 's',
    advice: { explicitBucketBoundaries: [0.1, 1, 10] },
  });
  for (const v of [0.05, 0.1, 0.5, 3, 30]) h.record(v, { route: '/a', code: 200 });
  h.record(2, { route: '/b', ok: true });
  const expo = other.createHistogram('expo');
  for (const v of [0.001, 1, 1000, -1]) expo.record(v);
  const { resourceMetrics, errors } = await reader.collect();
  assert.deepEqual(errors, []);
  await provider.shutdown();
  return resourceMetrics;
}

test('every kind of metric encodes as the SDK encodes it', async () => {
  const rm = await collected();
  const kinds = rm.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.dataPointType));
  for (const k of [
    DataPointType.SUM,
    DataPointType.GAUGE,
    DataPointType.HISTOGRAM,
    DataPointType.EXPONENTIAL_HISTOGRAM,
  ])
    assert.ok(kinds.includes(k), `collected a ${DataPointType[k]}`);
  const sdk = ProtobufMetricsSerializer.serializeRequest(rm);
  assert.ok(sdk !== undefined);
  const encoder = new OtlpMetricsEncoder();
  assert.deepEqual(decodeMetricsRequest(encoder.encode(rm)), decodeMetricsRequest(sdk));
  // The same encoder again (its buffer reused): the same request.
  assert.deepEqual(decodeMetricsRequest(encoder.encode(rm)), decodeMetricsRequest(sdk));
});

interface DecodedExemplar {
  timeUnixNano: bigint;
  asDouble: number;
  traceId: Uint8Array;
  spanId: Uint8Array;
}
interface DecodedPoint {
  attributes: { key: string }[];
  exemplars: DecodedExemplar[];
}
interface Decoded {
  resourceMetrics: {
    scopeMetrics: { metrics: { name: string; histogram?: { dataPoints: DecodedPoint[] } }[] }[];
  }[];
}

test('exemplars are written beside their histogram data point, once', async () => {
  const rm = await collected();
  const store = new ExemplarStore(new Map([['latency', ['route', 'code', 'ok']]]));
  const bounds = [0.1, 1, 10];
  const ids = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
  store.offer('latency', { route: '/a', code: 200 }, bounds, { value: 3, time: [1_800_000_000, 5], ...ids });
  store.offer('latency', { route: '/a', code: 200 }, bounds, {
    value: 0.05,
    time: [1_800_000_001, 0],
    ...ids,
  });
  // A later one in the same bucket replaces the earlier one.
  store.offer('latency', { route: '/a', code: 200 }, bounds, { value: 30, time: [1_800_000_002, 0], ...ids });
  store.offer('latency', { route: '/a', code: 200 }, bounds, { value: 40, time: [1_800_000_003, 0], ...ids });
  const encoder = new OtlpMetricsEncoder();
  const lookup = (m: { descriptor: { name: string } }, p: { attributes: Record<string, unknown> }) =>
    store.take(m.descriptor.name, p.attributes as Record<string, string>);
  const decoded = decodeMetricsRequest(encoder.encode(rm, lookup)) as Decoded;
  const latency = decoded.resourceMetrics[0]!.scopeMetrics.flatMap((s) => s.metrics).find(
    (m) => m.name === 'latency',
  );
  const points = latency!.histogram!.dataPoints;
  const a = points.find((p) => p.attributes.some((kv) => kv.key === 'code'))!;
  const b = points.find((p) => p.attributes.some((kv) => kv.key === 'ok'))!;
  assert.deepEqual(
    a.exemplars.map((e) => [e.asDouble, e.timeUnixNano]),
    [
      [0.05, 1_800_000_001_000_000_000n],
      [3, 1_800_000_000_000_000_005n],
      [40, 1_800_000_003_000_000_000n],
    ],
  );
  assert.equal(Buffer.from(a.exemplars[0]!.traceId).toString('hex'), ids.traceId);
  assert.equal(Buffer.from(a.exemplars[0]!.spanId).toString('hex'), ids.spanId);
  assert.deepEqual(b.exemplars, []);
  // Taken: the next export carries none.
  const again = decodeMetricsRequest(encoder.encode(rm, lookup)) as Decoded;
  const latencyAgain = again.resourceMetrics[0]!.scopeMetrics.flatMap((s) => s.metrics).find(
    (m) => m.name === 'latency',
  );
  assert.deepEqual(
    latencyAgain!.histogram!.dataPoints.flatMap((p) => p.exemplars),
    [],
  );
});
