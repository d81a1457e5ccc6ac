/** What the correlator is told (its deadlines and bounds) and what it counts. */

export interface CorrelatorOptions {
  /** HTTP/1 has no request-end event: end a request this long after its last response write (ms). */
  readonly http1QuietMs: number;
  /** HTTP/2 has no request-end event: the span ends at `send_response`; wait this long for late events (ms). */
  readonly http2GraceMs: number;
  /** HTTP/2 has no close event: a connection with no open request and no event for this long has ended (ms). */
  readonly http2IdleMs: number;
  /** A connection with no event for this long is closed and flagged (ms); H2O closes idle ones far sooner. */
  readonly connectionIdleMs: number;
  /** A request open this long is exported and flagged (ms). */
  readonly requestTimeoutMs: number;
  /** Open connections kept at most; the oldest is evicted (and counted) beyond it. */
  readonly maxConnections: number;
  /** Open requests per connection kept at most. */
  readonly maxRequestsPerConnection: number;
  /** Headers kept per request and direction; the rest are counted. */
  readonly maxHeaders: number;
  /** QUIC/TLS sub-events kept per span; the rest are counted (and still in the totals). */
  readonly maxSpanEvents: number;
}

export const DEFAULT_CORRELATOR_OPTIONS: CorrelatorOptions = {
  http1QuietMs: 2000,
  http2GraceMs: 200,
  http2IdleMs: 30_000,
  connectionIdleMs: 300_000,
  requestTimeoutMs: 300_000,
  maxConnections: 100_000,
  maxRequestsPerConnection: 1_000,
  maxHeaders: 128,
  maxSpanEvents: 128,
};

export interface CorrelatorStats {
  connections: number;
  requests: number;
  midFlightRequests: number;
  evictedConnections: number;
  evictedRequests: number;
  timedOutRequests: number;
  /** Events for a connection or request that was already complete or never known (e.g. `h1_close` of an unknown conn). */
  orphanEvents: number;
  /** Header events without name and value: the server is not sending application data. */
  hiddenHeaderEvents: number;
  /** Events the correlator does not use (subscribed by someone else, or connection-less). */
  ignoredEvents: number;
}

export function newCorrelatorStats(): CorrelatorStats {
  return {
    connections: 0,
    requests: 0,
    midFlightRequests: 0,
    evictedConnections: 0,
    evictedRequests: 0,
    timedOutRequests: 0,
    orphanEvents: 0,
    hiddenHeaderEvents: 0,
    ignoredEvents: 0,
  };
}
