/** The OTLP trace and metric exporters (gRPC, HTTP/protobuf) from explicit options resolved by the CLI. */
import { Metadata } from '@grpc/grpc-js';
import { OTLPMetricExporter as GrpcMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as ProtoMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import type { PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';

export type OtlpProtocol = 'grpc' | 'http/protobuf';

export interface OtlpOptions {
  readonly protocol: OtlpProtocol;
  /** Full URL of the traces endpoint (HTTP: ends with /v1/traces; gRPC: scheme://host:port). */
  readonly url: string;
  /** Headers given on the command line. The exporters add OTEL_EXPORTER_OTLP_(TRACES_)HEADERS themselves, and
   * read the TIMEOUT and COMPRESSION variables too: passing them again would duplicate gRPC metadata. */
  readonly headers: Readonly<Record<string, string>>;
}

function metadataOf(headers: Readonly<Record<string, string>>): Metadata {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return metadata;
}

export function createOtlpExporter(o: OtlpOptions): SpanExporter {
  if (o.protocol === 'grpc') return new GrpcTraceExporter({ url: o.url, metadata: metadataOf(o.headers) });
  return new ProtoTraceExporter({ url: o.url, headers: { ...o.headers } });
}

/** Same options, `url` being the metrics endpoint (HTTP: ends with /v1/metrics). */
export function createOtlpMetricExporter(o: OtlpOptions): PushMetricExporter {
  if (o.protocol === 'grpc') return new GrpcMetricExporter({ url: o.url, metadata: metadataOf(o.headers) });
  return new ProtoMetricExporter({ url: o.url, headers: { ...o.headers } });
}

/** Base endpoint (as OTEL_EXPORTER_OTLP_ENDPOINT) → the URL of one signal for a protocol. */
export function signalUrl(
  base: string,
  protocol: OtlpProtocol,
  signal: 'traces' | 'metrics' = 'traces',
): string {
  if (protocol === 'grpc') return base;
  return base.replace(/\/+$/, '') + `/v1/${signal}`;
}

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS; values URL-encoded) → a record. */
export function parseHeaderList(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (text === undefined) return out;
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    let value = part.slice(eq + 1).trim();
    try {
      value = decodeURIComponent(value);
    } catch {
      // Not URL-encoded: keep as written.
    }
    if (key.length > 0) out[key] = value;
  }
  return out;
}
