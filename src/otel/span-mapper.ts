/**
 * Request and connection records → OpenTelemetry spans, following the stable HTTP server semantic conventions.
 * Request spans (SERVER) link to their connection span (INTERNAL): a connection carries requests of many traces.
 */
import type { Attributes, Context, Link, SpanContext, TextMapGetter } from '@opentelemetry/api';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { HrTime } from '@opentelemetry/api';
import type {
  ConnectionRecord,
  Header,
  RecordSink,
  RequestRecord,
  Stamp,
  TunnelRecord,
} from '../correlate/records.js';
import { H2OLOG_PATH, PROBE_PATH, protocolVersion } from '../events/catalogue.js';
import { earlier, later } from '../correlate/records.js';
import { COMMON_KEYS } from '../events/types.js';
import type { FieldSubset, UsedHeaderNames } from '../events/types.js';
import type { FinishedSpan, SpanFactory } from './finished-span.js';
import type { QuicRecord, TlsFacts, TransportEvent } from '../correlate/quic.js';
import { isErrorClose, transportErrorName } from '../correlate/quic.js';
import type { HeaderPolicy } from './header-policy.js';
import { REDACTED } from './header-policy.js';
import { defaultPort, parseAuthority, parseSocketAddress, redactQuery, splitTarget } from './url.js';

/** RFC 9110 methods plus PATCH: anything else is `_OTHER` (semantic conventions). */
const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
]);

const CONNECTION_SPAN_NAMES = {
  'http/1': 'HTTP/1.1 connection',
  'http/2': 'HTTP/2 connection',
  'http/3': 'QUIC connection',
} as const;

/** quicly's `conn_stats` keys worth a QUIC connection attribute, with its name (`h2o.quic.<name>`) built once. */
const QUIC_STATS: readonly (readonly [string, string])[] = (
  [
    ['num-packets.sent', 'packets_sent'],
    ['num-packets.received', 'packets_received'],
    ['num-packets.lost', 'packets_lost'],
    ['num-bytes.sent', 'bytes_sent'],
    ['num-bytes.received', 'bytes_received'],
    ['num-bytes.lost', 'bytes_lost'],
    ['num-ptos', 'ptos'],
    ['rtt.smoothed', 'rtt_smoothed_ms'],
    ['rtt.minimum', 'rtt_min_ms'],
    ['rtt.latest', 'rtt_latest_ms'],
    ['cc.cwnd', 'cwnd'],
    ['cc.num-loss-episodes', 'loss_episodes'],
    ['handshake-confirmed-msec', 'handshake_confirmed_ms'],
    ['num-paths.created', 'paths_created'],
    ['num-paths.promoted', 'paths_promoted'],
  ] as const
).map(([key, name]) => [key, `h2o.quic.${name}`] as const);

export interface SpanMapperOptions {
  readonly headers: HeaderPolicy;
  readonly sensitiveQueryParams: ReadonlySet<string>;
}

export interface SpanMapperStats {
  requestSpans: number;
  connectionSpans: number;
  /** CLIENT spans of CONNECT tunnels' upstream attempts. */
  tunnelSpans: number;
  continuedTraces: number;
  invalidTraceparents: number;
  /**
   * Requests of tracers, not exported: other h2olog clients' handshakes (another h2o-otel's too) and h2o-otel's
   * probe.
   */
  tracerRequests: number;
}

function toHrTime(s: Stamp): HrTime {
  const ms = Math.floor(s.timeMs);
  const sec = Math.floor(ms / 1000);
  return [sec, (ms - sec * 1000) * 1e6 + Math.round((s.timeMs - ms) * 1e6) + s.timeSubNs];
}

/** Request headers the mapper reads whatever the capture policy: the URL, peer, user agent and trace context. */
const MAPPED_REQUEST_HEADERS: ReadonlySet<string> = new Set([
  ':method',
  ':path',
  ':scheme',
  ':authority',
  'user-agent',
  'x-forwarded-for',
  'forwarded',
  'traceparent',
  'tracestate',
]);

const h3Names = new Map<string, string>();

/**
 * `h2o.h3.<key>`, built once per key: a name built per span is a new string that V8 hashes and internalizes again
 * as a property key (with the QUIC statistics' names built once too, mapping takes 15 % less time). H2O's keys are
 * a small fixed set; the cache is bounded all the same.
 */
function h3Attribute(key: string): string {
  let name = h3Names.get(key);
  if (name === undefined) {
    name = `h2o.h3.${key}`;
    if (h3Names.size < 1024) h3Names.set(key, name);
  }
  return name;
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
    continuedTraces: 0,
    invalidTraceparents: 0,
    tracerRequests: 0,
  };
  /** Connection spans started (for a link) and not yet ended. */
  private readonly _connSpans = new Map<ConnectionRecord, FinishedSpan>();
  /** Connections that carried a tracer's request (`isTracerRequest`): no span of theirs is exported. */
  private readonly _tracerConns = new WeakSet<ConnectionRecord>();
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
      response: policy.responseNames === 'all' ? 'all' : ['content-length', ...policy.responseNames],
    };
  }

  /** Points of which spans read only some fields, for decoders that can read just those. */
  usedFields(): readonly FieldSubset[] {
    return [{ module: 'quicly', type: 'conn_stats', fields: QUIC_STATS.map(([key]) => key) }];
  }

  requestCompleted(req: RequestRecord): void {
    if (isTracerRequest(req)) {
      this._tracerConns.add(req.conn);
      this.stats.tracerRequests++;
      return;
    }
    const connSpan = this._connectionSpan(req.conn);
    const attributes = this._requestAttributes(req);
    const method = attributes['http.request.method'];
    const name = typeof method === 'string' && method !== '_OTHER' ? method : 'HTTP';
    const links: Link[] = [{ context: connSpan.spanContext() }];
    // An HTTP/3 request begins when its stream opens, which quicly reports before H2O's receive_request.
    let start = req.start;
    for (const e of req.transportEvents) start = earlier(start, e.at);
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
      attributes['h2o.quic.packets_lost'] = req.packetsLost;
      attributes['h2o.quic.ptos'] = req.ptos;
    }
    const status = req.status;
    if (status !== undefined && status >= 500) {
      attributes['error.type'] = String(status);
      span.status = { code: SpanStatusCode.ERROR };
    } else if (
      status === undefined &&
      (req.incomplete === 'connection_closed' || req.incomplete === 'timeout')
    ) {
      attributes['error.type'] = req.incomplete === 'timeout' ? 'timeout' : 'no_response';
      span.status = { code: SpanStatusCode.ERROR, message: 'no response was sent' };
    }
    if (req.tunnel !== undefined) this._tunnelSpans(span, req, req.tunnel);
    this._spans.end(span, toHrTime(later(req.end ?? start, start)));
    this.stats.requestSpans++;
  }

  /** CONNECT: one CLIENT child span per upstream connection attempt, the connected one with the tunnel's bytes. */
  private _tunnelSpans(parent: FinishedSpan, req: RequestRecord, t: TunnelRecord): void {
    if (t.error !== undefined) parent.attributes['h2o.tunnel.error'] = t.error;
    const ctx = trace.setSpanContext(ROOT_CONTEXT, parent.spanContext());
    const requested = parseAuthority(headerValue(req, ':authority') ?? '');
    for (const attempt of t.attempts) {
      const a: Attributes = { 'network.transport': attempt.transport };
      if (requested !== undefined) {
        a['server.address'] = requested.host;
        if (requested.port !== undefined) a['server.port'] = requested.port;
      }
      const peer = attempt.dest === undefined ? undefined : parseSocketAddress(attempt.dest);
      if (peer !== undefined) {
        a['network.peer.address'] = peer.host;
        if (peer.port !== undefined) a['network.peer.port'] = peer.port;
      }
      if (attempt.connected) {
        a['h2o.tunnel.bytes_sent'] = t.bytesSent;
        a['h2o.tunnel.bytes_received'] = t.bytesReceived;
      }
      const span = this._spans.start(
        ctx,
        `${attempt.transport} connect`,
        SpanKind.CLIENT,
        toHrTime(attempt.start),
        a,
        [],
      );
      if (attempt.connected) {
        for (const p of t.problems) {
          span.events.push({ name: p.kind, attributes: { message: p.message }, time: toHrTime(p.at) });
        }
      } else {
        a['error.type'] = t.error ?? 'connect_failed';
        span.status = { code: SpanStatusCode.ERROR, message: attempt.error ?? 'not connected' };
      }
      this._spans.end(span, toHrTime(later(attempt.end ?? req.end ?? attempt.start, attempt.start)));
      this.stats.tunnelSpans++;
    }
  }

  connectionClosed(conn: ConnectionRecord): void {
    // A tracer's connection (one HTTP/1.0 request) is not traffic.
    if (this._tracerConns.has(conn) && !this._connSpans.has(conn)) return;
    const span = this._connectionSpan(conn);
    this._connSpans.delete(conn);
    const a = span.attributes;
    a['h2o.request_count'] = conn.requestCount;
    if (conn.closeStats !== undefined) {
      // h3s_destroy: requests, stream, header and body bytes each way, control and QPACK stream bytes.
      const stats = conn.closeStats;
      for (const key in stats) {
        const v = stats[key];
        if (key !== 'conn_id' && !COMMON_KEYS.has(key) && typeof v === 'number') a[h3Attribute(key)] = v;
      }
    }
    if (conn.quic !== undefined) this._quicConnection(span, a, conn.quic);
    if (conn.tls !== undefined) {
      tlsAttributes(a, conn.tls);
      if (conn.tls.done !== undefined) {
        span.events.push({ name: 'tls.handshake_complete', time: toHrTime(conn.tls.done) });
      }
    }
    if (conn.writes > 0) {
      a['h2o.socket.bytes_written'] = conn.bytesWritten;
      a['h2o.socket.writes'] = conn.writes;
    }
    if (conn.writeFailures > 0) a['h2o.socket.write_failures'] = conn.writeFailures;
    if (conn.incomplete !== undefined) a['h2o.incomplete'] = conn.incomplete;
    this._spans.end(span, toHrTime(later(conn.end ?? conn.last, conn.start)));
  }

  /** Sub-events, totals (exact even when events were capped), quicly's statistics, the close reason, TLS facts. */
  private _quicConnection(span: FinishedSpan, a: Attributes, q: QuicRecord): void {
    addTransportEvents(span, q.events, q.droppedEvents);
    if (q.originalDcid !== undefined) a['h2o.quic.original_dcid'] = q.originalDcid;
    if (q.version !== undefined) a['h2o.quic.version'] = `0x${q.version.toString(16)}`;
    a['h2o.quic.packets_lost'] = q.packetsLost;
    a['h2o.quic.ptos'] = q.ptos;
    a['h2o.quic.congestion_events'] = q.congestionEvents;
    if (q.keyUpdates > 0) a['h2o.quic.key_updates'] = q.keyUpdates;
    if (q.ecnCe > 0) a['h2o.quic.ecn_ce'] = q.ecnCe;
    if (q.droppedEvents > 0) a['h2o.quic.events_dropped'] = q.droppedEvents;
    if (q.stats !== undefined) {
      for (const [key, name] of QUIC_STATS) {
        const v = q.stats[key];
        if (typeof v === 'number') a[name] = v;
      }
    }
    const c = q.close;
    if (c !== undefined) {
      a['h2o.quic.close.side'] = c.side;
      a['h2o.quic.close.kind'] = c.kind;
      a['h2o.quic.close.error_code'] = Number(c.errorCode);
      if (c.kind === 'transport') {
        a['h2o.quic.close.error'] = transportErrorName(c.errorCode);
        a['h2o.quic.close.frame_type'] = Number(c.frameType ?? 0);
      }
      if (c.reason !== '') a['h2o.quic.close.reason'] = c.reason;
    } else if (q.idleTimeout) {
      a['h2o.quic.close.kind'] = 'idle_timeout';
    }
    if (isErrorClose(c)) {
      a['error.type'] = transportErrorName(c!.errorCode);
      span.status = {
        code: SpanStatusCode.ERROR,
        message: `QUIC connection closed with ${String(a['error.type'])}`,
      };
    }
    tlsAttributes(a, q.tls);
  }

  private _connectionSpan(conn: ConnectionRecord): FinishedSpan {
    const known = this._connSpans.get(conn);
    if (known !== undefined) return known;
    const a: Attributes = { 'h2o.conn_id': conn.connId, 'network.protocol.name': 'http' };
    if (conn.uuid !== undefined) a['h2o.conn_uuid'] = conn.uuid;
    if (conn.protocol === 'http/2') a['network.protocol.version'] = '2';
    if (conn.protocol === 'http/3') a['network.protocol.version'] = '3';
    a['network.transport'] = conn.protocol === 'http/3' ? 'quic' : 'tcp';
    if (conn.http1ConnId !== undefined) a['h2o.http1_conn_id'] = conn.http1ConnId;
    if (conn.remote !== undefined) addPeer(a, conn.remote);
    const name = conn.protocol === undefined ? 'HTTP connection' : CONNECTION_SPAN_NAMES[conn.protocol];
    const span = this._spans.start(ROOT_CONTEXT, name, SpanKind.INTERNAL, toHrTime(conn.start), a, []);
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

  private _requestAttributes(req: RequestRecord): Attributes {
    const a: Attributes = {};
    const policy = this._opts.headers;
    let method: string | undefined;
    let target: string | undefined;
    let scheme: string | undefined;
    let authority: string | undefined;
    let forwardedFor: string | undefined;
    const captured = new Map<string, string[]>();
    const truncated: string[] = [];
    for (const h of req.requestHeaders) {
      if (h.truncated === true) truncated.push(h.name);
      switch (h.name) {
        case ':method':
          method = h.value;
          continue;
        case ':path':
          target = h.value;
          continue;
        case ':scheme':
          scheme = h.value;
          continue;
        case ':authority':
          authority = h.value;
          continue;
        case 'user-agent':
          a['user_agent.original'] = h.value;
          break;
        case 'x-forwarded-for':
          forwardedFor ??= h.value.split(',')[0]?.trim();
          break;
        case 'forwarded':
          forwardedFor ??= forwardedForOf(h.value);
          break;
      }
      if (policy.captureRequest(h.name)) this._capture(captured, h, truncated);
    }
    if (method !== undefined) {
      if (KNOWN_METHODS.has(method)) {
        a['http.request.method'] = method;
      } else {
        a['http.request.method'] = '_OTHER';
        a['http.request.method_original'] = method;
      }
    }
    if (target !== undefined) {
      const { path, query } = splitTarget(target);
      a['url.path'] = path;
      if (query !== undefined) a['url.query'] = redactQuery(query, this._opts.sensitiveQueryParams);
    }
    if (scheme !== undefined) a['url.scheme'] = scheme;
    if (authority !== undefined) {
      const parsed = parseAuthority(authority);
      if (parsed !== undefined) {
        a['server.address'] = parsed.host;
        const port = parsed.port ?? defaultPort(scheme);
        if (port !== undefined) a['server.port'] = port;
      }
    }
    if (req.status !== undefined) a['http.response.status_code'] = req.status;
    a['network.protocol.name'] = 'http';
    const version = this._protocolVersion(req);
    if (version !== undefined) a['network.protocol.version'] = version;
    a['network.transport'] = req.conn.protocol === 'http/3' ? 'quic' : 'tcp';
    if (forwardedFor !== undefined && forwardedFor.length > 0) a['client.address'] = forwardedFor;
    if (req.conn.remote !== undefined) addPeer(a, req.conn.remote);
    a['h2o.conn_id'] = req.conn.connId;
    a['h2o.req_id'] = req.reqId;
    if (req.upgradedToHttp2) a['h2o.upgrade'] = 'h2c';
    for (const h of req.responseHeaders) {
      if (h.truncated === true) truncated.push(h.name);
      if (h.name === 'content-length') {
        const n = Number(h.value);
        if (Number.isSafeInteger(n)) a['http.response.body.size'] = n;
      }
      if (policy.captureResponse(h.name)) this._capture(captured, h, truncated, 'http.response.header.');
    }
    const stats = req.streamStats;
    if (stats !== undefined) {
      if (typeof stats.request_body_bytes === 'number')
        a['http.request.body.size'] = stats.request_body_bytes;
      if (typeof stats.response_body_bytes === 'number')
        a['http.response.body.size'] = stats.response_body_bytes;
    }
    for (const [key, values] of captured) a[key] = values;
    if (truncated.length > 0) a['h2o.truncated_headers'] = truncated;
    if (req.hiddenHeaders > 0) a['h2o.hidden_headers'] = req.hiddenHeaders;
    if (req.droppedHeaders > 0) a['h2o.dropped_headers'] = req.droppedHeaders;
    if (req.incomplete !== undefined) a['h2o.incomplete'] = req.incomplete;
    return a;
  }

  private _capture(
    captured: Map<string, string[]>,
    h: Header,
    truncated: string[],
    prefix = 'http.request.header.',
  ): void {
    const key = prefix + h.name;
    let value = h.value;
    const policy = this._opts.headers;
    if (policy.isSanitized(h.name)) {
      value = REDACTED;
    } else if (value.length > policy.maxValueLength) {
      value = value.slice(0, policy.maxValueLength);
      if (h.truncated !== true) truncated.push(h.name);
    }
    const list = captured.get(key);
    if (list === undefined) captured.set(key, [value]);
    else list.push(value);
  }

  private _protocolVersion(req: RequestRecord): string | undefined {
    if (req.upgradedToHttp2) return '2';
    if (req.httpVersion !== undefined) return protocolVersion(req.httpVersion);
    if (req.conn.protocol === 'http/2') return '2';
    if (req.conn.protocol === 'http/3') return '3';
    return undefined;
  }
}

/** TLS facts from picotls (QUIC connections, and TCP ones where the handshake could be tied to them). */
function tlsAttributes(a: Attributes, t: TlsFacts): void {
  if (t.start !== undefined && t.done !== undefined) a['h2o.tls.handshake_ms'] = durationMs(t.start, t.done);
  if (t.lastResult !== undefined) a['h2o.tls.handshake_result'] = t.lastResult;
  if (t.ech !== undefined) a['h2o.tls.ech'] = t.ech;
  if (t.earlyData) a['h2o.tls.early_data'] = true;
}

function durationMs(from: Stamp, to: Stamp): number {
  return Math.round(((to.timeMs - from.timeMs) * 1e6 + (to.timeSubNs - from.timeSubNs)) / 1e3) / 1e3;
}

/**
 * Events kept by the correlator, in order. Those it had to leave out (the per-span cap) are added to the span's
 * dropped-events count, which OTLP carries and trace viewers show; the totals stay in the attributes.
 */
function addTransportEvents(span: FinishedSpan, events: readonly TransportEvent[], dropped: number): void {
  for (const e of events) span.events.push({ name: e.name, attributes: e.attributes, time: toHrTime(e.at) });
  span.droppedEventsCount += dropped;
}

function headerValue(req: RequestRecord, name: string): string | undefined {
  for (const h of req.requestHeaders) if (h.name === name) return h.value;
  return undefined;
}

/**
 * Requests that are not the user's traffic: h2o-otel's own appdata probe, and an h2olog client's handshake. H2O
 * hands the handshake's socket over to its log stream and writes the 200 itself, so the request ends with its
 * connection and no response: as a span it would be a failed request each time a tracer (another h2o-otel, H2O's
 * `misc/h2olog`) connects. A request to that path that did get a response (H2O without h2olog there: a 404) is
 * traffic like any other.
 */
function isTracerRequest(req: RequestRecord): boolean {
  const path = headerValue(req, ':path');
  if (path === undefined) return false;
  if (path === PROBE_PATH) return true;
  return (
    req.status === undefined &&
    path.startsWith(H2OLOG_PATH) &&
    (path.length === H2OLOG_PATH.length || path.charCodeAt(H2OLOG_PATH.length) === 0x3f) /* ? */
  );
}

function addPeer(a: Attributes, remote: string): void {
  const peer = parseSocketAddress(remote);
  if (peer === undefined) return;
  a['network.peer.address'] = peer.host;
  if (peer.port !== undefined) a['network.peer.port'] = peer.port;
  if (a['client.address'] === undefined) {
    a['client.address'] = peer.host;
    if (peer.port !== undefined) a['client.port'] = peer.port;
  }
}

/** The first `for=` of a `Forwarded` header (RFC 7239), without quotes, brackets or port. */
function forwardedForOf(value: string): string | undefined {
  const m = /(?:^|[;,\s])for=("?)([^;,"]+)\1/i.exec(value);
  if (m === null) return undefined;
  let v = m[2]!.trim();
  if (v.startsWith('[')) v = v.slice(1, v.indexOf(']') > 0 ? v.indexOf(']') : undefined);
  else if (/^[\d.]+:\d+$/.test(v)) v = v.slice(0, v.indexOf(':'));
  return v;
}
