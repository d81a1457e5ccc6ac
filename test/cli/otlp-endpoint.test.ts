// OTLP endpoint precedence on plain data: --endpoint, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT,
// and the protocol's default port and path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveEndpoints, signalUrl } from '../../src/cli/otlp-endpoint.js';
import type { EndpointSettings } from '../../src/cli/otlp-endpoint.js';
import { buildCommand, resolveOptions } from '../../src/cli/options.js';
import type { Env } from '../../src/cli/options.js';

const none: EndpointSettings = {
  protocol: 'http/protobuf',
  endpoint: undefined,
  baseEndpoint: undefined,
  tracesEndpoint: undefined,
  metricsEndpoint: undefined,
};

test('no endpoint: not configured, and a local collector on the default port of the protocol', () => {
  assert.deepEqual(resolveEndpoints(none), {
    configured: false,
    tracesUrl: 'http://localhost:4318/v1/traces',
    metricsUrl: 'http://localhost:4318/v1/metrics',
  });
  assert.deepEqual(resolveEndpoints({ ...none, protocol: 'grpc' }), {
    configured: false,
    tracesUrl: 'http://localhost:4317',
    metricsUrl: 'http://localhost:4317',
  });
});

test('a base endpoint gets /v1/<signal> over HTTP (trailing slashes dropped) and is kept as is over gRPC', () => {
  assert.equal(signalUrl('http://c:4318//', 'http/protobuf', 'traces'), 'http://c:4318/v1/traces');
  assert.equal(signalUrl('http://c:4318/otlp', 'http/protobuf', 'metrics'), 'http://c:4318/otlp/v1/metrics');
  assert.equal(signalUrl('http://c:4317', 'grpc', 'traces'), 'http://c:4317');
  assert.deepEqual(resolveEndpoints({ ...none, baseEndpoint: 'https://c:4318/' }), {
    configured: true,
    tracesUrl: 'https://c:4318/v1/traces',
    metricsUrl: 'https://c:4318/v1/metrics',
  });
  assert.deepEqual(resolveEndpoints({ ...none, protocol: 'grpc', baseEndpoint: 'http://c:4317' }), {
    configured: true,
    tracesUrl: 'http://c:4317',
    metricsUrl: 'http://c:4317',
  });
});

test('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as is and wins over OTEL_EXPORTER_OTLP_ENDPOINT for traces only', () => {
  const both = { ...none, baseEndpoint: 'http://base:4318', tracesEndpoint: 'http://t:9/custom' };
  assert.deepEqual(resolveEndpoints(both), {
    configured: true,
    tracesUrl: 'http://t:9/custom',
    metricsUrl: 'http://base:4318/v1/metrics',
  });
});

test('with only a traces URL, the metrics go to the same collector', () => {
  assert.equal(
    resolveEndpoints({ ...none, tracesEndpoint: 'http://t:4318/v1/traces' }).metricsUrl,
    'http://t:4318/v1/metrics',
  );
  assert.equal(
    resolveEndpoints({ ...none, protocol: 'grpc', tracesEndpoint: 'http://t:4317' }).metricsUrl,
    'http://t:4317',
  );
});

test('--endpoint wins over both variables; OTEL_EXPORTER_OTLP_METRICS_ENDPOINT wins for metrics', () => {
  const all = {
    ...none,
    endpoint: 'http://flag:4318',
    baseEndpoint: 'http://base:4318',
    tracesEndpoint: 'http://t:4318/v1/traces',
  };
  assert.deepEqual(resolveEndpoints(all), {
    configured: true,
    tracesUrl: 'http://flag:4318/v1/traces',
    metricsUrl: 'http://flag:4318/v1/metrics',
  });
  assert.equal(resolveEndpoints({ ...all, metricsEndpoint: 'http://m:1/x' }).metricsUrl, 'http://m:1/x');
});

test('through the options: an endpoint selects OTLP export, with the protocol of flag or variable', () => {
  const resolve = (args: string[], env: Env) =>
    resolveOptions(buildCommand().exitOverride(), ['node', 'h2o-otel', '--replay', 'x', ...args], env);
  const grpc = resolve([], {
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317',
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  });
  assert.deepEqual(
    grpc.exporter.kind === 'otlp' && [grpc.exporter.protocol, grpc.exporter.url, grpc.metrics?.otlp?.url],
    ['grpc', 'http://c:4317', 'http://c:4317'],
  );
  const http = resolve(['--endpoint', 'http://flag:4318'], {
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:4318/v1/traces',
  });
  assert.deepEqual(
    http.exporter.kind === 'otlp' && [http.exporter.protocol, http.exporter.url, http.metrics?.otlp?.url],
    ['http/protobuf', 'http://flag:4318/v1/traces', 'http://flag:4318/v1/metrics'],
  );
});
