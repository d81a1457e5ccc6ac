/**
 * Hybrid tracing (the request probe beside H2O's QUIC probes): HTTP/3 requests arrive as finished records, their
 * QUIC connection as events the correlator makes into a connection record. A request joins that record by conn id,
 * so its span links to the QUIC connection span the event sources show (transport detail, TLS, close reason), and
 * the record counts it. The two come through separate rings, drained in turn: a request whose connection the
 * events have not shown yet waits a little, then keeps its own record; a connection the events ended stays
 * joinable as long, for its last requests still on their way.
 */
import type { ConnectionRecord, RequestRecord, Stamp, TransportEvent } from './records.js';

function before(a: Stamp, b: Stamp): boolean {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.timeSubNs < b.timeSubNs);
}

interface Held {
  readonly req: RequestRecord;
  readonly untilMs: number;
}

export class QuicConnectionJoin {
  private _held: Held[] = [];
  /** QUIC connections the events ended, kept open a little for requests still on their way. */
  private readonly _closing = new Map<
    number,
    { readonly conn: ConnectionRecord; readonly untilMs: number }
  >();
  /** Requests that kept their own connection record (their QUIC connection's events never came). */
  unjoined = 0;

  constructor(
    /** The open connection record of that conn id, made from events. */
    private readonly _lookup: (connId: number) => ConnectionRecord | undefined,
    private readonly _holdMs: number,
    /** The events of a request's QUIC stream the events' side held for it (stream open, sends, resets). */
    private readonly _streamEvents: (connId: number, streamId: number) => TransportEvent[] | undefined = () =>
      undefined,
    /** Sub-events kept per span at most. */
    private readonly _maxEvents = 128,
    /** The time (ms) of the latest event the events' side has handed on: it has seen everything before it. */
    private readonly _eventsMs: () => number = () => Infinity,
  ) {}

  get held(): number {
    return this._held.length;
  }

  /** The requests of `requests` that can go on now, and held ones that can, appended to `out`. */
  take(requests: readonly RequestRecord[], nowMs: number, out: RequestRecord[]): void {
    this.release(nowMs, out);
    for (const req of requests) {
      if (req.conn.protocol !== 'http/3' || (this._caughtUp(req) && this._join(req))) out.push(req);
      else this._held.push({ req, untilMs: nowMs + this._holdMs });
    }
  }

  /** Held requests that joined meanwhile or waited long enough (all of them with `all`), appended to `out`. */
  release(nowMs: number, out: RequestRecord[], all = false): void {
    this._releaseWhere(out, (h) => all || nowMs >= h.untilMs);
  }

  /** The held requests of these connections (a request source's own records, closing), appended to `out`. */
  releaseOf(conns: readonly ConnectionRecord[], out: RequestRecord[]): void {
    if (this._held.length > 0 && conns.length > 0) this._releaseWhere(out, (h) => conns.includes(h.req.conn));
  }

  /** An HTTP/3 connection the events ended: it stays joinable until `nowMs` + the hold. */
  deferClose(conn: ConnectionRecord, nowMs: number): void {
    this._closing.set(conn.connId, { conn, untilMs: nowMs + this._holdMs });
  }

  /** Deferred connections whose time came (all of them with `all`), appended to `out`. */
  releaseClosed(nowMs: number, out: ConnectionRecord[], all = false): void {
    for (const [id, c] of this._closing) {
      if (!all && nowMs < c.untilMs) continue;
      this._closing.delete(id);
      out.push(c.conn);
    }
  }

  get closing(): number {
    return this._closing.size;
  }

  /**
   * A held request goes once the events' side has caught up with its end (so the losses while it was in flight
   * are in), joined to its connection; or when it is due, joined if it can be.
   */
  private _releaseWhere(out: RequestRecord[], due: (h: Held) => boolean): void {
    if (this._held.length === 0) return;
    const still: Held[] = [];
    for (const h of this._held) {
      const isDue = due(h);
      if ((isDue || this._caughtUp(h.req)) && this._join(h.req)) out.push(h.req);
      else if (isDue) {
        this.unjoined++;
        out.push(h.req);
      } else still.push(h);
    }
    this._held = still;
  }

  private _caughtUp(req: RequestRecord): boolean {
    return (req.end ?? req.start).timeMs < this._eventsMs();
  }

  /**
   * Whether the connection record should go on to a span: not a request source's own record of an HTTP/3
   * connection whose requests all joined the events' record (it would be an empty second span of the connection).
   */
  keeps(conn: ConnectionRecord): boolean {
    return conn.protocol !== 'http/3' || conn.requestCount > 0;
  }

  private _join(req: RequestRecord): boolean {
    const id = req.conn.connId;
    const known = this._lookup(id) ?? this._closing.get(id)?.conn;
    if (known === undefined) return false;
    if (known !== req.conn) {
      req.conn.requestCount--;
      known.requestCount++;
      req.conn = known;
      this._adoptTransport(req, known);
    }
    return true;
  }

  /**
   * The QUIC detail of a request the events did not see start: its stream's events, and the losses and PTOs of its
   * connection while it was in flight (from the connection's kept events), as the event sources give a request.
   */
  private _adoptTransport(req: RequestRecord, conn: ConnectionRecord): void {
    const events: TransportEvent[] =
      req.streamId === undefined ? [] : (this._streamEvents(conn.connId, req.streamId) ?? []);
    // In flight from its stream's opening, which comes before H2O stamps the request.
    let from = req.start;
    for (const e of events) if (before(e, from)) from = e;
    const to = req.end ?? req.start;
    for (const e of conn.quic?.events ?? []) {
      if (e.type !== 'packet_lost' && e.type !== 'pto') continue;
      if (before(e, from) || before(to, e)) continue;
      if (e.type === 'packet_lost') req.packetsLost++;
      else req.ptos++;
      events.push(e);
    }
    if (events.length === 0) return;
    events.sort((a, b) => a.timeMs - b.timeMs || a.timeSubNs - b.timeSubNs);
    const kept = events.slice(0, this._maxEvents);
    req.transportEvents.push(...kept);
    req.droppedTransportEvents += events.length - kept.length;
  }
}
