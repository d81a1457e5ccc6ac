/**
 * Where traces and h2o-otel's own metrics are sent, from --endpoint and the OTLP variables, with the
 * specification's precedence: --endpoint, else OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is), else
 * OTEL_EXPORTER_OTLP_ENDPOINT (a base: HTTP adds /v1/traces, gRPC takes it as is).
 */
import type { OtlpProtocol } from '../export/otlp.js';

export interface EndpointSettings {
  readonly protocol: OtlpProtocol;
  /** --endpoint: a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string | undefined;
  /** OTEL_EXPORTER_OTLP_ENDPOINT */
  readonly baseEndpoint: string | undefined;
  /** OTEL_EXPORTER_OTLP_TRACES_ENDPOINT */
  readonly tracesEndpoint: string | undefined;
  /** OTEL_EXPORTER_OTLP_METRICS_ENDPOINT */
  readonly metricsEndpoint: string | undefined;
}

export interface OtlpEndpoints {
  /** Whether an endpoint was given at all (that alone selects the OTLP exporter). */
  readonly configured: boolean;
  readonly tracesUrl: string;
  readonly metricsUrl: string;
}

/** A collector on this host, where the protocol's default port is. */
export const DEFAULT_URLS: Readonly<Record<OtlpProtocol, { traces: string; metrics: string }>> = {
  grpc: { traces: 'http://localhost:4317', metrics: 'http://localhost:4317' },
  'http/protobuf': {
    traces: 'http://localhost:4318/v1/traces',
    metrics: 'http://localhost:4318/v1/metrics',
  },
};

/** Base endpoint → the URL of one signal: HTTP appends /v1/<signal>, gRPC has no path. */
export function signalUrl(base: string, protocol: OtlpProtocol, signal: 'traces' | 'metrics'): string {
  if (protocol === 'grpc') return base;
  return base.replace(/\/+$/, '') + `/v1/${signal}`;
}

export function resolveEndpoints(s: EndpointSettings): OtlpEndpoints {
  const base = s.endpoint ?? s.baseEndpoint;
  const traces =
    s.endpoint !== undefined
      ? signalUrl(s.endpoint, s.protocol, 'traces')
      : (s.tracesEndpoint ?? (base === undefined ? undefined : signalUrl(base, s.protocol, 'traces')));
  let metrics: string;
  if (s.metricsEndpoint !== undefined) metrics = s.metricsEndpoint;
  else if (base !== undefined) metrics = signalUrl(base, s.protocol, 'metrics');
  // Only a full traces URL was given: the metrics go to the same collector.
  else if (traces !== undefined)
    metrics = s.protocol === 'grpc' ? traces : traces.replace(/\/v1\/traces\/?$/, '/v1/metrics');
  else metrics = DEFAULT_URLS[s.protocol].metrics;
  return {
    configured: traces !== undefined,
    tracesUrl: traces ?? DEFAULT_URLS[s.protocol].traces,
    metricsUrl: metrics,
  };
}
