/**
 * Hybrid tracing (the request probe beside H2O's QUIC probes): HTTP/3 requests arrive as finished records, their
 * QUIC connection as events the correlator makes into a connection record. A request joins that record by conn id,
 * so its span links to the QUIC connection span the event sources show (transport detail, TLS, close reason), and
 * the record counts it. The two come through separate rings, drained in turn: a request whose connection the
 * events have not shown yet waits a little, then keeps its own record.
 */
import type { ConnectionRecord, RequestRecord } from './records.js';

interface Held {
  readonly req: RequestRecord;
  readonly untilMs: number;
}

export class QuicConnectionJoin {
  private _held: Held[] = [];
  /** Requests that kept their own connection record (their QUIC connection's events never came). */
  unjoined = 0;

  constructor(
    /** The open connection record of that conn id, made from events. */
    private readonly _lookup: (connId: number) => ConnectionRecord | undefined,
    private readonly _holdMs: number,
  ) {}

  get held(): number {
    return this._held.length;
  }

  /** The requests of `requests` that can go on now, and held ones that can, appended to `out`. */
  take(requests: readonly RequestRecord[], nowMs: number, out: RequestRecord[]): void {
    this.release(nowMs, out);
    for (const req of requests) {
      if (req.conn.protocol !== 'http/3' || this._join(req)) out.push(req);
      else this._held.push({ req, untilMs: nowMs + this._holdMs });
    }
  }

  /** Held requests that joined meanwhile or waited long enough (all of them with `all`), appended to `out`. */
  release(nowMs: number, out: RequestRecord[], all = false): void {
    if (this._held.length === 0) return;
    const still: Held[] = [];
    for (const h of this._held) {
      if (this._join(h.req)) out.push(h.req);
      else if (all || nowMs >= h.untilMs) {
        this.unjoined++;
        out.push(h.req);
      } else still.push(h);
    }
    this._held = still;
  }

  /**
   * Whether the connection record should go on to a span: not a request source's own record of an HTTP/3
   * connection whose requests all joined the events' record (it would be an empty second span of the connection).
   */
  keeps(conn: ConnectionRecord): boolean {
    return conn.protocol !== 'http/3' || conn.requestCount > 0;
  }

  private _join(req: RequestRecord): boolean {
    const known = this._lookup(req.conn.connId);
    if (known === undefined) return false;
    if (known !== req.conn) {
      req.conn.requestCount--;
      known.requestCount++;
      req.conn = known;
    }
    return true;
  }
}
