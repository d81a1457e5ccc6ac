/**
 * RED metrics from spans: rate, errors and duration of every request, as the HTTP semantic conventions name them
 * (`http.server.request.duration` and the body sizes, with their low-cardinality attributes), and per connection its
 * duration and, for QUIC, its smoothed RTT and loss ratio. Recorded from every finished span, sampled or not, so
 * neither head nor tail sampling skews them; the exemplars point only at spans that were exported.
 */
import { SpanKind, ValueType } from '@opentelemetry/api';
import type { Attributes, Histogram, Meter } from '@opentelemetry/api';
import { K } from './attribute-keys.js';
import { attrKey } from './attribute-list.js';
import type { AttrKey, AttributeList } from './attribute-list.js';
import type { ExemplarStore } from './exemplars.js';
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

/** A request's metric attributes, in this order (the exemplar store keys attribute sets by it). */
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

/** The attribute names of each metric that has exemplars, in the order their sets are keyed. */
export const EXEMPLAR_KEYS: ReadonlyMap<string, readonly string[]> = new Map([
  [REQUEST_DURATION, REQUEST_KEYS.map((k) => k.name)],
]);

export function requestMetricAttributes(a: AttributeList): Attributes {
  return pick(a, REQUEST_KEYS);
}

function pick(a: AttributeList, keys: readonly AttrKey[]): Attributes {
  const out: Attributes = {};
  for (const k of keys) {
    const v = a.get(k);
    if (v !== undefined) out[k.name] = v;
  }
  return out;
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
  private readonly _duration: Histogram;
  private readonly _requestBody: Histogram;
  private readonly _responseBody: Histogram;
  private readonly _connectionDuration: Histogram;
  private readonly _rtt: Histogram;
  private readonly _lossRatio: Histogram;

  constructor(meter: Meter) {
    const histogram = (name: string, unit: string, description: string, buckets?: number[]): Histogram =>
      meter.createHistogram(name, {
        unit,
        description,
        valueType: ValueType.DOUBLE,
        ...(buckets === undefined ? {} : { advice: { explicitBucketBoundaries: buckets } }),
      });
    this._duration = histogram(
      REQUEST_DURATION,
      's',
      'Duration of HTTP server requests.',
      REQUEST_DURATION_BUCKETS,
    );
    this._requestBody = histogram(
      'http.server.request.body.size',
      'By',
      'Size of HTTP server request bodies.',
    );
    this._responseBody = histogram(
      'http.server.response.body.size',
      'By',
      'Size of HTTP server response bodies.',
    );
    this._connectionDuration = histogram(
      'h2o.connection.duration',
      's',
      'Duration of client connections to H2O, from the first event seen to the close.',
      CONNECTION_DURATION_BUCKETS,
    );
    this._rtt = histogram(
      'h2o.quic.connection.rtt',
      's',
      "QUIC connections' smoothed RTT at close.",
      RTT_BUCKETS,
    );
    this._lossRatio = histogram(
      'h2o.quic.connection.loss_ratio',
      '1',
      "QUIC connections' packets lost over packets sent.",
      LOSS_RATIO_BUCKETS,
    );
  }

  /** Every finished span, sampled or not. */
  record(span: FinishedSpan): void {
    if (span.kind === SpanKind.SERVER) return this._request(span);
    if (isConnectionSpan(span)) this._connection(span);
  }

  private _request(span: FinishedSpan): void {
    const a = span.attributeList;
    const attributes = requestMetricAttributes(a);
    this._duration.record(seconds(span), attributes);
    const requestBody = a.get(K.httpRequestBodySize);
    if (typeof requestBody === 'number') this._requestBody.record(requestBody, attributes);
    const responseBody = a.get(K.httpResponseBodySize);
    if (typeof responseBody === 'number') this._responseBody.record(responseBody, attributes);
  }

  private _connection(span: FinishedSpan): void {
    const a = span.attributeList;
    const attributes = pick(a, CONNECTION_KEYS);
    this._connectionDuration.record(seconds(span), attributes);
    const rtt = a.get(RTT_SMOOTHED_MS);
    if (typeof rtt === 'number') this._rtt.record(rtt / 1000, attributes);
    const sent = a.get(PACKETS_SENT);
    const lost = a.get(K.quicPacketsLost);
    if (typeof sent === 'number' && sent > 0 && typeof lost === 'number')
      this._lossRatio.record(Math.min(1, lost / sent), attributes);
  }
}

/**
 * Where spans enter the export queue: each exported request span's duration is offered as an exemplar of its
 * histogram bucket, then the span goes on.
 */
export class ExemplarTap implements FinishedSpanSink {
  constructor(
    private readonly _next: FinishedSpanSink,
    private readonly _store: ExemplarStore,
  ) {}

  onEnd(span: FinishedSpan): void {
    if (span.kind === SpanKind.SERVER) {
      const ctx = span.spanContext();
      this._store.offer(
        REQUEST_DURATION,
        requestMetricAttributes(span.attributeList),
        REQUEST_DURATION_BUCKETS,
        {
          value: seconds(span),
          time: span.endTime,
          traceId: ctx.traceId,
          spanId: ctx.spanId,
        },
      );
    }
    this._next.onEnd(span);
  }
}
