/**
 * A record stage between the correlator and the span mapper: drops the requests that are not the user's traffic,
 * and the connections that carried nothing else.
 *
 * Those are h2o-otel's own appdata probe, and an h2olog client's handshake. H2O hands the handshake's socket over
 * to its log stream and writes the 200 itself, so the request ends with its connection and no response: as a span
 * it would be a failed request each time a tracer (another h2o-otel, H2O's `misc/h2olog`) connects. A request to
 * that path that did get a response (H2O without h2olog there: a 404) is traffic like any other.
 */
import { H2OLOG_PATH, PROBE_PATH } from '../events/catalogue.js';
import type { ConnectionRecord, RecordSink, RequestRecord } from './records.js';
import { requestHeader } from './records.js';

export interface TracerRequestStats {
  /** Requests of tracers, not passed on: other h2olog clients' handshakes (another h2o-otel's too) and the probe. */
  tracerRequests: number;
}

export class TracerRequestFilter implements RecordSink {
  readonly stats: TracerRequestStats = { tracerRequests: 0 };
  /** Connections that carried a tracer's request, with how many: one that carried more requests is traffic. */
  private readonly _tracerConns = new WeakMap<ConnectionRecord, number>();

  constructor(private readonly _next: RecordSink) {}

  requestCompleted(req: RequestRecord): void {
    if (isTracerRequest(req)) {
      this._tracerConns.set(req.conn, (this._tracerConns.get(req.conn) ?? 0) + 1);
      this.stats.tracerRequests++;
      return;
    }
    this._next.requestCompleted(req);
  }

  connectionClosed(conn: ConnectionRecord): void {
    if (this._tracerConns.get(conn) === conn.requestCount) return;
    this._next.connectionClosed(conn);
  }
}

export function isTracerRequest(req: RequestRecord): boolean {
  const path = requestHeader(req, ':path');
  if (path === undefined) return false;
  if (path === PROBE_PATH) return true;
  return (
    req.status === undefined &&
    path.startsWith(H2OLOG_PATH) &&
    (path.length === H2OLOG_PATH.length || path.charCodeAt(H2OLOG_PATH.length) === 0x3f) /* ? */
  );
}
