/**
 * RED metrics from spans: rate, errors and duration of every request, as the HTTP semantic conventions name them
 * (`http.server.request.duration` and the body sizes, with their low-cardinality attributes), and per connection its
 * duration and, for QUIC, its smoothed RTT and loss ratio. Recorded from every finished span, sampled or not, so
 * neither head nor tail sampling skews them; the exemplars point only at spans that were exported. Aggregated here
 * (explicit-histogram.ts) and read by the SDK's metric readers as a `MetricProducer`.
 */
import { SpanKind, ValueType } from '@opentelemetry/api';
import type { Attributes, HrTime } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType } from '@opentelemetry/sdk-metrics';
import type { CollectionResult, HistogramMetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { K } from './attribute-keys.js';
import { attrKey } from './attribute-list.js';
import type { AttrKey, AttributeList } from './attribute-list.js';
import { ExplicitHistogram } from './explicit-histogram.js';
import type { FinishedSpan, FinishedSpanSink } from './finished-span.js';

export const REQUEST_DURATION = 'http.server.request.duration';

/** The conventions' advisory buckets for HTTP durations, in seconds. */
export const REQUEST_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];
/** Connections last from milliseconds (a refused handshake) to hours (keep-alive, HTTP/2). */
const CONNECTION_DURATION_BUCKETS = [
  0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 1800, 3600,
];
const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const LOSS_RATIO_BUCKETS = [0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];
/** The SDK's default buckets, for the body sizes (the conventions advise none). */
const DEFAULT_BUCKETS = [0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000];

/** A request's metric attributes. */
const REQUEST_KEYS: readonly AttrKey[] = [
  K.httpRequestMethod,
  K.httpResponseStatusCode,
  K.errorType,
  K.networkProtocolName,
  K.networkProtocolVersion,
  K.urlScheme,
  K.serverAddress,
  K.serverPort,
];
const CONNECTION_KEYS: readonly AttrKey[] = [
  K.networkProtocolName,
  K.networkProtocolVersion,
  K.networkTransport,
];
const RTT_SMOOTHED_MS = attrKey('h2o.quic.rtt_smoothed_ms');
const PACKETS_SENT = attrKey('h2o.quic.packets_sent');

function pick(a: AttributeList, keys: readonly AttrKey[]): Attributes {
  const out: Attributes = {};
  for (const k of keys) {
    const v = a.get(k);
    if (v !== undefined) out[k.name] = v;
  }
  return out;
}

/** The attribute set's key: its values in `keys`' order, so equal sets of these keys are equal keys. */
function setKey(a: AttributeList, keys: readonly AttrKey[]): string {
  let key = '';
  for (const k of keys) {
    const v = a.get(k);
    key += v === undefined ? '\u0001' : `${String(v)}\u0000`;
  }
  return key;
}

function seconds(span: FinishedSpan): number {
  const [s, ns] = span.duration;
  return s + ns / 1e9;
}

/** Only connection spans carry the count of requests their connection served. */
function isConnectionSpan(span: FinishedSpan): boolean {
  return span.kind === SpanKind.INTERNAL && span.attributeList.get(K.requestCount) !== undefined;
}

export class RedMetrics {
  private readonly _duration = new ExplicitHistogram(
    REQUEST_DURATION,
    's',
    'Duration of HTTP server requests.',
    REQUEST_DURATION_BUCKETS,
  );
  private readonly _requestBody = new ExplicitHistogram(
    'http.server.request.body.size',
    'By',
    'Size of HTTP server request bodies.',
    DEFAULT_BUCKETS,
  );
  private readonly _responseBody = new ExplicitHistogram(
    'http.server.response.body.size',
    'By',
    'Size of HTTP server response bodies.',
    DEFAULT_BUCKETS,
  );
  private readonly _connectionDuration = new ExplicitHistogram(
    'h2o.connection.duration',
    's',
    'Duration of client connections to H2O, from the first event seen to the close.',
    CONNECTION_DURATION_BUCKETS,
  );
  private readonly _rtt = new ExplicitHistogram(
    'h2o.quic.connection.rtt',
    's',
    "QUIC connections' smoothed RTT at close.",
    RTT_BUCKETS,
  );
  private readonly _lossRatio = new ExplicitHistogram(
    'h2o.quic.connection.loss_ratio',
    '1',
    "QUIC connections' packets lost over packets sent.",
    LOSS_RATIO_BUCKETS,
  );
  private readonly _all = [
    this._duration,
    this._requestBody,
    this._responseBody,
    this._connectionDuration,
    this._rtt,
    this._lossRatio,
  ];
  private readonly _start: HrTime = hrTime();

  constructor(
    private readonly _resource: Resource,
    private readonly _scope: InstrumentationScope,
  ) {}

  /** Every finished span, sampled or not. */
  record(span: FinishedSpan): void {
    if (span.kind === SpanKind.SERVER) return this._request(span);
    if (isConnectionSpan(span)) this._connection(span);
  }

  /** An exported request span: the exemplar of its duration's bucket. */
  offerExemplar(span: FinishedSpan): void {
    const ctx = span.spanContext();
    this._duration.offer(setKey(span.attributeList, REQUEST_KEYS), {
      value: seconds(span),
      time: span.endTime,
      traceId: ctx.traceId,
      spanId: ctx.spanId,
    });
  }

  /** What a metric reader collects: with `exemplars`, it takes them (one reader only: OTLP). */
  producer(exemplars: boolean): MetricProducer {
    return { collect: () => Promise.resolve(this._collect(exemplars)) };
  }

  private _request(span: FinishedSpan): void {
    const a = span.attributeList;
    const key = setKey(a, REQUEST_KEYS);
    const attributes = (): Attributes => pick(a, REQUEST_KEYS);
    this._duration.record(key, attributes, seconds(span));
    const requestBody = a.get(K.httpRequestBodySize);
    if (typeof requestBody === 'number') this._requestBody.record(key, attributes, requestBody);
    const responseBody = a.get(K.httpResponseBodySize);
    if (typeof responseBody === 'number') this._responseBody.record(key, attributes, responseBody);
  }

  private _connection(span: FinishedSpan): void {
    const a = span.attributeList;
    const key = setKey(a, CONNECTION_KEYS);
    const attributes = (): Attributes => pick(a, CONNECTION_KEYS);
    this._connectionDuration.record(key, attributes, seconds(span));
    const rtt = a.get(RTT_SMOOTHED_MS);
    if (typeof rtt === 'number') this._rtt.record(key, attributes, rtt / 1000);
    const sent = a.get(PACKETS_SENT);
    const lost = a.get(K.quicPacketsLost);
    if (typeof sent === 'number' && sent > 0 && typeof lost === 'number')
      this._lossRatio.record(key, attributes, Math.min(1, lost / sent));
  }

  private _collect(exemplars: boolean): CollectionResult {
    const end = hrTime();
    const metrics: HistogramMetricData[] = [];
    for (const h of this._all) {
      const dataPoints = h.dataPoints(this._start, end, exemplars && h === this._duration);
      if (dataPoints.length === 0) continue;
      metrics.push({
        descriptor: { name: h.name, unit: h.unit, description: h.description, valueType: ValueType.DOUBLE },
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints,
      });
    }
    return {
      resourceMetrics: { resource: this._resource, scopeMetrics: [{ scope: this._scope, metrics }] },
      errors: [],
    };
  }
}

/** Where spans enter the export queue: each exported request span leaves its exemplar, then goes on. */
export class ExemplarTap implements FinishedSpanSink {
  constructor(
    private readonly _next: FinishedSpanSink,
    private readonly _red: RedMetrics,
  ) {}

  onEnd(span: FinishedSpan): void {
    if (span.kind === SpanKind.SERVER) this._red.offerExemplar(span);
    this._next.onEnd(span);
  }
}
