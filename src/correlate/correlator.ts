/**
 * Per-connection and per-request state machines over one source session (one h2olog socket connection, one
 * replay). H2O's conn ids restart with the server, so a new session needs a new Correlator.
 *
 * Time is the events' own clock (the newest event time seen), advanced by `tick()` while the source is idle, so
 * a replay gives the same records as the live stream it was recorded from.
 *
 * This module only dispatches each event to the job that handles it: the connection table (connections.ts),
 * HTTP/1 and its h2c continuations (http1.ts), the request events of every protocol (requests.ts), HTTP/3
 * (http3.ts), TLS over TCP (tcp-tls.ts), and the deadlines (deadlines.ts).
 */
import type { FieldUse, ProbeEvent } from '../events/types.js';
import { ConnectionTable } from './connections.js';
import { Deadlines } from './deadlines.js';
import { Http1 } from './http1.js';
import { Http3 } from './http3.js';
import { newCorrelatorStats } from './options.js';
import type { CorrelatorOptions, CorrelatorStats } from './options.js';
import { isEarlyDataSecret, isRequestStream, STREAM_EVENT_TYPES } from './quic.js';
import type { ConnectionRecord, IncompleteReason, RecordSink, TransportEvent } from './records.js';
import { Requests } from './requests.js';
import { TcpTlsBinder } from './tcp-tls.js';

export { DEFAULT_CORRELATOR_OPTIONS, newCorrelatorStats } from './options.js';
export type { CorrelatorOptions, CorrelatorStats } from './options.js';
export { CORRELATOR_REQUEST_HEADERS } from './http1.js';

/** Deadlines are checked when the clock has moved this far, not on every event. */
const SWEEP_INTERVAL_MS = 100;

export class Correlator {
  private readonly _deadlines: Deadlines;
  private readonly _table: ConnectionTable;
  private readonly _tls: TcpTlsBinder;
  private readonly _http1: Http1;
  private readonly _http3: Http3;
  private readonly _requests: Requests;
  private _now = 0;
  private _lastSweep = 0;

  /** `stats` may be shared by the correlators of successive sessions, to count across them. */
  constructor(
    readonly opts: CorrelatorOptions,
    sink: RecordSink,
    readonly stats: CorrelatorStats = newCorrelatorStats(),
  ) {
    this._deadlines = new Deadlines(opts);
    this._table = new ConnectionTable(opts, sink, stats, this._deadlines);
    this._tls = new TcpTlsBinder(stats);
    this._http1 = new Http1(this._table, this._tls, sink, stats);
    this._http3 = new Http3(opts, this._table);
    this._requests = new Requests(opts, stats, this._table, this._http1, this._tls);
  }

  get openConnections(): number {
    return this._table.size;
  }

  get openRequests(): number {
    return this._table.openRequests;
  }

  /** The record of an open connection, as events made it (for records another source pushes: quic-join.ts). */
  connectionRecord(connId: number): ConnectionRecord | undefined {
    return this._table.get(connId)?.record;
  }

  /**
   * The events of a QUIC stream held for a request that never started here (its record came from another source),
   * handed over and forgotten.
   */
  takeStreamEvents(connId: number, streamId: number): TransportEvent[] | undefined {
    const pending = this._table.get(connId)?.pendingStream;
    const events = pending?.get(streamId);
    pending?.delete(streamId);
    return events;
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
    this._http1.flushUpgrades();
    this._table.closeAll(reason);
  }

  private _event(ev: ProbeEvent): void {
    if (ev.timeMs > this._now) this._now = ev.timeMs;
    if (ev.module === 'h2o') this._h2oEvent(ev);
    else if (ev.module === 'quicly') this._http3.quiclyEvent(ev);
    else if (ev.module === 'picotls') this._picotlsEvent(ev);
    else this._touch(ev);
    if (this._now - this._lastSweep >= SWEEP_INTERVAL_MS) this._sweep();
  }

  private _h2oEvent(ev: ProbeEvent): void {
    switch (ev.type) {
      case 'receive_request':
        return this._requests.receiveRequest(ev);
      case 'receive_request_header':
        return this._requests.header(ev, true);
      case 'send_response':
        return this._requests.sendResponse(ev);
      case 'send_response_header':
        return this._requests.header(ev, false);
      case 'h1_accept':
        return this._http1.accept(ev);
      case 'h1_close':
        return this._http1.close(ev);
      case 'writev':
      case 'write_complete':
        return this._http1.socketWrite(ev);
      case 'h3s_accept':
        return this._http3.accept(ev);
      case 'h3s_stream_stats':
        return this._http3.streamStats(ev);
      case 'h3s_destroy':
        return this._http3.destroy(ev);
      default:
        if (ev.type.startsWith('connect_')) return this._requests.connect(ev);
        return this._touch(ev);
    }
  }

  /** picotls events of QUIC connections carry the conn id, TCP ones do not. */
  private _picotlsEvent(ev: ProbeEvent): void {
    if (ev.type === 'new_secret' && !isEarlyDataSecret(ev.fields.label)) return;
    if (ev.fields.conn_id === undefined) return this._tls.event(ev);
    this._http3.tlsEvent(ev);
  }

  /** Any other event of a known connection keeps it alive. */
  private _touch(ev: ProbeEvent): void {
    const conn = this._table.find(ev, 'ignoredEvents');
    if (conn !== undefined) this._table.touch(conn, ev);
  }

  private _sweep(): void {
    this._lastSweep = this._now;
    this._http1.expireUpgrades(this._now);
    this._deadlines.sweep(this._table, this._now);
  }
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
