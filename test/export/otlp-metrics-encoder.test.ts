// The metrics encoder against the SDK's ProtobufMetricsSerializer on what the SDK collected (every instrument kind,
// int and double values, attributes, explicit and exponential histograms, two scopes): both requests decoded with
// the official OTLP .proto files are equal field by field. Then the one thing the SDK cannot write: exemplars.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValueType } from '@opentelemetry/api';
import { ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  AggregationType,
  DataPointType,
  MeterProvider,
  MetricReader,
} from '@opentelemetry/sdk-metrics';
import type { ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { OtlpMetricsEncoder } from '../../src/export/otlp-metrics-encoder.js';
import { ExplicitHistogram } from '../../src/otel/explicit-histogram.js';
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

interface DecodedPoint {
  attributes: { key: string }[];
  count: bigint;
  bucketCounts: bigint[];
  exemplars: { timeUnixNano: bigint; asDouble: number; traceId: Uint8Array; spanId: Uint8Array }[];
}
interface Decoded {
  resourceMetrics: {
    scopeMetrics: { metrics: { name: string; histogram?: { dataPoints: DecodedPoint[] } }[] }[];
  }[];
}

/** h2o-otel's own histogram as a reader would collect it, exemplars taken or not. */
function histogramRequest(h: ExplicitHistogram, takeExemplars: boolean): ResourceMetrics {
  const points = h.dataPoints([1_800_000_000, 0], [1_800_000_060, 0], takeExemplars);
  return {
    resource: resourceFromAttributes({ 'service.name': 'h2o' }),
    scopeMetrics: [
      {
        scope: { name: 'h2o-otel', version: '1.2.3' },
        metrics: [
          {
            descriptor: {
              name: h.name,
              unit: h.unit,
              description: h.description,
              valueType: ValueType.DOUBLE,
            },
            aggregationTemporality: AggregationTemporality.CUMULATIVE,
            dataPointType: DataPointType.HISTOGRAM,
            dataPoints: points,
          },
        ],
      },
    ],
  };
}

test('h2o-otel’s histograms: the SDK’s encoding, plus each bucket’s latest exemplar, taken once', () => {
  const h = new ExplicitHistogram('latency', 's', 'how long', [0.1, 1, 10]);
  const a = { route: '/a', code: 200 };
  const b = { route: '/b', ok: true };
  for (const v of [0.05, 0.1, 0.5, 3, 30]) h.record('a', () => a, v);
  h.record('b', () => b, 2);
  const ids = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331' };
  h.offer('a', { value: 3, time: [1_800_000_000, 5], ...ids });
  h.offer('a', { value: 0.05, time: [1_800_000_001, 0], ...ids });
  // A later one in the same bucket replaces the earlier one.
  h.offer('a', { value: 30, time: [1_800_000_002, 0], ...ids });
  h.offer('a', { value: 40, time: [1_800_000_003, 0], ...ids });
  const withExemplars = histogramRequest(h, true);
  const encoder = new OtlpMetricsEncoder();
  const decoded = decodeMetricsRequest(encoder.encode(withExemplars)) as Decoded;
  // Without the exemplars, exactly the SDK's message.
  const sdk = ProtobufMetricsSerializer.serializeRequest(withExemplars);
  assert.ok(sdk !== undefined);
  const points = decoded.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.histogram!.dataPoints;
  assert.deepEqual(
    { ...decoded, resourceMetrics: [] },
    { ...(decodeMetricsRequest(sdk) as Decoded), resourceMetrics: [] },
  );
  const sdkPoints = (decodeMetricsRequest(sdk) as Decoded).resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!
    .histogram!.dataPoints;
  assert.deepEqual(
    points.map((p) => ({ ...p, exemplars: [] })),
    sdkPoints,
  );
  const [pa, pb] = points;
  assert.deepEqual(pa!.bucketCounts, [2n, 1n, 1n, 1n]);
  assert.deepEqual(
    pa!.exemplars.map((e) => [e.asDouble, e.timeUnixNano]),
    [
      [0.05, 1_800_000_001_000_000_000n],
      [3, 1_800_000_000_000_000_005n],
      [40, 1_800_000_003_000_000_000n],
    ],
  );
  assert.equal(Buffer.from(pa!.exemplars[0]!.traceId).toString('hex'), ids.traceId);
  assert.equal(Buffer.from(pa!.exemplars[0]!.spanId).toString('hex'), ids.spanId);
  assert.deepEqual(pb!.exemplars, []);
  // Taken: the next collection carries none; a reader that does not take them sees none either.
  const again = decodeMetricsRequest(encoder.encode(histogramRequest(h, true))) as Decoded;
  assert.deepEqual(
    again.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.histogram!.dataPoints.flatMap((p) => p.exemplars),
    [],
  );
  h.offer('a', { value: 0.5, time: [1_800_000_004, 0], ...ids });
  const untaken = decodeMetricsRequest(encoder.encode(histogramRequest(h, false))) as Decoded;
  assert.deepEqual(
    untaken.resourceMetrics[0]!.scopeMetrics[0]!.metrics[0]!.histogram!.dataPoints.flatMap(
      (p) => p.exemplars,
    ),
    [],
  );
  assert.equal(h.dataPoints([0, 0], [0, 0], true)[0]!.exemplars!.length, 1);
});
