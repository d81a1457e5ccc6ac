/**
 * Per-connection and per-request state machines over one source session (one h2olog socket connection, one
 * replay). H2O's conn ids restart with the server, so a new session needs a new Correlator.
 *
 * Time is the events' own clock (the newest event time seen), advanced by `tick()` while the source is idle, so
 * a replay gives the same records as the live stream it was recorded from.
 */
import { numberOf } from '../events/types.js';
import type { FieldUse, FieldValue, ProbeEvent } from '../events/types.js';
import type {
  ConnectionRecord,
  Header,
  IncompleteReason,
  Protocol,
  RecordSink,
  RequestRecord,
  Stamp,
  TlsFacts,
  TransportEvent,
} from './records.js';
import { later } from './records.js';
import {
  applyQuicEvent,
  applyTlsEvent,
  isRequestStream,
  isEarlyDataSecret,
  newQuicRecord,
  newTlsFacts,
  STREAM_EVENT_TYPES,
  streamEvent,
} from './quic.js';
import { applyConnectEvent, closeAttempts, tunnelOpen } from './tunnel.js';

export interface CorrelatorOptions {
  /** HTTP/1 has no request-end event: end a request this long after its last response write (ms). */
  readonly http1QuietMs: number;
  /** HTTP/2 has no request-end event: the span ends at `send_response`; wait this long for late events (ms). */
  readonly http2GraceMs: number;
  /** HTTP/2 has no close event: a connection with no open request and no event for this long has ended (ms). */
  readonly http2IdleMs: number;
  /** A connection with no event for this long is closed and flagged (ms); H2O closes idle ones far sooner. */
  readonly connectionIdleMs: number;
  /** A request open this long is exported and flagged (ms). */
  readonly requestTimeoutMs: number;
  /** Open connections kept at most; the oldest is evicted (and counted) beyond it. */
  readonly maxConnections: number;
  /** Open requests per connection kept at most. */
  readonly maxRequestsPerConnection: number;
  /** Headers kept per request and direction; the rest are counted. */
  readonly maxHeaders: number;
  /** QUIC/TLS sub-events kept per span; the rest are counted (and still in the totals). */
  readonly maxSpanEvents: number;
}

export const DEFAULT_CORRELATOR_OPTIONS: CorrelatorOptions = {
  http1QuietMs: 2000,
  http2GraceMs: 200,
  http2IdleMs: 30_000,
  connectionIdleMs: 300_000,
  requestTimeoutMs: 300_000,
  maxConnections: 100_000,
  maxRequestsPerConnection: 1_000,
  maxHeaders: 128,
  maxSpanEvents: 128,
};

export interface CorrelatorStats {
  connections: number;
  requests: number;
  midFlightRequests: number;
  evictedConnections: number;
  evictedRequests: number;
  timedOutRequests: number;
  /** Events for a connection or request that was already complete or never known (e.g. `h1_close` of an unknown conn). */
  orphanEvents: number;
  /** Header events without name and value: the server is not sending application data. */
  hiddenHeaderEvents: number;
  /** Events the correlator does not use (subscribed by someone else, or connection-less). */
  ignoredEvents: number;
}

/** How long after an HTTP/1 close the 101 of an `Upgrade: h2c` request waits for its HTTP/2 continuation. */
const UPGRADE_WINDOW_MS = 1000;
/** A prior-knowledge HTTP/2 connection starts this soon after the `h1_accept` of the same TCP connection. */
const PRIOR_KNOWLEDGE_WINDOW_MS = 1000;
/** Deadlines are checked when the clock has moved this far, not on every event. */
const SWEEP_INTERVAL_MS = 100;
/** After `h3s_destroy` (or `h3s_stream_stats`), quicly's last events of the connection (stream) follow at once. */
const QUIC_TAIL_MS = 200;
/** Stream events held for a request that has not started yet (`stream_on_open` precedes `receive_request`). */
const MAX_PENDING_STREAM_EVENTS = 8;
const MAX_PENDING_STREAMS = 64;

interface ConnState {
  readonly record: ConnectionRecord;
  readonly requests: Map<number, RequestRecord>;
  /** HTTP/1: the request being served (H2O serves one at a time per connection). */
  current: RequestRecord | undefined;
  /** Last socket write on the connection (HTTP/1), kept for the request that is being answered. */
  lastWrite: Stamp | undefined;
  /** H2O closed the connection while a CONNECT tunnel on it was still up: close it when the tunnel ends. */
  closedAt: Stamp | undefined;
  /** HTTP/3 after `h3s_destroy`: wait until this event time (ms) for quicly's final events. */
  closeAfter: number | undefined;
  /** HTTP/3: stream events of requests not started yet, by stream id. */
  pendingStream: Map<number, TransportEvent[]> | undefined;
}

/** A server-side TLS handshake over TCP (picotls, no conn id), until it can be tied to its connection. */
interface TcpTls {
  readonly tid: number;
  readonly facts: TlsFacts;
  bound: boolean;
}

/** TCP TLS handshakes tracked at most (each lives from `picotls:new` to `free`). */
const MAX_TCP_TLS = 4096;

interface PendingUpgrade {
  readonly conn: ConnState;
  readonly req: RequestRecord;
  readonly closedAt: number;
}

function protocolOf(httpVersion: number): Protocol {
  if (httpVersion >= 768) return 'http/3';
  return httpVersion >= 512 ? 'http/2' : 'http/1';
}

export function newCorrelatorStats(): CorrelatorStats {
  return {
    connections: 0,
    requests: 0,
    midFlightRequests: 0,
    evictedConnections: 0,
    evictedRequests: 0,
    timedOutRequests: 0,
    orphanEvents: 0,
    hiddenHeaderEvents: 0,
    ignoredEvents: 0,
  };
}

export class Correlator {
  private readonly _conns = new Map<number, ConnState>();
  /** `h1_accept.sock` → connection, for the socket-level write events. */
  private readonly _bySock = new Map<FieldValue, ConnState>();
  /** Per worker thread, the newest HTTP/1 connection that has not sent a request yet (h2c prior knowledge). */
  private readonly _freshHttp1ByTid = new Map<number, ConnState>();
  /** TCP TLS handshakes by `ptls_t` pointer. */
  private readonly _tcpTls = new Map<FieldValue, TcpTls>();
  /** Per worker thread, the request whose `101 Switching Protocols` to h2c awaits its HTTP/2 response. */
  private readonly _upgradesByTid = new Map<number, PendingUpgrade>();
  private _now = 0;
  private _lastSweep = 0;

  /** `stats` may be shared by the correlators of successive sessions, to count across them. */
  constructor(
    private readonly _opts: CorrelatorOptions,
    private readonly _sink: RecordSink,
    readonly stats: CorrelatorStats = newCorrelatorStats(),
  ) {}

  get openConnections(): number {
    return this._conns.size;
  }

  get openRequests(): number {
    let n = 0;
    for (const c of this._conns.values()) n += c.requests.size;
    return n;
  }

  process(events: readonly ProbeEvent[]): void {
    for (const ev of events) this._event(ev);
  }

  /** Advance the clock while no events arrive (wall-clock ms), so deadlines still fire. */
  tick(nowMs: number): void {
    if (nowMs > this._now) this._now = nowMs;
    this._sweep();
  }

  /** The source ended: complete everything still open. */
  flush(reason: IncompleteReason = 'source_ended'): void {
    for (const pending of this._upgradesByTid.values()) this._finishUpgradeAlone(pending);
    this._upgradesByTid.clear();
    for (const conn of [...this._conns.values()]) {
      const protocol = conn.record.protocol;
      // HTTP/2 connections have no close event, and closed ones only waited for their last events: both ended
      // normally, not with a loss.
      const normal = protocol === 'http/2' || conn.closedAt !== undefined;
      this._closeConnection(conn, conn.closedAt ?? conn.record.last, normal ? undefined : reason, reason);
    }
  }

  private _event(ev: ProbeEvent): void {
    if (ev.timeMs > this._now) this._now = ev.timeMs;
    if (ev.module === 'h2o') this._h2oEvent(ev);
    else if (ev.module === 'quicly') this._quiclyEvent(ev);
    else if (ev.module === 'picotls') this._picotlsEvent(ev);
    else this._touch(ev);
    if (this._now - this._lastSweep >= SWEEP_INTERVAL_MS) this._sweep();
  }

  private _h2oEvent(ev: ProbeEvent): void {
    const f = ev.fields;
    switch (ev.type) {
      case 'receive_request':
        return this._receiveRequest(ev, numberOf(f.conn_id), numberOf(f.req_id), numberOf(f.http_version));
      case 'receive_request_header':
        return this._header(ev, true);
      case 'send_response':
        return this._sendResponse(ev);
      case 'send_response_header':
        return this._header(ev, false);
      case 'h1_accept':
        return this._h1Accept(ev);
      case 'h1_close':
        return this._h1Close(ev);
      case 'writev':
      case 'write_complete':
        return this._socketWrite(ev);
      case 'h3s_accept':
        return this._h3Accept(ev);
      case 'h3s_stream_stats':
        return this._h3StreamStats(ev);
      case 'h3s_destroy':
        return this._h3Destroy(ev);
      default:
        if (ev.type.startsWith('connect_')) return this._connect(ev);
        return this._touch(ev);
    }
  }

  private _quiclyEvent(ev: ProbeEvent): void {
    // Not even activity: the events of streams without requests are the connection's own plumbing.
    if (STREAM_EVENT_TYPES.has(ev.type) && !isRequestStream(ev.fields.stream_id)) return;
    const connId = numberOf(ev.fields.conn_id);
    if (connId === undefined) return void this.stats.ignoredEvents++;
    if (ev.type === 'accept' || ev.type === 'new_path') {
      const started = this._conn(connId, ev, 'http/3', false);
      const remote = ev.fields.remote;
      if (typeof remote === 'string' && (started.record.remote === undefined || ev.fields.path_index === 0)) {
        started.record.remote = remote;
      }
    }
    const conn = this._conns.get(connId);
    if (conn === undefined) return void this.stats.ignoredEvents++;
    conn.record.last = ev;
    const stream = streamEvent(ev);
    if (stream !== undefined) return this._streamEvent(conn, numberOf(ev.fields.stream_id)!, stream);
    const quic = (conn.record.quic ??= newQuicRecord());
    const e = applyQuicEvent(quic, ev, this._opts.maxSpanEvents);
    if (e !== undefined && (ev.type === 'packet_lost' || ev.type === 'pto')) {
      // Losses and PTOs slow every request in flight on the connection.
      for (const req of conn.requests.values()) {
        if (req.streamDone !== undefined) continue;
        if (ev.type === 'packet_lost') req.packetsLost++;
        else req.ptos++;
        this._addRequestEvent(req, e);
      }
    }
    if (ev.type === 'conn_stats' && conn.closedAt !== undefined && conn.requests.size === 0) {
      this._closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
    }
  }

  /** `stream_on_open` comes before `receive_request`: hold stream events until their request starts. */
  private _streamEvent(conn: ConnState, streamId: number, e: TransportEvent): void {
    const req = conn.requests.get(streamId);
    if (req !== undefined) {
      this._addRequestEvent(req, e);
      if (e.type === 'stream_on_destroy' && req.streamDone !== undefined) {
        this._completeRequest(conn, req, later(req.streamDone, e), undefined);
      }
      return;
    }
    const pending = (conn.pendingStream ??= new Map<number, TransportEvent[]>());
    let list = pending.get(streamId);
    if (list === undefined) {
      if (pending.size >= MAX_PENDING_STREAMS) return;
      list = [];
      pending.set(streamId, list);
    }
    if (list.length < MAX_PENDING_STREAM_EVENTS) list.push(e);
  }

  private _addRequestEvent(req: RequestRecord, e: TransportEvent): void {
    if (req.transportEvents.length < this._opts.maxSpanEvents) req.transportEvents.push(e);
    else req.droppedTransportEvents++;
  }

  /**
   * The first QUIC events of a connection (`picotls:new`, `quicly:accept`) come before `h3s_accept` and already
   * carry its conn id; TCP TLS events carry none. Only start events open a connection: the `free` lines that
   * follow `h3s_destroy` must not revive it.
   */
  private _quicStart(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    if (connId === undefined) return void this.stats.ignoredEvents++;
    this._tlsEvent(this._conn(connId, ev, 'http/3', false), ev);
  }

  /** picotls events of QUIC connections carry the conn id (TCP ones do not). */
  private _tlsEvent(conn: ConnState, ev: ProbeEvent): void {
    conn.record.last = ev;
    applyQuicEvent((conn.record.quic ??= newQuicRecord()), ev, this._opts.maxSpanEvents);
  }

  private _picotlsEvent(ev: ProbeEvent): void {
    if (ev.type === 'new_secret' && !isEarlyDataSecret(ev.fields.label)) return;
    if (ev.fields.conn_id === undefined) return this._tcpTlsEvent(ev);
    if (ev.type === 'new') return this._quicStart(ev);
    const connId = numberOf(ev.fields.conn_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    if (conn === undefined) return void this.stats.ignoredEvents++;
    this._tlsEvent(conn, ev);
  }

  /**
   * TLS over TCP: picotls logs no conn id, only its `ptls_t` pointer. A handshake is tied to the connection that
   * starts on the same worker thread next (`h1_accept`, or the first request of an HTTP/2 connection), and only when
   * exactly one unclaimed handshake is waiting there: ambiguous ones are left out rather than guessed.
   */
  private _tcpTlsEvent(ev: ProbeEvent): void {
    const ptr = ev.fields.tls;
    if (ptr === undefined) return void this.stats.ignoredEvents++;
    let t = this._tcpTls.get(ptr);
    if (ev.type === 'new') {
      if (ev.fields.is_server === false) return; // h2o's own outgoing TLS
      if (this._tcpTls.size >= MAX_TCP_TLS) this._tcpTls.delete(this._tcpTls.keys().next().value!);
      t = { tid: ev.tid, facts: newTlsFacts(), bound: false };
      this._tcpTls.set(ptr, t);
    }
    if (t === undefined) return void this.stats.ignoredEvents++;
    if (ev.type === 'free') {
      this._tcpTls.delete(ptr);
      return;
    }
    applyTlsEvent(t.facts, ev);
  }

  /** The single unclaimed TCP TLS handshake of this worker thread, claimed for `conn`. */
  private _claimTls(conn: ConnState, tid: number, needDone: boolean): void {
    let found: TcpTls | undefined;
    for (const t of this._tcpTls.values()) {
      if (t.bound || t.tid !== tid || (needDone && t.facts.done === undefined)) continue;
      if (found !== undefined) return; // ambiguous
      found = t;
    }
    if (found === undefined) return;
    found.bound = true;
    conn.record.tls = found.facts;
    // The connection began with its TLS handshake, before H2O gave it an id.
    const start = found.facts.start;
    if (start !== undefined && start.timeMs <= conn.record.start.timeMs) conn.record.start = start;
  }

  /** Any other event of a known connection keeps it alive. */
  private _touch(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    if (conn === undefined) {
      this.stats.ignoredEvents++;
      return;
    }
    conn.record.last = ev;
  }

  private _h1Accept(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    if (connId === undefined) return void this.stats.orphanEvents++;
    const conn = this._conn(connId, ev, 'http/1', false);
    const uuid = ev.fields.uuid ?? ev.fields.conn_uuid;
    if (typeof uuid === 'string') conn.record.uuid = uuid;
    const sock = ev.fields.sock;
    if (sock !== undefined) {
      conn.record.sock = sock;
      this._bySock.set(sock, conn);
    }
    this._freshHttp1ByTid.set(ev.tid, conn);
    this._claimTls(conn, ev.tid, false);
  }

  private _h1Close(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    if (conn === undefined) return void this.stats.orphanEvents++;
    const req = conn.current;
    // `h1_close` also fires when the socket is handed to HTTP/2 for an `Upgrade: h2c` request. H2O writes that
    // 101 itself, without `send_response`, so the request has no status yet.
    if (req !== undefined && (req.status === undefined || req.status === 101) && isH2cUpgrade(req)) {
      conn.requests.delete(req.reqId);
      conn.current = undefined;
      const previous = this._upgradesByTid.get(conn.record.tid);
      if (previous !== undefined) this._finishUpgradeAlone(previous);
      this._upgradesByTid.set(conn.record.tid, { conn, req, closedAt: ev.timeMs });
      this._forget(conn);
      conn.record.end = ev;
      conn.record.last = ev;
      return;
    }
    this._closeConnection(conn, ev, undefined, 'connection_closed');
  }

  private _socketWrite(ev: ProbeEvent): void {
    const sock = ev.fields.sock;
    const conn = sock === undefined ? undefined : this._bySock.get(sock);
    if (conn === undefined) return void this.stats.ignoredEvents++;
    conn.lastWrite = ev;
    conn.record.last = ev;
    if (ev.type === 'writev') {
      const ret = numberOf(ev.fields.ret);
      conn.record.writes++;
      if (ret !== undefined && ret > 0) conn.record.bytesWritten += ret;
      else conn.record.writeFailures++;
    } else if (ev.fields.success === false) {
      conn.record.writeFailures++;
    }
    const req = conn.current;
    if (req?.responseStart !== undefined) req.lastWrite = ev;
  }

  private _h3Accept(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    if (connId === undefined) return void this.stats.orphanEvents++;
    const conn = this._conn(connId, ev, 'http/3', false);
    const uuid = ev.fields.conn_uuid;
    if (typeof uuid === 'string') conn.record.uuid = uuid;
  }

  private _h3StreamStats(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const streamId = numberOf(ev.fields.stream_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    const req = streamId === undefined ? undefined : conn?.requests.get(streamId);
    if (conn === undefined || req === undefined) return void this.stats.orphanEvents++;
    conn.record.last = ev;
    req.streamStats = ev.fields;
    const destroyed = req.transportEvents.some((e) => e.type === 'stream_on_destroy');
    const streamEventsSeen = req.transportEvents.some((e) => e.type === 'stream_on_open');
    if (!streamEventsSeen || destroyed) return this._completeRequest(conn, req, ev, undefined);
    // Subscribed to stream events: `stream_on_destroy` follows at once; the sweep ends it if not.
    req.streamDone = ev;
  }

  private _h3Destroy(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    if (conn === undefined) return void this.stats.orphanEvents++;
    conn.record.closeStats = ev.fields;
    if (conn.record.quic !== undefined && conn.record.quic.stats === undefined) {
      // quicly's `free` and `conn_stats` (the connection's statistics) follow `h3s_destroy`.
      conn.closedAt = ev;
      conn.closeAfter = ev.timeMs + QUIC_TAIL_MS;
      for (const req of [...conn.requests.values()]) {
        if (req.streamDone !== undefined) this._completeRequest(conn, req, req.streamDone, undefined);
      }
      return;
    }
    this._closeConnection(conn, ev, undefined, 'connection_closed');
  }

  /** CONNECT tunnel events (USDT): kept on the request, which stays open until `connect_dispose`. */
  private _connect(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const reqId = numberOf(ev.fields.req_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    const req = reqId === undefined ? undefined : conn?.requests.get(reqId);
    if (conn === undefined || req === undefined) return void this.stats.orphanEvents++;
    conn.record.last = ev;
    applyConnectEvent(req, ev);
    if (ev.type !== 'connect_dispose') return;
    this._completeRequest(conn, req, ev, undefined);
    if (conn.closedAt !== undefined)
      this._closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
  }

  private _receiveRequest(
    ev: ProbeEvent,
    connId: number | undefined,
    reqId: number | undefined,
    httpVersion: number | undefined,
  ): void {
    if (connId === undefined || reqId === undefined) return void this.stats.orphanEvents++;
    const protocol = httpVersion === undefined ? undefined : protocolOf(httpVersion);
    const known = this._conns.get(connId);
    const conn = known ?? this._conn(connId, ev, protocol, protocol !== 'http/2');
    if (known === undefined && protocol === 'http/2') {
      this._adoptPriorKnowledge(conn, ev);
      if (conn.record.http1ConnId === undefined) this._claimTls(conn, ev.tid, true);
    }
    if (conn.record.protocol === undefined && protocol !== undefined) conn.record.protocol = protocol;
    if (conn.record.protocol === 'http/1') {
      this._freshHttp1ByTid.delete(conn.record.tid);
      // H2O reads the next HTTP/1 request only after the previous response is done.
      const previous = conn.current;
      if (previous !== undefined) this._completeRequest(conn, previous, endOfHttp1(previous, ev), undefined);
    }
    const existing = conn.requests.get(reqId);
    if (existing !== undefined)
      this._completeRequest(conn, existing, existing.responseStart ?? ev, 'timeout');
    const req = this._newRequest(conn, reqId, ev, undefined);
    req.httpVersion = httpVersion;
  }

  private _header(ev: ProbeEvent, request: boolean): void {
    const f = ev.fields;
    const req = this._requestFor(ev, request);
    if (req === undefined) return;
    const name = f.name;
    const value = f.value;
    if (typeof name !== 'string') {
      req.hiddenHeaders++;
      this.stats.hiddenHeaderEvents++;
      return;
    }
    const list = request ? req.requestHeaders : req.responseHeaders;
    if (list.length >= this._opts.maxHeaders) {
      req.droppedHeaders++;
      return;
    }
    const header: Header = {
      name,
      value: typeof value === 'string' ? value : '',
      truncated: f.value_truncated === true || f.name_truncated === true,
    };
    list.push(header);
  }

  private _sendResponse(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const reqId = numberOf(ev.fields.req_id);
    if (connId === undefined || reqId === undefined) return void this.stats.orphanEvents++;
    let req = this._conns.get(connId)?.requests.get(reqId);
    if (req === undefined) req = this._adoptUpgrade(ev, connId, reqId);
    req ??= this._requestFor(ev, false);
    if (req === undefined) return;
    req.status = numberOf(ev.fields.status);
    req.responseStart = ev;
  }

  /** The request a header or response event belongs to, created (and flagged) when its start was not seen. */
  private _requestFor(ev: ProbeEvent, request: boolean): RequestRecord | undefined {
    const connId = numberOf(ev.fields.conn_id);
    const reqId = numberOf(ev.fields.req_id);
    if (connId === undefined || reqId === undefined) {
      this.stats.orphanEvents++;
      return undefined;
    }
    const conn = this._conns.get(connId) ?? this._conn(connId, ev, undefined, true);
    conn.record.last = ev;
    const req = conn.requests.get(reqId);
    if (req !== undefined) return req;
    // Response headers arriving after the request was completed (e.g. the HTTP/2 grace ran out) are late, not new.
    if (!request && ev.type === 'send_response_header') {
      this.stats.orphanEvents++;
      return undefined;
    }
    const reason: IncompleteReason =
      ev.type === 'send_response' && conn.record.incomplete === undefined
        ? 'no_request_event'
        : 'attached_mid_flight';
    if (reason === 'attached_mid_flight') this.stats.midFlightRequests++;
    return this._newRequest(conn, reqId, ev, reason);
  }

  private _newRequest(
    conn: ConnState,
    reqId: number,
    start: ProbeEvent,
    incomplete: IncompleteReason | undefined,
  ): RequestRecord {
    if (conn.requests.size >= this._opts.maxRequestsPerConnection) {
      const oldest = conn.requests.values().next().value!;
      this.stats.evictedRequests++;
      this._completeRequest(conn, oldest, oldest.responseStart ?? start, 'evicted');
    }
    const req: RequestRecord = {
      conn: conn.record,
      reqId,
      httpVersion: undefined,
      start,
      requestHeaders: [],
      hiddenHeaders: 0,
      droppedHeaders: 0,
      status: undefined,
      responseStart: undefined,
      responseHeaders: [],
      lastWrite: undefined,
      end: undefined,
      streamStats: undefined,
      transportEvents: conn.pendingStream?.get(reqId) ?? [],
      droppedTransportEvents: 0,
      packetsLost: 0,
      ptos: 0,
      streamDone: undefined,
      tunnel: undefined,
      upgradedToHttp2: false,
      incomplete,
    };
    conn.pendingStream?.delete(reqId);
    conn.requests.set(reqId, req);
    conn.record.requestCount++;
    conn.record.last = start;
    if (conn.record.protocol === 'http/1' || conn.record.protocol === undefined) conn.current = req;
    this.stats.requests++;
    return req;
  }

  private _conn(
    connId: number,
    ev: ProbeEvent,
    protocol: Protocol | undefined,
    midFlight: boolean,
  ): ConnState {
    const known = this._conns.get(connId);
    if (known !== undefined) {
      known.record.last = ev;
      if (known.record.protocol === undefined) known.record.protocol = protocol;
      return known;
    }
    if (this._conns.size >= this._opts.maxConnections) {
      const oldest = this._conns.values().next().value!;
      this.stats.evictedConnections++;
      this._closeConnection(oldest, oldest.record.last, 'evicted', 'evicted');
    }
    const record: ConnectionRecord = {
      connId,
      protocol,
      tid: ev.tid,
      start: ev,
      last: ev,
      end: undefined,
      uuid: undefined,
      sock: undefined,
      remote: undefined,
      http1ConnId: undefined,
      requestCount: 0,
      closeStats: undefined,
      quic: undefined,
      tls: undefined,
      bytesWritten: 0,
      writes: 0,
      writeFailures: 0,
      incomplete: midFlight ? 'attached_mid_flight' : undefined,
    };
    const conn: ConnState = {
      record,
      requests: new Map(),
      current: undefined,
      lastWrite: undefined,
      closedAt: undefined,
      closeAfter: undefined,
      pendingStream: undefined,
    };
    this._conns.set(connId, conn);
    this.stats.connections++;
    return conn;
  }

  /**
   * Cleartext HTTP/2 by prior knowledge: H2O logs `h1_accept` for the TCP connection, then serves HTTP/2 under a
   * new conn id and never closes the first. The newest request-less HTTP/1 connection of the same worker thread,
   * accepted just before, is that same TCP connection: fold it into the HTTP/2 one.
   */
  private _adoptPriorKnowledge(conn: ConnState, ev: ProbeEvent): void {
    const fresh = this._freshHttp1ByTid.get(ev.tid);
    if (fresh === undefined) return;
    this._freshHttp1ByTid.delete(ev.tid);
    const r = fresh.record;
    if (
      r.requestCount !== 0 ||
      r.connId >= conn.record.connId ||
      ev.timeMs - r.start.timeMs > PRIOR_KNOWLEDGE_WINDOW_MS ||
      this._conns.get(r.connId) !== fresh
    ) {
      return;
    }
    this._forget(fresh);
    conn.record.start = r.start;
    conn.record.uuid = r.uuid;
    conn.record.http1ConnId = r.connId;
    conn.record.incomplete = undefined;
    // The same TCP socket carries the HTTP/2 connection: its writes are this connection's now.
    if (r.sock !== undefined) {
      conn.record.sock = r.sock;
      this._bySock.set(r.sock, conn);
    }
  }

  /**
   * `Upgrade: h2c`: H2O answers `101` on the HTTP/1 connection, closes it, and sends the real response as stream 1
   * of a new HTTP/2 connection without a `receive_request`. Join the two halves into one request.
   */
  private _adoptUpgrade(ev: ProbeEvent, connId: number, reqId: number): RequestRecord | undefined {
    if (reqId !== 1) return undefined;
    const pending = this._upgradesByTid.get(ev.tid);
    if (pending === undefined || this._conns.has(connId)) return undefined;
    this._upgradesByTid.delete(ev.tid);
    const conn = this._conn(connId, ev, 'http/2', false);
    const http1 = pending.conn.record;
    conn.record.start = http1.start;
    conn.record.uuid = http1.uuid;
    conn.record.http1ConnId = http1.connId;
    const req = pending.req;
    req.conn = conn.record;
    req.upgradedToHttp2 = true;
    conn.requests.set(reqId, req);
    conn.record.requestCount++;
    return req;
  }

  /** No HTTP/2 connection took the upgraded request: it ends as the `101` it was. */
  private _finishUpgradeAlone(pending: PendingUpgrade): void {
    const { conn, req } = pending;
    req.end = endOfHttp1(req, conn.record.end ?? req.start);
    this._sink.requestCompleted(req);
    this._sink.connectionClosed(conn.record);
  }

  private _completeRequest(
    conn: ConnState,
    req: RequestRecord,
    end: Stamp,
    incomplete: IncompleteReason | undefined,
  ): void {
    conn.requests.delete(req.reqId);
    if (conn.current === req) conn.current = undefined;
    req.end = end;
    if (incomplete !== undefined && req.incomplete === undefined) req.incomplete = incomplete;
    if (incomplete === 'timeout') this.stats.timedOutRequests++;
    this._sink.requestCompleted(req);
  }

  private _closeConnection(
    conn: ConnState,
    end: Stamp,
    incomplete: IncompleteReason | undefined,
    requestReason: IncompleteReason,
  ): void {
    // A normal close while a tunnel is up (HTTP/1 hands the socket to the tunnel): wait for its dispose.
    const normal = incomplete === undefined && requestReason === 'connection_closed';
    let waiting = false;
    for (const req of [...conn.requests.values()]) {
      if (normal && tunnelOpen(req)) {
        waiting = true;
        continue;
      }
      if (req.tunnel !== undefined && req.tunnel.disposed === undefined)
        closeAttempts(req.tunnel, end, req.status);
      if (req.streamDone !== undefined) {
        this._completeRequest(conn, req, req.streamDone, undefined);
      } else if (conn.record.protocol === 'http/1' && req.responseStart !== undefined) {
        this._completeRequest(conn, req, endOfHttp1(req, end), undefined);
      } else if (conn.record.protocol === 'http/2' && req.responseStart !== undefined) {
        this._completeRequest(conn, req, req.responseStart, undefined);
      } else {
        this._completeRequest(conn, req, end, requestReason);
      }
    }
    if (waiting) {
      conn.closedAt = end;
      return;
    }
    this._forget(conn);
    const r = conn.record;
    r.end = end;
    if (incomplete !== undefined && r.incomplete === undefined) r.incomplete = incomplete;
    this._sink.connectionClosed(r);
  }

  private _forget(conn: ConnState): void {
    const r = conn.record;
    this._conns.delete(r.connId);
    if (r.sock !== undefined && this._bySock.get(r.sock) === conn) this._bySock.delete(r.sock);
    if (this._freshHttp1ByTid.get(r.tid) === conn) this._freshHttp1ByTid.delete(r.tid);
  }

  private _sweep(): void {
    this._lastSweep = this._now;
    const now = this._now;
    const o = this._opts;
    for (const [tid, pending] of this._upgradesByTid) {
      if (now - pending.closedAt > UPGRADE_WINDOW_MS) {
        this._upgradesByTid.delete(tid);
        this._finishUpgradeAlone(pending);
      }
    }
    for (const conn of [...this._conns.values()]) {
      const protocol = conn.record.protocol;
      for (const req of [...conn.requests.values()]) {
        const resp = req.responseStart;
        if (req.tunnel !== undefined && tunnelOpen(req)) {
          // Tunnels live as long as they carry data; one silent for the request timeout has ended unseen.
          if (now - req.tunnel.last.timeMs >= o.requestTimeoutMs) {
            closeAttempts(req.tunnel, req.tunnel.last, req.status);
            this._completeRequest(conn, req, req.tunnel.last, 'timeout');
          }
          continue;
        }
        if (req.streamDone !== undefined) {
          if (now - req.streamDone.timeMs >= QUIC_TAIL_MS)
            this._completeRequest(conn, req, req.streamDone, undefined);
          continue;
        }
        if (protocol === 'http/2' && resp !== undefined) {
          if (now - resp.timeMs >= o.http2GraceMs) this._completeRequest(conn, req, resp, undefined);
        } else if (protocol === 'http/1' && resp !== undefined) {
          const lastOut = req.lastWrite ?? resp;
          if (now - lastOut.timeMs >= o.http1QuietMs) this._completeRequest(conn, req, lastOut, undefined);
        } else if (now - req.start.timeMs >= o.requestTimeoutMs) {
          this._completeRequest(conn, req, resp ?? req.start, 'timeout');
        }
      }
      if (
        conn.closedAt !== undefined &&
        conn.requests.size === 0 &&
        (conn.closeAfter === undefined || now >= conn.closeAfter)
      ) {
        this._closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
        continue;
      }
      const idle = now - conn.record.last.timeMs;
      if (protocol === 'http/2' && conn.requests.size === 0 && idle >= o.http2IdleMs) {
        this._closeConnection(conn, conn.record.last, undefined, 'timeout');
      } else if (idle >= o.connectionIdleMs) {
        this._closeConnection(conn, conn.record.last, 'timeout', 'timeout');
      }
    }
  }
}

/** An HTTP/1 request's end: its last response write, else its response start, else `fallback`. */
function endOfHttp1(req: RequestRecord, fallback: Stamp): Stamp {
  return req.lastWrite ?? req.responseStart ?? fallback;
}

/**
 * The points of which the correlator reads only some events, told apart by one field (see `isRequestStream`,
 * `isEarlyDataSecret`): a decoder may leave the others undecoded.
 */
export const CORRELATOR_FIELD_USES: readonly FieldUse[] = [
  ...[...STREAM_EVENT_TYPES].map((type) => ({
    module: 'quicly',
    type,
    field: 'stream_id',
    used: isRequestStream,
  })),
  { module: 'picotls', type: 'new_secret', field: 'label', used: isEarlyDataSecret },
];

/** The request headers the correlator reads (to recognise an h2c upgrade). */
export const CORRELATOR_REQUEST_HEADERS: ReadonlySet<string> = new Set(['upgrade', 'http2-settings']);

/** H2O moves `Upgrade` out of the header list; `HTTP2-Settings` is mandatory for h2c (RFC 7540 §3.2) and stays. */
function isH2cUpgrade(req: RequestRecord): boolean {
  for (const h of req.requestHeaders) {
    if (h.name === 'http2-settings' || (h.name === 'upgrade' && /\bh2c\b/i.test(h.value))) return true;
  }
  return false;
}
