/**
 * Request and connection records → OpenTelemetry spans. Request spans (SERVER) link to their connection span
 * (INTERNAL): a connection carries requests of many traces.
 */
import type { Context, Link, SpanContext, TextMapGetter } from '@opentelemetry/api';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ConnectionRecord, Header, RecordSink, RequestRecord } from '../correlate/records.js';
import { earlier, later } from '../correlate/records.js';
import type { FieldSubset, UsedHeaderNames } from '../events/types.js';
import { K } from './attribute-keys.js';
import {
  addConnectionClose,
  connectionSpanName,
  connectionStartAttributes,
} from './connection-attributes.js';
import type { FinishedSpan, SpanFactory } from './finished-span.js';
import { toHrTime } from './hr-time.js';
import { QUIC_STATS_FIELDS } from './quic-attributes.js';
import { addTransportEvents } from './quic-events.js';
import { MAPPED_REQUEST_HEADERS, MAPPED_RESPONSE_HEADERS, requestAttributes } from './request-attributes.js';
import type { RequestAttributeOptions } from './request-attributes.js';
import { endTunnelSpans } from './tunnel-spans.js';
import { endUpstreamSpan } from './upstream-spans.js';

export type SpanMapperOptions = RequestAttributeOptions;

export interface SpanMapperStats {
  requestSpans: number;
  connectionSpans: number;
  /** CLIENT spans of CONNECT tunnels' upstream attempts. */
  tunnelSpans: number;
  /** CLIENT spans of reverse-proxied requests' upstream exchanges. */
  upstreamSpans: number;
  continuedTraces: number;
  invalidTraceparents: number;
}

const headerGetter: TextMapGetter<readonly Header[]> = {
  keys: (carrier) => carrier.map((h) => h.name),
  get: (carrier, key) => {
    for (const h of carrier) if (h.name === key) return h.value;
    return undefined;
  },
};

export class SpanMapper implements RecordSink {
  readonly stats: SpanMapperStats = {
    requestSpans: 0,
    connectionSpans: 0,
    tunnelSpans: 0,
    upstreamSpans: 0,
    continuedTraces: 0,
    invalidTraceparents: 0,
  };
  /** Connection spans started (for a link) and not yet ended. */
  private readonly _connSpans = new Map<ConnectionRecord, FinishedSpan>();
  private readonly _propagator = new W3CTraceContextPropagator();

  constructor(
    private readonly _spans: SpanFactory,
    private readonly _opts: SpanMapperOptions,
  ) {}

  /** The header names that can change a span: read by the mapping, or captured by the policy. */
  usedHeaderNames(): UsedHeaderNames {
    const policy = this._opts.headers;
    return {
      request: policy.requestNames === 'all' ? 'all' : [...MAPPED_REQUEST_HEADERS, ...policy.requestNames],
      response:
        policy.responseNames === 'all' ? 'all' : [...MAPPED_RESPONSE_HEADERS, ...policy.responseNames],
    };
  }

  /** Points of which spans read only some fields, for decoders that can read just those. */
  usedFields(): readonly FieldSubset[] {
    return [QUIC_STATS_FIELDS];
  }

  requestCompleted(req: RequestRecord): void {
    const connSpan = this._connectionSpan(req.conn);
    const attributes = requestAttributes(req, this._opts);
    const method = attributes.get(K.httpRequestMethod);
    const name = typeof method === 'string' && method !== '_OTHER' ? method : 'HTTP';
    const links: Link[] = [{ context: connSpan.spanContext() }];
    // An HTTP/3 request begins when its stream opens, which quicly reports before H2O's receive_request.
    let start = req.start;
    for (const e of req.transportEvents) start = earlier(start, e);
    const span = this._spans.start(
      this._parentContext(req),
      name,
      SpanKind.SERVER,
      toHrTime(start),
      attributes,
      links,
    );
    if (req.responseStart !== undefined) {
      span.events.push({ name: 'response_start', time: toHrTime(req.responseStart) });
    }
    if (req.transportEvents.length > 0) {
      addTransportEvents(span, req.transportEvents, req.droppedTransportEvents);
      attributes.set(K.quicPacketsLost, req.packetsLost);
      attributes.set(K.quicPtos, req.ptos);
    }
    const status = req.status;
    if (status !== undefined && status >= 500) {
      attributes.set(K.errorType, String(status));
      span.status = { code: SpanStatusCode.ERROR };
    } else if (
      status === undefined &&
      (req.incomplete === 'connection_closed' || req.incomplete === 'timeout')
    ) {
      attributes.set(K.errorType, req.incomplete === 'timeout' ? 'timeout' : 'no_response');
      span.status = { code: SpanStatusCode.ERROR, message: 'no response was sent' };
    }
    if (req.tunnel !== undefined)
      this.stats.tunnelSpans += endTunnelSpans(this._spans, span, req, req.tunnel);
    if (req.upstream !== undefined) {
      endUpstreamSpan(this._spans, span, req.upstream);
      this.stats.upstreamSpans++;
    }
    this._spans.end(span, toHrTime(later(req.end ?? start, start)));
    this.stats.requestSpans++;
  }

  connectionClosed(conn: ConnectionRecord): void {
    const span = this._connectionSpan(conn);
    this._connSpans.delete(conn);
    addConnectionClose(span, conn);
    this._spans.end(span, toHrTime(later(conn.end ?? conn.last, conn.start)));
  }

  private _connectionSpan(conn: ConnectionRecord): FinishedSpan {
    const known = this._connSpans.get(conn);
    if (known !== undefined) return known;
    const span = this._spans.start(
      ROOT_CONTEXT,
      connectionSpanName(conn),
      SpanKind.INTERNAL,
      toHrTime(conn.start),
      connectionStartAttributes(conn),
      [],
    );
    this._connSpans.set(conn, span);
    this.stats.connectionSpans++;
    return span;
  }

  /** A valid incoming `traceparent` makes the request span a child of the caller's span. */
  private _parentContext(req: RequestRecord): Context {
    let hasTraceparent = false;
    for (const h of req.requestHeaders) if (h.name === 'traceparent') hasTraceparent = true;
    if (!hasTraceparent) return ROOT_CONTEXT;
    const ctx = this._propagator.extract(ROOT_CONTEXT, req.requestHeaders, headerGetter);
    const parent: SpanContext | undefined = trace.getSpanContext(ctx);
    if (parent === undefined) {
      this.stats.invalidTraceparents++;
      return ROOT_CONTEXT;
    }
    this.stats.continuedTraces++;
    return ctx;
  }
}
