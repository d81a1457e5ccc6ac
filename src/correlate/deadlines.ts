/**
 * Deadlines without a scan of the table. Each open connection sits in a min-heap keyed by the earliest event time
 * at which the sweep could end it or one of its requests. A change that brings a deadline closer lowers the key at
 * once (see `DeadlineWatch`); a sweep pops only the due connections, handles them in opening order (the order a
 * scan of the table meets them, which fixes the order records reach the sink), and re-keys each from its state.
 */
import { endOfHttp1, QUIC_TAIL_MS } from './conn-state.js';
import type { ConnState, DeadlineWatch } from './conn-state.js';
import type { ConnectionTable } from './connections.js';
import type { CorrelatorOptions } from './options.js';
import type { Protocol, RequestRecord } from './records.js';
import { closeAttempts, tunnelOpen } from './tunnel.js';

/**
 * Keys are sums (`last + idle`) where `expire` compares differences (`now - last >= idle`): popping this much
 * early keeps float rounding from hiding a due connection. An early pop only checks it once more.
 */
const POP_EARLY_MS = 1;

/** When `expire` ends the request, on a connection of `protocol` (its conditions, as an event time in ms). */
export function requestDueAt(
  req: RequestRecord,
  protocol: Protocol | undefined,
  o: CorrelatorOptions,
): number {
  if (req.tunnel !== undefined && tunnelOpen(req)) return req.tunnel.last.timeMs + o.requestTimeoutMs;
  if (req.streamDone !== undefined) return req.streamDone.timeMs + QUIC_TAIL_MS;
  const resp = req.responseStart;
  if (protocol === 'http/2' && resp !== undefined) return resp.timeMs + o.http2GraceMs;
  if (protocol === 'http/1' && resp !== undefined) return (req.lastWrite ?? resp).timeMs + o.http1QuietMs;
  return req.start.timeMs + o.requestTimeoutMs;
}

/** When `expire` closes the connection, its requests aside. */
export function connectionDueAt(conn: ConnState, o: CorrelatorOptions): number {
  const empty = conn.requests.size === 0;
  const closing = conn.closedAt !== undefined && empty ? (conn.closeAfter ?? -Infinity) : Infinity;
  const idleMs =
    conn.record.protocol === 'http/2' && empty
      ? Math.min(o.http2IdleMs, o.connectionIdleMs)
      : o.connectionIdleMs;
  return Math.min(closing, conn.record.last.timeMs + idleMs);
}

function nextDueAt(conn: ConnState, o: CorrelatorOptions): number {
  let at = connectionDueAt(conn, o);
  for (const req of conn.requests.values()) at = Math.min(at, requestDueAt(req, conn.record.protocol, o));
  return at;
}

/** End what is due at `now` of the connection and its requests. */
function expire(table: ConnectionTable, conn: ConnState, now: number, o: CorrelatorOptions): void {
  const protocol = conn.record.protocol;
  for (const req of [...conn.requests.values()]) {
    const resp = req.responseStart;
    if (req.tunnel !== undefined && tunnelOpen(req)) {
      // Tunnels live as long as they carry data; one silent for the request timeout has ended unseen.
      if (now - req.tunnel.last.timeMs >= o.requestTimeoutMs) {
        closeAttempts(req.tunnel, req.tunnel.last, req.status);
        table.completeRequest(conn, req, req.tunnel.last, 'timeout');
      }
      continue;
    }
    if (req.streamDone !== undefined) {
      if (now - req.streamDone.timeMs >= QUIC_TAIL_MS)
        table.completeRequest(conn, req, req.streamDone, undefined);
      continue;
    }
    if (protocol === 'http/2' && resp !== undefined) {
      if (now - resp.timeMs >= o.http2GraceMs) table.completeRequest(conn, req, resp, undefined);
    } else if (protocol === 'http/1' && resp !== undefined) {
      const lastOut = endOfHttp1(req, resp);
      if (now - lastOut.timeMs >= o.http1QuietMs) table.completeRequest(conn, req, lastOut, undefined);
    } else if (now - req.start.timeMs >= o.requestTimeoutMs) {
      table.completeRequest(conn, req, resp ?? req.start, 'timeout');
    }
  }
  if (
    conn.closedAt !== undefined &&
    conn.requests.size === 0 &&
    (conn.closeAfter === undefined || now >= conn.closeAfter)
  ) {
    return table.closeConnection(conn, conn.closedAt, undefined, 'connection_closed');
  }
  const idle = now - conn.record.last.timeMs;
  if (protocol === 'http/2' && conn.requests.size === 0 && idle >= o.http2IdleMs) {
    table.closeConnection(conn, conn.record.last, undefined, 'timeout');
  } else if (idle >= o.connectionIdleMs) {
    table.closeConnection(conn, conn.record.last, 'timeout', 'timeout');
  }
}

function bySeq(a: ConnState, b: ConnState): number {
  return a.seq - b.seq;
}

export class Deadlines implements DeadlineWatch {
  /** Binary min-heap on `dueAt`; each connection knows its `heapIndex`. */
  private readonly _heap: ConnState[] = [];
  /** The due connections of one sweep (reused). */
  private readonly _due: ConnState[] = [];

  constructor(private readonly _opts: CorrelatorOptions) {}

  requestChanged(conn: ConnState, req: RequestRecord): void {
    this._lower(conn, requestDueAt(req, conn.record.protocol, this._opts));
  }

  connectionChanged(conn: ConnState): void {
    this._lower(conn, connectionDueAt(conn, this._opts));
  }

  protocolChanged(conn: ConnState): void {
    this._rekey(conn, nextDueAt(conn, this._opts));
  }

  forgotten(conn: ConnState): void {
    if (conn.heapIndex >= 0) this._removeAt(conn.heapIndex);
  }

  /** End everything due at `now`. */
  sweep(table: ConnectionTable, now: number): void {
    const heap = this._heap;
    const due = this._due;
    while (heap.length > 0 && heap[0]!.dueAt <= now + POP_EARLY_MS) due.push(this._removeAt(0));
    due.sort(bySeq);
    for (const conn of due) {
      expire(table, conn, now, this._opts);
      if (conn.open) this._rekey(conn, nextDueAt(conn, this._opts));
    }
    due.length = 0;
  }

  /** Make sure the connection is looked at by `at`. */
  private _lower(conn: ConnState, at: number): void {
    if (!conn.open) return;
    if (conn.heapIndex < 0) {
      conn.dueAt = at;
      conn.heapIndex = this._heap.length;
      this._heap.push(conn);
      this._up(conn.heapIndex);
    } else if (at < conn.dueAt) {
      conn.dueAt = at;
      this._up(conn.heapIndex);
    }
  }

  /** The connection's next deadline is exactly `at`. */
  private _rekey(conn: ConnState, at: number): void {
    if (conn.heapIndex < 0) return this._lower(conn, at);
    const before = conn.dueAt;
    conn.dueAt = at;
    if (at < before) this._up(conn.heapIndex);
    else this._down(conn.heapIndex);
  }

  private _removeAt(i: number): ConnState {
    const heap = this._heap;
    const conn = heap[i]!;
    const last = heap.pop()!;
    conn.heapIndex = -1;
    if (last !== conn) {
      heap[i] = last;
      last.heapIndex = i;
      this._down(i);
      this._up(last.heapIndex);
    }
    return conn;
  }

  private _up(i: number): void {
    const heap = this._heap;
    const conn = heap[i]!;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = heap[p]!;
      if (parent.dueAt <= conn.dueAt) break;
      heap[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    heap[i] = conn;
    conn.heapIndex = i;
  }

  private _down(i: number): void {
    const heap = this._heap;
    const n = heap.length;
    const conn = heap[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && heap[c + 1]!.dueAt < heap[c]!.dueAt) c++;
      const child = heap[c]!;
      if (child.dueAt >= conn.dueAt) break;
      heap[i] = child;
      child.heapIndex = i;
      i = c;
    }
    heap[i] = conn;
    conn.heapIndex = i;
  }
}
