/** What the correlator keeps per open connection, shared by the modules that handle its events. */
import type { TransportEvent } from './records.js';
import type { ConnectionRecord, RequestRecord, Stamp } from './records.js';

/** After `h3s_destroy` (or `h3s_stream_stats`), quicly's last events of the connection (stream) follow at once. */
export const QUIC_TAIL_MS = 200;

export interface ConnState {
  readonly record: ConnectionRecord;
  readonly requests: Map<number, RequestRecord>;
  /** HTTP/1: the request being served (H2O serves one at a time per connection). */
  current: RequestRecord | undefined;
  /** H2O closed the connection while a CONNECT tunnel on it was still up: close it when the tunnel ends. */
  closedAt: Stamp | undefined;
  /** HTTP/3 after `h3s_destroy`: wait until this event time (ms) for quicly's final events. */
  closeAfter: number | undefined;
  /** HTTP/3: stream events of requests not started yet, by stream id. */
  pendingStream: Map<number, TransportEvent[]> | undefined;
  /**
   * In the table. False once closed or folded into another connection; a stale lookup (a socket H2O reused) may
   * still reach it, and it must not come back to life.
   */
  open: boolean;
  /** Opening order: due connections are handled in it, as a scan of the table would meet them. */
  readonly seq: number;
  /** No deadline of the connection or its requests comes before this event time (ms); see deadlines.ts. */
  dueAt: number;
  /** Position in the deadline heap, -1 when not in it. */
  heapIndex: number;
}

/**
 * Told of every change that can bring a connection's next deadline closer, so the deadline queue only looks at
 * connections that are due.
 */
export interface DeadlineWatch {
  /** A field one of the request's deadlines depends on changed (or the request is new on `conn`). */
  requestChanged(conn: ConnState, req: RequestRecord): void;
  /** The connection's last event, close state or request count changed. */
  connectionChanged(conn: ConnState): void;
  /** The connection's protocol became known: every deadline of it may have moved. */
  protocolChanged(conn: ConnState): void;
  forgotten(conn: ConnState): void;
}

/** An HTTP/1 request's end: its last response write, else its response start, else `fallback`. */
export function endOfHttp1(req: RequestRecord, fallback: Stamp): Stamp {
  return req.lastWrite ?? req.responseStart ?? fallback;
}
