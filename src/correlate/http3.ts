/**
 * HTTP/3: quicly's events and the picotls events of QUIC connections (both carry the conn id) onto the connection
 * and its requests, and H2O's `h3s_*` points. A request is its QUIC stream: it ends when the stream is destroyed
 * after `h3s_stream_stats`, or shortly after.
 */
import { numberOf } from '../events/types.js';
import type { ProbeEvent } from '../events/types.js';
import { QUIC_TAIL_MS } from './conn-state.js';
import type { ConnState } from './conn-state.js';
import type { ConnectionTable } from './connections.js';
import type { CorrelatorOptions } from './options.js';
import { applyQuicEvent, isRequestStream, newQuicRecord, STREAM_EVENT_TYPES, streamEvent } from './quic.js';
import type { TransportEvent } from './records.js';
import { later } from './records.js';
import type { RequestRecord } from './records.js';

/** Stream events held for a request that has not started yet (`stream_on_open` precedes `receive_request`). */
const MAX_PENDING_STREAM_EVENTS = 8;
const MAX_PENDING_STREAMS = 64;

export class Http3 {
  constructor(
    private readonly _opts: CorrelatorOptions,
    private readonly _table: ConnectionTable,
  ) {}

  quiclyEvent(ev: ProbeEvent): void {
    // Not even activity: the events of streams without requests are the connection's own plumbing.
    if (STREAM_EVENT_TYPES.has(ev.type) && !isRequestStream(ev.fields.stream_id)) return;
    if (ev.type === 'accept' || ev.type === 'new_path') {
      const connId = this._table.connIdOf(ev, 'ignoredEvents');
      if (connId === undefined) return;
      const started = this._table.open(connId, ev, 'http/3', false);
      const remote = ev.fields.remote;
      if (typeof remote === 'string' && (started.record.remote === undefined || ev.fields.path_index === 0)) {
        started.record.remote = remote;
      }
    }
    const conn = this._table.find(ev, 'ignoredEvents');
    if (conn === undefined) return;
    this._table.touch(conn, ev);
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
      this._table.closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
    }
  }

  /**
   * A picotls event with a conn id. The first QUIC events of a connection (`picotls:new`, `quicly:accept`) come
   * before `h3s_accept` and already carry its conn id. Only start events open a connection: the `free` lines that
   * follow `h3s_destroy` must not revive it.
   */
  tlsEvent(ev: ProbeEvent): void {
    let conn: ConnState | undefined;
    if (ev.type === 'new') {
      const connId = this._table.connIdOf(ev, 'ignoredEvents');
      if (connId !== undefined) conn = this._table.open(connId, ev, 'http/3', false);
    } else {
      conn = this._table.find(ev, 'ignoredEvents');
    }
    if (conn === undefined) return;
    this._table.touch(conn, ev);
    applyQuicEvent((conn.record.quic ??= newQuicRecord()), ev, this._opts.maxSpanEvents);
  }

  accept(ev: ProbeEvent): void {
    const connId = this._table.connIdOf(ev, 'orphanEvents');
    if (connId === undefined) return;
    const conn = this._table.open(connId, ev, 'http/3', false);
    const uuid = ev.fields.conn_uuid;
    if (typeof uuid === 'string') conn.record.uuid = uuid;
  }

  streamStats(ev: ProbeEvent): void {
    const conn = this._table.find(ev, 'orphanEvents');
    const req = conn === undefined ? undefined : this._table.request(conn, ev.fields.stream_id);
    if (conn === undefined || req === undefined) return;
    this._table.touch(conn, ev);
    req.streamStats = ev.fields;
    const streamEventsSeen = hasEvent(req, 'stream_on_open');
    if (!streamEventsSeen || hasEvent(req, 'stream_on_destroy'))
      return this._table.completeRequest(conn, req, ev, undefined);
    // Subscribed to stream events: `stream_on_destroy` follows at once; the deadline ends it if not.
    req.streamDone = ev;
    this._table.requestChanged(conn, req);
  }

  destroy(ev: ProbeEvent): void {
    const conn = this._table.find(ev, 'orphanEvents');
    if (conn === undefined) return;
    conn.record.closeStats = ev.fields;
    if (conn.record.quic !== undefined && conn.record.quic.stats === undefined) {
      // quicly's `free` and `conn_stats` (the connection's statistics) follow `h3s_destroy`.
      conn.closeAfter = ev.timeMs + QUIC_TAIL_MS;
      this._table.closeWhenDone(conn, ev);
      for (const req of [...conn.requests.values()]) {
        if (req.streamDone !== undefined) this._table.completeRequest(conn, req, req.streamDone, undefined);
      }
      return;
    }
    this._table.closeConnection(conn, ev, undefined, 'connection_closed');
  }

  /** `stream_on_open` comes before `receive_request`: hold stream events until their request starts. */
  private _streamEvent(conn: ConnState, streamId: number, e: TransportEvent): void {
    const req = conn.requests.get(streamId);
    if (req !== undefined) {
      this._addRequestEvent(req, e);
      if (e.type === 'stream_on_destroy' && req.streamDone !== undefined) {
        this._table.completeRequest(conn, req, later(req.streamDone, e), undefined);
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
}

function hasEvent(req: RequestRecord, type: string): boolean {
  for (const e of req.transportEvents) if (e.type === type) return true;
  return false;
}
