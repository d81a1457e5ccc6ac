/**
 * HTTP/1 connections: `h1_accept`, `h1_close`, the socket writes that mark a response's end (HTTP/1 has no
 * request-end event), and the two ways H2O carries on a TCP connection as HTTP/2 under a new conn id (an
 * `Upgrade: h2c` request, prior knowledge), joined back into one connection.
 */
import { numberOf } from '../events/types.js';
import type { ProbeEvent } from '../events/types.js';
import { endOfHttp1 } from './conn-state.js';
import type { ConnState } from './conn-state.js';
import type { ConnectionTable } from './connections.js';
import type { CorrelatorStats } from './options.js';
import type { RecordSink, RequestRecord } from './records.js';
import type { TcpTlsBinder } from './tcp-tls.js';

/** How long after an HTTP/1 close the 101 of an `Upgrade: h2c` request waits for its HTTP/2 continuation. */
const UPGRADE_WINDOW_MS = 1000;
/** A prior-knowledge HTTP/2 connection starts this soon after the `h1_accept` of the same TCP connection. */
const PRIOR_KNOWLEDGE_WINDOW_MS = 1000;

/** The request headers the correlator reads (to recognise an h2c upgrade). */
export const CORRELATOR_REQUEST_HEADERS: ReadonlySet<string> = new Set(['upgrade', 'http2-settings']);

interface PendingUpgrade {
  readonly conn: ConnState;
  readonly req: RequestRecord;
  readonly closedAt: number;
}

export class Http1 {
  /**
   * Per worker thread, the newest HTTP/1 connection that has not sent a request yet (h2c prior knowledge). It may
   * have closed since: checked where read.
   */
  private readonly _freshByTid = new Map<number, ConnState>();
  /** Per worker thread, the request whose `101 Switching Protocols` to h2c awaits its HTTP/2 response. */
  private readonly _upgradesByTid = new Map<number, PendingUpgrade>();

  constructor(
    private readonly _table: ConnectionTable,
    private readonly _tls: TcpTlsBinder,
    private readonly _sink: RecordSink,
    private readonly _stats: CorrelatorStats,
  ) {}

  accept(ev: ProbeEvent): void {
    const connId = this._table.connIdOf(ev, 'orphanEvents');
    if (connId === undefined) return;
    const conn = this._table.open(connId, ev, 'http/1', false);
    const uuid = ev.fields.uuid ?? ev.fields.conn_uuid;
    if (typeof uuid === 'string') conn.record.uuid = uuid;
    this._table.bindSock(conn, ev.fields.sock);
    this._freshByTid.set(ev.tid, conn);
    this._tls.claim(conn, ev.tid, false);
  }

  close(ev: ProbeEvent): void {
    const conn = this._table.find(ev, 'orphanEvents');
    if (conn === undefined) return;
    const req = conn.current;
    // `h1_close` also fires when the socket is handed to HTTP/2 for an `Upgrade: h2c` request. H2O writes that
    // 101 itself, without `send_response`, so the request has no status yet.
    if (req !== undefined && (req.status === undefined || req.status === 101) && isH2cUpgrade(req)) {
      conn.requests.delete(req.reqId);
      conn.current = undefined;
      const previous = this._upgradesByTid.get(conn.record.tid);
      if (previous !== undefined) this._finishUpgradeAlone(previous);
      this._upgradesByTid.set(conn.record.tid, { conn, req, closedAt: ev.timeMs });
      this._table.forget(conn);
      conn.record.end = ev;
      conn.record.last = ev;
      return;
    }
    this._table.closeConnection(conn, ev, undefined, 'connection_closed');
  }

  /** `writev` or `write_complete` on a socket. */
  socketWrite(ev: ProbeEvent): void {
    const conn = this._table.bySock(ev.fields.sock);
    if (conn === undefined) return void this._stats.ignoredEvents++;
    this._table.touch(conn, ev);
    if (ev.type === 'writev') {
      const ret = numberOf(ev.fields.ret);
      conn.record.writes++;
      if (ret !== undefined && ret > 0) conn.record.bytesWritten += ret;
      else conn.record.writeFailures++;
    } else if (ev.fields.success === false) {
      conn.record.writeFailures++;
    }
    const req = conn.current;
    if (req?.responseStart !== undefined) {
      req.lastWrite = ev;
      this._table.requestChanged(conn, req);
    }
  }

  /** A request starts on HTTP/1 connection `conn`. H2O reads it only after the previous response is done. */
  requestStarted(conn: ConnState, ev: ProbeEvent): void {
    this._freshByTid.delete(conn.record.tid);
    const previous = conn.current;
    if (previous !== undefined)
      this._table.completeRequest(conn, previous, endOfHttp1(previous, ev), undefined);
  }

  /**
   * Cleartext HTTP/2 by prior knowledge: H2O logs `h1_accept` for the TCP connection, then serves HTTP/2 under a
   * new conn id and never closes the first. The newest request-less HTTP/1 connection of the same worker thread,
   * accepted just before, is that same TCP connection: fold it into the HTTP/2 one.
   */
  adoptPriorKnowledge(conn: ConnState, ev: ProbeEvent): void {
    const fresh = this._freshByTid.get(ev.tid);
    if (fresh === undefined) return;
    this._freshByTid.delete(ev.tid);
    const r = fresh.record;
    if (
      r.requestCount !== 0 ||
      r.connId >= conn.record.connId ||
      ev.timeMs - r.start.timeMs > PRIOR_KNOWLEDGE_WINDOW_MS ||
      !fresh.open
    ) {
      return;
    }
    this._table.forget(fresh);
    conn.record.start = r.start;
    conn.record.uuid = r.uuid;
    conn.record.http1ConnId = r.connId;
    conn.record.incomplete = undefined;
    // The same TCP socket carries the HTTP/2 connection: its writes are this connection's now.
    this._table.bindSock(conn, r.sock);
  }

  /**
   * `Upgrade: h2c`: H2O answers `101` on the HTTP/1 connection, closes it, and sends the real response as stream 1
   * of a new HTTP/2 connection without a `receive_request`. Join the two halves into one request.
   */
  adoptUpgrade(ev: ProbeEvent, connId: number, reqId: number): RequestRecord | undefined {
    if (reqId !== 1) return undefined;
    const pending = this._upgradesByTid.get(ev.tid);
    if (pending === undefined || this._table.get(connId) !== undefined) return undefined;
    this._upgradesByTid.delete(ev.tid);
    const conn = this._table.open(connId, ev, 'http/2', false);
    const http1 = pending.conn.record;
    conn.record.start = http1.start;
    conn.record.uuid = http1.uuid;
    conn.record.http1ConnId = http1.connId;
    const req = pending.req;
    req.upgradedToHttp2 = true;
    this._table.adoptRequest(conn, reqId, req);
    return req;
  }

  /** Upgrades no HTTP/2 connection took within the window end as the `101`s they were. */
  expireUpgrades(now: number): void {
    for (const [tid, pending] of this._upgradesByTid) {
      if (now - pending.closedAt > UPGRADE_WINDOW_MS) {
        this._upgradesByTid.delete(tid);
        this._finishUpgradeAlone(pending);
      }
    }
  }

  /** The source ended: no HTTP/2 connection will take the waiting upgrades. */
  flushUpgrades(): void {
    for (const pending of this._upgradesByTid.values()) this._finishUpgradeAlone(pending);
    this._upgradesByTid.clear();
  }

  private _finishUpgradeAlone(pending: PendingUpgrade): void {
    const { conn, req } = pending;
    req.end = endOfHttp1(req, conn.record.end ?? req.start);
    this._sink.requestCompleted(req);
    this._sink.connectionClosed(conn.record);
  }
}

/** H2O moves `Upgrade` out of the header list; `HTTP2-Settings` is mandatory for h2c (RFC 7540 §3.2) and stays. */
function isH2cUpgrade(req: RequestRecord): boolean {
  for (const h of req.requestHeaders) {
    if (h.name === 'http2-settings' || (h.name === 'upgrade' && /\bh2c\b/i.test(h.value))) return true;
  }
  return false;
}
