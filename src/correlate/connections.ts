/**
 * The open connections of one source session and their requests: opening (evicting the oldest beyond the bound),
 * lookups by conn id and socket, request creation and completion, closing. Every change that can bring a
 * deadline closer is told to the deadline watch.
 */
import { numberOf } from '../events/types.js';
import type { FieldValue, ProbeEvent } from '../events/types.js';
import { endOfHttp1 } from './conn-state.js';
import type { ConnState, DeadlineWatch } from './conn-state.js';
import type { CorrelatorOptions, CorrelatorStats } from './options.js';
import type { IncompleteReason, Protocol, RecordSink, RequestRecord, Stamp } from './records.js';
import { newConnectionRecord, newRequestRecord } from './records.js';
import { closeAttempts, tunnelOpen } from './tunnel.js';

/** The counter an event is counted under when the connection or request it names is not open. */
export type Miss = 'orphanEvents' | 'ignoredEvents';

export class ConnectionTable {
  private readonly _conns = new Map<number, ConnState>();
  /** `h1_accept.sock` → connection, for the socket-level write events. */
  private readonly _bySock = new Map<FieldValue, ConnState>();
  private _opened = 0;

  constructor(
    private readonly _opts: CorrelatorOptions,
    private readonly _sink: RecordSink,
    private readonly _stats: CorrelatorStats,
    private readonly _deadlines: DeadlineWatch,
  ) {}

  get size(): number {
    return this._conns.size;
  }

  get openRequests(): number {
    let n = 0;
    for (const c of this._conns.values()) n += c.requests.size;
    return n;
  }

  get(connId: number): ConnState | undefined {
    return this._conns.get(connId);
  }

  /** The event's `conn_id`; an event without one is counted under `miss`. */
  connIdOf(ev: ProbeEvent, miss: Miss): number | undefined {
    const connId = numberOf(ev.fields.conn_id);
    if (connId === undefined) this._stats[miss]++;
    return connId;
  }

  /** The open connection the event's `conn_id` names; a miss is counted under `miss`. */
  find(ev: ProbeEvent, miss: Miss): ConnState | undefined {
    const connId = numberOf(ev.fields.conn_id);
    const conn = connId === undefined ? undefined : this._conns.get(connId);
    if (conn === undefined) this._stats[miss]++;
    return conn;
  }

  /** The open request `id` (a `req_id` or `stream_id` field) of `conn`; a miss is an orphan event. */
  request(conn: ConnState, id: FieldValue | undefined): RequestRecord | undefined {
    const reqId = numberOf(id);
    const req = reqId === undefined ? undefined : conn.requests.get(reqId);
    if (req === undefined) this._stats.orphanEvents++;
    return req;
  }

  bySock(sock: FieldValue | undefined): ConnState | undefined {
    return sock === undefined ? undefined : this._bySock.get(sock);
  }

  /** Socket writes on `sock` belong to `conn` from now on. */
  bindSock(conn: ConnState, sock: FieldValue | undefined): void {
    if (sock === undefined) return;
    conn.record.sock = sock;
    this._bySock.set(sock, conn);
  }

  /** The connection `connId`, opened (and counted) at `ev` when it is not open yet. */
  open(connId: number, ev: ProbeEvent, protocol: Protocol | undefined, midFlight: boolean): ConnState {
    const known = this._conns.get(connId);
    if (known !== undefined) {
      this.touch(known, ev);
      this.learnProtocol(known, protocol);
      return known;
    }
    if (this._conns.size >= this._opts.maxConnections) {
      const oldest = this._conns.values().next().value!;
      this._stats.evictedConnections++;
      this.closeConnection(oldest, oldest.record.last, 'evicted', 'evicted');
    }
    const record = newConnectionRecord(
      connId,
      protocol,
      ev.tid,
      ev,
      midFlight ? 'attached_mid_flight' : undefined,
    );
    const conn: ConnState = {
      record,
      requests: new Map(),
      current: undefined,
      closedAt: undefined,
      closeAfter: undefined,
      pendingStream: undefined,
      open: true,
      seq: this._opened++,
      dueAt: Infinity,
      heapIndex: -1,
    };
    this._conns.set(connId, conn);
    this._stats.connections++;
    this._deadlines.connectionChanged(conn);
    return conn;
  }

  /** Set the connection's protocol if it is not known yet. */
  learnProtocol(conn: ConnState, protocol: Protocol | undefined): void {
    if (conn.record.protocol !== undefined || protocol === undefined) return;
    conn.record.protocol = protocol;
    this._deadlines.protocolChanged(conn);
  }

  /** An event of the connection: it is alive. */
  touch(conn: ConnState, ev: Stamp): void {
    const before = conn.record.last.timeMs;
    conn.record.last = ev;
    // A later last event only moves the idle deadline away; threads' clocks may still step back a little.
    if (ev.timeMs < before) this._deadlines.connectionChanged(conn);
  }

  /** A field a deadline of `req` depends on changed. */
  requestChanged(conn: ConnState, req: RequestRecord): void {
    this._deadlines.requestChanged(conn, req);
  }

  newRequest(
    conn: ConnState,
    reqId: number,
    start: ProbeEvent,
    incomplete: IncompleteReason | undefined,
  ): RequestRecord {
    if (conn.requests.size >= this._opts.maxRequestsPerConnection) {
      const oldest = conn.requests.values().next().value!;
      this._stats.evictedRequests++;
      this.completeRequest(conn, oldest, oldest.responseStart ?? start, 'evicted');
    }
    const req = newRequestRecord(conn.record, reqId, start, incomplete, conn.pendingStream?.get(reqId));
    conn.pendingStream?.delete(reqId);
    conn.requests.set(reqId, req);
    conn.record.requestCount++;
    this.touch(conn, start);
    if (conn.record.protocol === 'http/1' || conn.record.protocol === undefined) conn.current = req;
    this._stats.requests++;
    this._deadlines.requestChanged(conn, req);
    return req;
  }

  /** A request started on another connection continues on `conn` as `reqId` (counted there, not as new). */
  adoptRequest(conn: ConnState, reqId: number, req: RequestRecord): void {
    req.conn = conn.record;
    conn.requests.set(reqId, req);
    conn.record.requestCount++;
    this._deadlines.requestChanged(conn, req);
  }

  completeRequest(
    conn: ConnState,
    req: RequestRecord,
    end: Stamp,
    incomplete: IncompleteReason | undefined,
  ): void {
    forgetRequest(conn, req);
    if (conn.current === req) conn.current = undefined;
    req.end = end;
    if (incomplete !== undefined && req.incomplete === undefined) req.incomplete = incomplete;
    if (incomplete === 'timeout') this._stats.timedOutRequests++;
    this._sink.requestCompleted(req);
    if (conn.requests.size === 0) this._deadlines.connectionChanged(conn);
  }

  /** H2O closed the connection at `at`, but events of it are still to come: close it once they are in. */
  closeWhenDone(conn: ConnState, at: Stamp): void {
    conn.closedAt = at;
    this._deadlines.connectionChanged(conn);
  }

  closeConnection(
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
        this.completeRequest(conn, req, req.streamDone, undefined);
      } else if (conn.record.protocol === 'http/1' && req.responseStart !== undefined) {
        this.completeRequest(conn, req, endOfHttp1(req, end), undefined);
      } else if (conn.record.protocol === 'http/2' && req.responseStart !== undefined) {
        this.completeRequest(conn, req, req.responseStart, undefined);
      } else {
        this.completeRequest(conn, req, end, requestReason);
      }
    }
    if (waiting) return this.closeWhenDone(conn, end);
    this.forget(conn);
    const r = conn.record;
    r.end = end;
    if (incomplete !== undefined && r.incomplete === undefined) r.incomplete = incomplete;
    this._sink.connectionClosed(r);
  }

  /** The source ended: close every open connection. */
  closeAll(reason: IncompleteReason): void {
    for (const conn of [...this._conns.values()]) {
      // HTTP/2 connections have no close event, and closed ones only waited for their last events: both ended
      // normally, not with a loss.
      const normal = conn.record.protocol === 'http/2' || conn.closedAt !== undefined;
      this.closeConnection(conn, conn.closedAt ?? conn.record.last, normal ? undefined : reason, reason);
    }
  }

  /** Drop the connection from the table without a record (it lives on in another one, or was closed). */
  forget(conn: ConnState): void {
    const r = conn.record;
    conn.open = false;
    this._conns.delete(r.connId);
    if (r.sock !== undefined && this._bySock.get(r.sock) === conn) this._bySock.delete(r.sock);
    this._deadlines.forgotten(conn);
  }
}

/**
 * Take `req` out of the connection's table. It is keyed by its id, except a request adopted under another (an h2c
 * upgrade goes on as HTTP/2 stream 1 whatever its HTTP/1 id): deleting by its own id there would leave it behind
 * (a second span at the next sweep) and take out the stream that has that id.
 */
function forgetRequest(conn: ConnState, req: RequestRecord): void {
  if (conn.requests.get(req.reqId) === req) {
    conn.requests.delete(req.reqId);
    return;
  }
  for (const [id, r] of conn.requests) {
    if (r === req) {
      conn.requests.delete(id);
      return;
    }
  }
}
