/**
 * The request events every protocol shares: `receive_request`, the header events, `send_response`, and the
 * CONNECT tunnel events. A request whose start was not seen is created (and flagged) by its first event.
 */
import { numberOf } from '../events/types.js';
import type { ProbeEvent } from '../events/types.js';
import type { ConnectionTable } from './connections.js';
import type { Http1 } from './http1.js';
import type { CorrelatorOptions, CorrelatorStats } from './options.js';
import type { Header, IncompleteReason, Protocol, RequestRecord } from './records.js';
import type { TcpTlsBinder } from './tcp-tls.js';
import { applyConnectEvent } from './tunnel.js';

function protocolOf(httpVersion: number): Protocol {
  if (httpVersion >= 768) return 'http/3';
  return httpVersion >= 512 ? 'http/2' : 'http/1';
}

export class Requests {
  constructor(
    private readonly _opts: CorrelatorOptions,
    private readonly _stats: CorrelatorStats,
    private readonly _table: ConnectionTable,
    private readonly _http1: Http1,
    private readonly _tls: TcpTlsBinder,
  ) {}

  receiveRequest(ev: ProbeEvent): void {
    const f = ev.fields;
    const connId = numberOf(f.conn_id);
    const reqId = numberOf(f.req_id);
    const httpVersion = numberOf(f.http_version);
    if (connId === undefined || reqId === undefined) return void this._stats.orphanEvents++;
    const protocol = httpVersion === undefined ? undefined : protocolOf(httpVersion);
    const known = this._table.get(connId);
    const conn = known ?? this._table.open(connId, ev, protocol, protocol !== 'http/2');
    if (known === undefined && protocol === 'http/2') {
      this._http1.adoptPriorKnowledge(conn, ev);
      if (conn.record.http1ConnId === undefined) this._tls.claim(conn, ev.tid, true);
    }
    this._table.learnProtocol(conn, protocol);
    if (conn.record.protocol === 'http/1') this._http1.requestStarted(conn, ev);
    const existing = conn.requests.get(reqId);
    if (existing !== undefined)
      this._table.completeRequest(conn, existing, existing.responseStart ?? ev, 'timeout');
    const req = this._table.newRequest(conn, reqId, ev, undefined);
    req.httpVersion = httpVersion;
  }

  /** `receive_request_header` (`request`) or `send_response_header`. */
  header(ev: ProbeEvent, request: boolean): void {
    const f = ev.fields;
    const req = this._requestFor(ev, request);
    if (req === undefined) return;
    const name = f.name;
    const value = f.value;
    if (typeof name !== 'string') {
      req.hiddenHeaders++;
      this._stats.hiddenHeaderEvents++;
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

  sendResponse(ev: ProbeEvent): void {
    const connId = numberOf(ev.fields.conn_id);
    const reqId = numberOf(ev.fields.req_id);
    if (connId === undefined || reqId === undefined) return void this._stats.orphanEvents++;
    let req = this._table.get(connId)?.requests.get(reqId);
    if (req === undefined) req = this._http1.adoptUpgrade(ev, connId, reqId);
    req ??= this._requestFor(ev, false);
    if (req === undefined) return;
    req.status = numberOf(ev.fields.status);
    req.responseStart = ev;
    // Whichever way the request was found, it is open on connection `connId` now.
    this._table.requestChanged(this._table.get(connId)!, req);
  }

  /** CONNECT tunnel events (USDT): kept on the request, which stays open until `connect_dispose`. */
  connect(ev: ProbeEvent): void {
    const conn = this._table.find(ev, 'orphanEvents');
    const req = conn === undefined ? undefined : this._table.request(conn, ev.fields.req_id);
    if (conn === undefined || req === undefined) return;
    this._table.touch(conn, ev);
    applyConnectEvent(req, ev);
    if (ev.type !== 'connect_dispose') return this._table.requestChanged(conn, req);
    this._table.completeRequest(conn, req, ev, undefined);
    if (conn.closedAt !== undefined)
      this._table.closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
  }

  /** The request a header or response event belongs to, created (and flagged) when its start was not seen. */
  private _requestFor(ev: ProbeEvent, request: boolean): RequestRecord | undefined {
    const connId = numberOf(ev.fields.conn_id);
    const reqId = numberOf(ev.fields.req_id);
    if (connId === undefined || reqId === undefined) {
      this._stats.orphanEvents++;
      return undefined;
    }
    const conn = this._table.get(connId) ?? this._table.open(connId, ev, undefined, true);
    this._table.touch(conn, ev);
    const req = conn.requests.get(reqId);
    if (req !== undefined) return req;
    // Response headers arriving after the request was completed (e.g. the HTTP/2 grace ran out) are late, not new.
    if (!request && ev.type === 'send_response_header') {
      this._stats.orphanEvents++;
      return undefined;
    }
    const reason: IncompleteReason =
      ev.type === 'send_response' && conn.record.incomplete === undefined
        ? 'no_request_event'
        : 'attached_mid_flight';
    if (reason === 'attached_mid_flight') this._stats.midFlightRequests++;
    return this._table.newRequest(conn, reqId, ev, reason);
  }
}
