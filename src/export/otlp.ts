/**
 * The OTLP trace and metric exporters (gRPC, HTTP/protobuf), configured by the values given here.
 *
 * The SDK exporters fall back to the OTEL_EXPORTER_OTLP_* variables for any setting left undefined, so every
 * setting h2o-otel resolves is always passed, and wins (the SDK adds a variable's header only under a name not
 * passed, and the CLI passes the same variables' headers already). The gRPC exporter's TLS settings
 * (`..._CERTIFICATE`, `..._CLIENT_KEY`, `..._CLIENT_CERTIFICATE`, `..._INSECURE`) are the SDK's own: it reads them.
 */
import { Metadata } from '@grpc/grpc-js';
import { OTLPMetricExporterBase } from '@opentelemetry/exporter-metrics-otlp-http';
import type { PushMetricExporter, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import type { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  convertLegacyHttpOptions,
  createOtlpHttpExportDelegate,
} from '@opentelemetry/otlp-exporter-base/node-http';
import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
} from '@opentelemetry/otlp-grpc-exporter-base';
import {
  MetricsExporterMetricsHelper,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
  TraceExporterMetricsHelper,
} from '@opentelemetry/otlp-transformer';
import type {
  IExportMetricsServiceResponse,
  IExportTraceServiceResponse,
  ISerializer,
} from '@opentelemetry/otlp-transformer';
import type { ExportResult } from '@opentelemetry/core';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';
import { exportErrorStatus, GRPC_UNAVAILABLE } from './export-errors.js';
import { OtlpTraceEncoder } from './otlp-encoder.js';
import { OtlpMetricsEncoder } from './otlp-metrics-encoder.js';

export type OtlpProtocol = 'grpc' | 'http/protobuf';
export type OtlpCompression = 'none' | 'gzip';

/** The SDK's own defaults, passed explicitly so that no variable is consulted. */
export const DEFAULT_OTLP_TIMEOUT_MS = 10_000;
export const DEFAULT_OTLP_COMPRESSION: OtlpCompression = 'none';

export interface OtlpOptions {
  readonly protocol: OtlpProtocol;
  /** Full URL of the signal's endpoint (HTTP: ends with /v1/traces or /v1/metrics; gRPC: scheme://host:port). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** One export request's deadline (default DEFAULT_OTLP_TIMEOUT_MS). */
  readonly timeoutMillis?: number;
  /** Default DEFAULT_OTLP_COMPRESSION. */
  readonly compression?: OtlpCompression;
}

function metadataOf(headers: Readonly<Record<string, string>>): Metadata {
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  return metadata;
}

type GrpcConfig = NonNullable<ConstructorParameters<typeof GrpcTraceExporter>[0]>;
type ProtoConfig = NonNullable<ConstructorParameters<typeof ProtoTraceExporter>[0]>;

function grpcConfig(o: OtlpOptions): GrpcConfig {
  return {
    url: o.url,
    metadata: metadataOf(o.headers),
    timeoutMillis: o.timeoutMillis ?? DEFAULT_OTLP_TIMEOUT_MS,
    // The SDK types compression as its own string enum, whose values are these two words.
    compression: (o.compression ?? DEFAULT_OTLP_COMPRESSION) as GrpcConfig['compression'],
  };
}

function protoConfig(o: OtlpOptions): ProtoConfig {
  return {
    url: o.url,
    headers: { ...o.headers },
    timeoutMillis: o.timeoutMillis ?? DEFAULT_OTLP_TIMEOUT_MS,
    compression: (o.compression ?? DEFAULT_OTLP_COMPRESSION) as ProtoConfig['compression'],
  };
}

/**
 * The SDK's exporters with h2o-otel's serializer (otlp-encoder.ts) in their delegates: transport, retries, headers,
 * TLS, compression and the environment stay the library's; the bytes are encoded straight from the spans.
 */
export function createOtlpExporter(o: OtlpOptions): SpanExporter {
  if (o.protocol === 'grpc') {
    return new RenewingGrpcExporter(
      () =>
        new OTLPExporterBase(
          createOtlpGrpcExportDelegate(
            convertLegacyOtlpGrpcOptions(grpcConfig(o), 'TRACES'),
            directTraceSerializer(),
            'otlp_grpc_span_exporter',
            TraceExporterMetricsHelper,
            undefined,
            'TraceExportService',
            '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
          ),
        ),
    );
  }
  return new OTLPExporterBase(
    createOtlpHttpExportDelegate(
      convertLegacyHttpOptions(protoConfig(o), 'TRACES', 'v1/traces', {
        'Content-Type': 'application/x-protobuf',
      }),
      directTraceSerializer(),
      'otlp_http_span_exporter',
      TraceExporterMetricsHelper,
      undefined,
    ),
  );
}

/** The SDK serializer's contract, encoding with one reused OtlpTraceEncoder, and the SDK's response decoding. */
function directTraceSerializer(): ISerializer<ReadableSpan[], IExportTraceServiceResponse> {
  const encoder = new OtlpTraceEncoder();
  return {
    serializeRequest: (spans) => encoder.encode(spans),
    deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
  };
}

/**
 * A gRPC exporter whose channel is replaced after it reported UNAVAILABLE. grpc-js backs off reconnecting a failed
 * channel up to 120 s and fails every call at once meanwhile, so a collector that came back would stay unused for
 * minutes; the SDK exporter takes no channel options to cap that. The batch processor probes at its own capped
 * pace while the collector is away, and each probe gets a fresh channel that connects at once.
 */
class RenewingGrpcExporter implements SpanExporter {
  private _exporter: SpanExporter;
  private _stale = false;

  constructor(private readonly _create: () => SpanExporter) {
    this._exporter = _create();
  }

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    if (this._stale) {
      this._stale = false;
      void this._exporter.shutdown().catch(() => undefined);
      this._exporter = this._create();
    }
    this._exporter.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS && exportErrorStatus(result.error) === GRPC_UNAVAILABLE)
        this._stale = true;
      resultCallback(result);
    });
  }

  forceFlush(): Promise<void> {
    return this._exporter.forceFlush?.() ?? Promise.resolve();
  }

  shutdown(): Promise<void> {
    return this._exporter.shutdown();
  }
}

/**
 * Same options, `url` being the metrics endpoint: the SDK's metric exporter (temporality, transport, retries) with
 * h2o-otel's encoder, which writes the exemplars h2o-otel's own histograms carry beside their data points.
 */
export function createOtlpMetricExporter(o: OtlpOptions): PushMetricExporter {
  const serializer = directMetricsSerializer();
  const delegate =
    o.protocol === 'grpc'
      ? createOtlpGrpcExportDelegate(
          convertLegacyOtlpGrpcOptions(grpcConfig(o), 'METRICS'),
          serializer,
          'otlp_grpc_metric_exporter',
          MetricsExporterMetricsHelper,
          undefined,
          'MetricsExportService',
          '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
        )
      : createOtlpHttpExportDelegate(
          convertLegacyHttpOptions(protoConfig(o), 'METRICS', 'v1/metrics', {
            'Content-Type': 'application/x-protobuf',
          }),
          serializer,
          'otlp_http_metric_exporter',
          MetricsExporterMetricsHelper,
          undefined,
        );
  // The metric exporter base pins its own copy of otlp-exporter-base (one patch release apart): same delegate.
  return new OTLPMetricExporterBase(
    delegate as unknown as ConstructorParameters<typeof OTLPMetricExporterBase>[0],
  );
}

function directMetricsSerializer(): ISerializer<ResourceMetrics, IExportMetricsServiceResponse> {
  const encoder = new OtlpMetricsEncoder();
  return {
    serializeRequest: (rm) => encoder.encode(rm),
    deserializeResponse: (data) => ProtobufMetricsSerializer.deserializeResponse(data),
  };
}
