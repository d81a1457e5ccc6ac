// Hand-built probe events and a collecting sink for the correlator's unit tests.
import { Correlator, DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import type { CorrelatorOptions } from '../src/correlate/correlator.js';
import type { ConnectionRecord, RecordSink, RequestRecord } from '../src/correlate/records.js';
import { newDecodeStats } from '../src/events/types.js';
import type { FieldValue, ProbeEvent } from '../src/events/types.js';
import type { Sessions, SourceSink } from '../src/sources/sink.js';

/** An epoch-like base so event times look like H2O's. */
export const T0 = 1_700_000_000_000;

export function probe(
  module: string,
  type: string,
  at: number,
  fields: Record<string, FieldValue> = {},
  tid = 1,
): ProbeEvent {
  return { module, type, tid, timeMs: T0 + at, timeSubNs: 0, fields };
}

export const h2o = (type: string, at: number, fields: Record<string, FieldValue> = {}, tid = 1): ProbeEvent =>
  probe('h2o', type, at, fields, tid);

/** Records in the order they reached the sink; `log` names each (`req 3/1`, `conn 3`). */
export class Collected implements RecordSink {
  readonly requests: RequestRecord[] = [];
  readonly connections: ConnectionRecord[] = [];
  readonly log: string[] = [];

  requestCompleted(req: RequestRecord): void {
    this.requests.push(req);
    this.log.push(`req ${req.conn.connId}/${req.reqId}`);
  }

  connectionClosed(conn: ConnectionRecord): void {
    this.connections.push(conn);
    this.log.push(`conn ${conn.connId}`);
  }

  request(connId: number, reqId: number): RequestRecord | undefined {
    return this.requests.find((r) => r.conn.connId === connId && r.reqId === reqId);
  }

  connection(connId: number): ConnectionRecord | undefined {
    return this.connections.find((c) => c.connId === connId);
  }
}

export function correlator(opts: Partial<CorrelatorOptions> = {}): { c: Correlator; sink: Collected } {
  const sink = new Collected();
  return { c: new Correlator({ ...DEFAULT_CORRELATOR_OPTIONS, ...opts }, sink), sink };
}

/** Milliseconds after T0 of a record's stamp. */
export function at(stamp: { timeMs: number } | undefined): number | undefined {
  return stamp === undefined ? undefined : stamp.timeMs - T0;
}

/** One HTTP/1.1 request answered on `conn` over socket `sock`: receive_request, send_response, one write. */
export function http1Exchange(
  conn: number,
  req: number,
  start: number,
  sock: FieldValue,
  tid = 1,
): ProbeEvent[] {
  return [
    h2o('receive_request', start, { conn_id: conn, req_id: req, http_version: 257 }, tid),
    h2o('send_response', start + 1, { conn_id: conn, req_id: req, status: 200 }, tid),
    h2o('writev', start + 2, { sock, ret: 100 }, tid),
  ];
}

/** What a source is given, decoding everything, with `open` for each new session. */
export function sessionsFor(open: () => SourceSink): Sessions {
  return {
    decode: {
      stats: newDecodeStats(),
      json: { maxLineBytes: 1 << 20 },
      usesHeader: undefined,
      usedHeaderNames: undefined,
    },
    open,
  };
}
