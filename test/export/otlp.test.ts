// The OTLP exporters use the values they are given, even when process.env says otherwise: the SDK would fall back
// to OTEL_EXPORTER_OTLP_* for any setting left undefined, and h2o-otel reads its variables in src/cli only.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { defaultResource } from '@opentelemetry/resources';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createOtlpExporter } from '../../src/export/otlp.js';
import type { OtlpOptions } from '../../src/export/otlp.js';
import { Metrics } from '../../src/export/metrics.js';
import { registerSelfCounters } from '../../src/export/self-metrics.js';
import { AttributeList } from '../../src/otel/attribute-list.js';
import { SpanFactory } from '../../src/otel/finished-span.js';
import { withReceiver } from '../../harness/otlp-receiver.js';

/** What a user's shell might hold: every setting different from what the tests pass. */
const CONFLICTING_ENV: Record<string, string> = {
  OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9',
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://127.0.0.1:9/v1/traces',
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://127.0.0.1:9/v1/metrics',
  OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=process-env',
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-tenant=process-env-traces',
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-tenant=process-env-metrics',
  OTEL_EXPORTER_OTLP_TIMEOUT: '50',
  OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '50',
  OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: '50',
  OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip',
  OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'gzip',
  OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: 'gzip',
};

/** Runs `body` with CONFLICTING_ENV in process.env (the exporters read it when constructed), then restores it. */
async function withConflictingEnv(body: () => Promise<void>): Promise<void> {
  const saved = Object.keys(CONFLICTING_ENV).map((k) => [k, process.env[k]] as const);
  Object.assign(process.env, CONFLICTING_ENV);
  try {
    await body();
  } finally {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function oneSpan(): ReadableSpan[] {
  const spans: ReadableSpan[] = [];
  const factory = new SpanFactory(
    { onEnd: (s) => spans.push(s) },
    { sampler: new AlwaysOnSampler(), resource: defaultResource(), scope: { name: 'otlp-test' } },
  );
  factory.end(
    factory.start(ROOT_CONTEXT, 'span', SpanKind.INTERNAL, [1_700_000_000, 0], new AttributeList(), []),
    [1_700_000_001, 0],
  );
  return spans;
}

async function exportOne(o: OtlpOptions): Promise<ExportResult> {
  const exporter = createOtlpExporter(o);
  try {
    return await new Promise<ExportResult>((resolve) => exporter.export(oneSpan(), resolve));
  } finally {
    await exporter.shutdown();
  }
}

/** An OTLP/HTTP endpoint that answers after `delayMs`, keeping each request's path and headers. */
async function slowCollector(
  delayMs: number,
): Promise<{ url: string; seen: { path: string; headers: IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const seen: { path: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'application/x-protobuf' });
        res.end();
      }, delayMs);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

test('HTTP: the URL, headers, timeout and compression passed win over the OTEL_EXPORTER_OTLP_* variables', () =>
  withConflictingEnv(async () => {
    // Slower than the variables' 50 ms timeout: the export succeeds only if the 5 s passed is used.
    const collector = await slowCollector(300);
    try {
      const plain = await exportOne({
        protocol: 'http/protobuf',
        url: `${collector.url}/v1/traces`,
        headers: { 'x-tenant': 'passed' },
        timeoutMillis: 5_000,
        compression: 'none',
      });
      assert.equal(plain.code, ExportResultCode.SUCCESS, plain.error?.message);
      const gzip = await exportOne({
        protocol: 'http/protobuf',
        url: `${collector.url}/v1/traces`,
        headers: {},
        timeoutMillis: 5_000,
        compression: 'gzip',
      });
      assert.equal(gzip.code, ExportResultCode.SUCCESS, gzip.error?.message);
      assert.equal(collector.seen.length, 2);
      const [first, second] = collector.seen;
      assert.equal(first!.path, '/v1/traces');
      assert.equal(first!.headers['x-tenant'], 'passed');
      assert.equal(first!.headers['content-encoding'], undefined);
      assert.equal(second!.headers['content-encoding'], 'gzip');
    } finally {
      await collector.close();
    }
  }));

test('HTTP: without a timeout or compression, the defaults are used, not the variables', () =>
  withConflictingEnv(async () => {
    const collector = await slowCollector(300);
    try {
      const result = await exportOne({
        protocol: 'http/protobuf',
        url: `${collector.url}/v1/traces`,
        headers: {},
      });
      assert.equal(result.code, ExportResultCode.SUCCESS, result.error?.message);
      assert.equal(collector.seen[0]!.headers['content-encoding'], undefined);
    } finally {
      await collector.close();
    }
  }));

test('gRPC: the URL and headers passed win over the variables, and no header is sent twice', () =>
  withConflictingEnv(() =>
    withReceiver(async (receiver) => {
      const result = await exportOne({
        protocol: 'grpc',
        url: receiver.grpcUrl,
        headers: { 'x-tenant': 'passed' },
        timeoutMillis: 5_000,
        compression: 'none',
      });
      assert.equal(result.code, ExportResultCode.SUCCESS, result.error?.message);
      assert.equal(receiver.requests.length, 1);
      assert.equal(receiver.requests[0]!.transport, 'grpc');
      assert.equal(receiver.requests[0]!.headers['x-tenant'], 'passed');
    }),
  ));

test("h2o-otel's own metrics: the URL and headers passed win over the variables", () =>
  withConflictingEnv(() =>
    withReceiver(async (receiver) => {
      const metrics = await Metrics.start({
        resource: defaultResource(),
        otlp: {
          protocol: 'http/protobuf',
          url: `${receiver.httpUrl}/v1/metrics`,
          headers: { 'x-tenant': 'passed' },
          timeoutMillis: 5_000,
          compression: 'none',
          intervalMs: 600_000,
        },
      });
      registerSelfCounters(metrics.meter, () => ({ events: 7 }));
      // Shutting down exports the final values.
      await metrics.shutdown(5_000);
      const point = await receiver.waitForMetric('h2o_otel.events', undefined, 5_000);
      assert.equal(point.value, 7);
      assert.equal(receiver.requests[0]!.kind, 'metrics');
      assert.equal(receiver.requests[0]!.headers['x-tenant'], 'passed');
      assert.equal(receiver.requests[0]!.headers['content-encoding'], undefined);
    }),
  ));
