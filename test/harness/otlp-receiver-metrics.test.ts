// Proves the test OTLP receiver's metrics path against the real metric exporters: whatever a
// PeriodicExportingMetricReader pushes (gRPC or HTTP/protobuf, optionally gzip) must decode back to
// the sums, gauges and histograms we recorded.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Metadata } from '@grpc/grpc-js';
import { ValueType } from '@opentelemetry/api';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  MeterProvider,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

import { withReceiver, type OtlpReceiver, type ReceivedMetricPoint } from '../../harness/otlp-receiver.js';
import { waitFor } from '../../harness/wait.js';

type ProtoExporterConfig = NonNullable<ConstructorParameters<typeof ProtoMetricExporter>[0]>;

const SERVICE = 'otlp-receiver-metrics-test';
const SCOPE = { name: 'otlp-receiver-metrics-scope', version: '4.5.6' };
const RESOURCE = { [ATTR_SERVICE_NAME]: SERVICE };

function newProvider(exporter: PushMetricExporter): MeterProvider {
  return new MeterProvider({
    resource: resourceFromAttributes(RESOURCE),
    // Short interval so the periodic path itself delivers; tests never depend on forceFlush.
    readers: [
      new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 100, exportTimeoutMillis: 100 }),
    ],
  });
}

/** One instrument per point kind; every value is recorded before the first collection. */
function recordSample(provider: MeterProvider): void {
  const meter = provider.getMeter(SCOPE.name, SCOPE.version);

  // INT value type: the exporter sends as_int (sfixed64).
  const requests = meter.createCounter('h2o.test.requests', {
    description: 'Requests served',
    unit: '{request}',
    valueType: ValueType.INT,
  });
  requests.add(3, { 'http.request.method': 'GET', 'h2o.protocols': ['h2', 'h3'] });
  requests.add(2, { 'http.request.method': 'GET', 'h2o.protocols': ['h2', 'h3'] });
  requests.add(1, { 'http.request.method': 'POST', 'h2o.protocols': ['h2', 'h3'] });

  // A negative cumulative value checks the signed decoding of as_int.
  const inflight = meter.createUpDownCounter('h2o.test.inflight', { valueType: ValueType.INT });
  inflight.add(4);
  inflight.add(-6);

  // Default DOUBLE value type: as_double.
  const ratio = meter.createObservableGauge('h2o.test.ratio', { description: 'Reuse ratio', unit: '1' });
  ratio.addCallback((result) => {
    result.observe(0.25, { 'h2o.reused': true });
  });

  const latency = meter.createHistogram('h2o.test.latency', {
    unit: 'ms',
    advice: { explicitBucketBoundaries: [10, 100] },
  });
  for (const ms of [5, 20, 50, 500]) latency.record(ms, { 'server.port': 8443 });
}

const nowNanos = (): bigint => BigInt(Date.now()) * 1_000_000n;

/** Waits for every sample point and checks it field by field (the timestamp only for plausibility). */
async function assertSample(receiver: OtlpReceiver, startedNanos: bigint): Promise<void> {
  const expectPoint = async (
    pred: ((p: ReceivedMetricPoint) => boolean) | undefined,
    expected: Omit<ReceivedMetricPoint, 'timeUnixNano' | 'resource' | 'scope'>,
  ) => {
    const point = await receiver.waitForMetric(expected.name, pred);
    // Collection time on the SDK clock: allow a second of skew against Date.now().
    assert.ok(
      point.timeUnixNano > startedNanos - 1_000_000_000n && point.timeUnixNano < nowNanos() + 1_000_000_000n,
      `implausible timeUnixNano ${point.timeUnixNano} for ${expected.name}`,
    );
    assert.deepEqual(point, {
      ...expected,
      timeUnixNano: point.timeUnixNano,
      resource: RESOURCE,
      scope: SCOPE,
    });
  };
  const method = (m: string) => (p: ReceivedMetricPoint) => p.attributes['http.request.method'] === m;

  await expectPoint(method('GET'), {
    name: 'h2o.test.requests',
    description: 'Requests served',
    unit: '{request}',
    kind: 'sum',
    monotonic: true,
    value: 5,
    histogram: undefined,
    attributes: { 'http.request.method': 'GET', 'h2o.protocols': ['h2', 'h3'] },
  });
  await expectPoint(method('POST'), {
    name: 'h2o.test.requests',
    description: 'Requests served',
    unit: '{request}',
    kind: 'sum',
    monotonic: true,
    value: 1,
    histogram: undefined,
    attributes: { 'http.request.method': 'POST', 'h2o.protocols': ['h2', 'h3'] },
  });
  await expectPoint(undefined, {
    name: 'h2o.test.inflight',
    description: '',
    unit: '',
    kind: 'sum',
    monotonic: false,
    value: -2,
    histogram: undefined,
    attributes: {},
  });
  await expectPoint(undefined, {
    name: 'h2o.test.ratio',
    description: 'Reuse ratio',
    unit: '1',
    kind: 'gauge',
    monotonic: undefined,
    value: 0.25,
    histogram: undefined,
    attributes: { 'h2o.reused': true },
  });
  await expectPoint(undefined, {
    name: 'h2o.test.latency',
    description: '',
    unit: 'ms',
    kind: 'histogram',
    monotonic: undefined,
    value: 4,
    // Buckets (-inf, 10], (10, 100], (100, +inf).
    histogram: { count: 4, sum: 575, bucketCounts: [1, 2, 1], explicitBounds: [10, 100] },
    attributes: { 'server.port': 8443 },
  });

  assert.equal(receiver.spans.length, 0);
  assert.ok(receiver.requests.length >= 1);
  for (const req of receiver.requests) {
    assert.equal(req.kind, 'metrics');
    assert.equal(req.accepted, true);
    assert.equal(req.spanCount, 0);
  }
}

void test('gRPC metric exporter: sums, gauges, histograms, attributes, resource and metadata arrive intact', () =>
  withReceiver(async (receiver) => {
    const metadata = new Metadata();
    metadata.set('x-h2o-test', 'grpc-secret');
    const started = nowNanos();
    const provider = newProvider(new GrpcMetricExporter({ url: receiver.grpcUrl, metadata }));
    try {
      recordSample(provider);
      await assertSample(receiver, started);
      for (const req of receiver.requests) {
        assert.equal(req.transport, 'grpc');
        assert.equal(req.headers['x-h2o-test'], 'grpc-secret');
      }
    } finally {
      await provider.shutdown();
    }
  }));

void test('HTTP/protobuf metric exporter: sums, gauges, histograms, attributes, resource and headers arrive intact', () =>
  withReceiver(async (receiver) => {
    const exporter = new ProtoMetricExporter({
      url: `${receiver.httpUrl}/v1/metrics`,
      headers: { 'x-h2o-test': 'http-secret' },
    });
    const started = nowNanos();
    const provider = newProvider(exporter);
    try {
      recordSample(provider);
      await assertSample(receiver, started);
      for (const req of receiver.requests) {
        assert.equal(req.transport, 'http');
        assert.equal(req.headers['x-h2o-test'], 'http-secret');
        assert.equal(req.headers['content-type'], 'application/x-protobuf');
      }
    } finally {
      await provider.shutdown();
    }
  }));

void test('HTTP/protobuf metric exporter with gzip: decodes compressed bodies', () =>
  withReceiver(async (receiver) => {
    const exporter = new ProtoMetricExporter({
      url: `${receiver.httpUrl}/v1/metrics`,
      // The enum lives in a transitive package; its runtime value is the plain string.
      compression: 'gzip' as ProtoExporterConfig['compression'],
    });
    const started = nowNanos();
    const provider = newProvider(exporter);
    try {
      recordSample(provider);
      await assertSample(receiver, started);
      assert.equal(receiver.requests[0]?.headers['content-encoding'], 'gzip');
    } finally {
      await provider.shutdown();
    }
  }));

for (const transport of ['http', 'grpc'] as const) {
  void test(`${transport}: setFailure('unavailable') refuses metric exports until reset`, () =>
    withReceiver(async (receiver) => {
      const exporter =
        transport === 'http'
          ? new ProtoMetricExporter({ url: `${receiver.httpUrl}/v1/metrics` })
          : new GrpcMetricExporter({ url: receiver.grpcUrl });
      const provider = newProvider(exporter);
      try {
        receiver.setFailure('unavailable');
        provider.getMeter('retry').createCounter('h2o.test.refused').add(7);
        await waitFor(() => receiver.requests.length >= 1, 'the first (refused) export');
        assert.equal(receiver.metrics.length, 0);
        const [first] = receiver.requests;
        assert.ok(first);
        assert.deepEqual(
          [first.kind, first.transport, first.accepted, first.spanCount, first.pointCount],
          ['metrics', transport, false, 0, 1],
        );
        // Cumulative temporality: a later export (HTTP retry or the next period) carries the same point.
        receiver.setFailure('none');
        const point = await receiver.waitForMetric('h2o.test.refused');
        assert.equal(point.value, 7);
        // Only accepted requests contributed points.
        const acceptedPoints = receiver.requests
          .filter((r) => r.accepted)
          .reduce((n, r) => n + r.pointCount, 0);
        assert.equal(receiver.metrics.length, acceptedPoints);
      } finally {
        await provider.shutdown();
      }
    }));
}

void test('waitForMetric rejects listing the metric names seen, and with the error of a throwing predicate', () =>
  withReceiver(async (receiver) => {
    const provider = newProvider(new ProtoMetricExporter({ url: `${receiver.httpUrl}/v1/metrics` }));
    try {
      provider.getMeter('names').createCounter('h2o.test.present').add(1);
      await receiver.waitForMetric('h2o.test.present');
      await assert.rejects(
        receiver.waitForMetric('h2o.test.missing', undefined, 50),
        /no point of metric "h2o\.test\.missing" matching the predicate within 50 ms; metrics seen \[h2o\.test\.present\]/,
      );
      await assert.rejects(
        receiver.waitForMetric('h2o.test.present', (p) => p.value === 2, 50),
        /metrics seen \[h2o\.test\.present\]/,
      );
      await assert.rejects(
        receiver.waitForMetric('h2o.test.present', () => {
          throw new Error('predicate exploded');
        }),
        /predicate exploded/,
      );
    } finally {
      await provider.shutdown();
    }
  }));
