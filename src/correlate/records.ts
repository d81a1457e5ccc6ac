/**
 * What the correlator hands to the span mapper: one record per request and per connection, complete.
 * Times are the ProbeEvents that marked them (ms + sub-ms ns), so no time object is allocated per event.
 */
import type { FieldValue, ProbeEvent } from '../events/types.js';

export type Stamp = Pick<ProbeEvent, 'timeMs' | 'timeSubNs'>;

/** The later of two stamps (the first when equal). */
export function later(a: Stamp, b: Stamp): Stamp {
  return a.timeMs > b.timeMs || (a.timeMs === b.timeMs && a.timeSubNs >= b.timeSubNs) ? a : b;
}

export function earlier(a: Stamp, b: Stamp): Stamp {
  return a.timeMs < b.timeMs || (a.timeMs === b.timeMs && a.timeSubNs <= b.timeSubNs) ? a : b;
}

export type Protocol = 'http/1' | 'http/2' | 'http/3';

/** Why a record was exported without its normal start or end. */
export type IncompleteReason =
  /** Its start was never seen: h2o-otel attached while it was in flight, or the start event was lost. */
  | 'attached_mid_flight'
  /** A response without a request event (HTTP/1 400 on a parse error, HTTP/2 push). */
  | 'no_request_event'
  /** The connection closed before the request ended. */
  | 'connection_closed'
  /** Open longer than its deadline. */
  | 'timeout'
  /** Evicted to keep state bounded. */
  | 'evicted'
  /** The source ended (socket closed, H2O restarted, replay finished) while it was open. */
  | 'source_ended';

/**
 * A quicly or picotls event kept for a span: the probe event itself, which its record already holds as a stamp, so
 * keeping it allocates nothing. The correlator decides which events are kept (`correlate/quic.ts`); `otel/` names
 * them.
 */
export type TransportEvent = ProbeEvent;

export interface TlsFacts {
  start: Stamp | undefined;
  done: Stamp | undefined;
  /** picotls result of the last handshake message: 0 ok, 514/523 in progress, else an alert or error. */
  lastResult: number | undefined;
  ech: boolean | undefined;
  /** A CLIENT_EARLY_TRAFFIC_SECRET was derived: a resumed session offering 0-RTT. */
  earlyData: boolean;
}

export interface QuicRecord {
  /** The client's first destination CID (`quicly:accept.dcid`): qlog's group_id. */
  originalDcid: string | undefined;
  /** Set by a version negotiation (`quicly:version_switch`); otherwise H2O does not log the version. */
  version: number | undefined;
  /** Sub-events in order, at most `cap` kept (the rest counted in `droppedEvents`). */
  readonly events: TransportEvent[];
  droppedEvents: number;
  packetsLost: number;
  ptos: number;
  congestionEvents: number;
  ecnCe: number;
  keyUpdates: number;
  pathsCreated: number;
  handshakeComplete: boolean;
  handshakeDone: Stamp | undefined;
  /** The first CONNECTION_CLOSE sent or received (`quicly:{transport,application}_close_{send,receive}`). */
  close: TransportEvent | undefined;
  idleTimeout: boolean;
  /** `quicly:conn_stats` (socket source only: USDT passes a struct pointer). */
  stats: Readonly<Record<string, FieldValue>> | undefined;
  /** `quicly:free` seen: nothing more will come. */
  freed: boolean;
  readonly tls: TlsFacts;
}

export interface Header {
  /** Lower-cased name as H2O reports it (pseudo-headers start with `:`). */
  readonly name: string;
  readonly value: string;
  /** The source cut the value (USDT copies at most a set number of bytes). */
  readonly truncated?: boolean;
}

/** One upstream connection attempt of a CONNECT tunnel (USDT `connect_tcp_start` / `connect_udp_start`). */
export interface UpstreamAttempt {
  readonly transport: 'tcp' | 'udp';
  readonly start: Stamp;
  end: Stamp | undefined;
  /** `addr:port` H2O connected (or tried to connect) to. */
  dest: string | undefined;
  /** Known connected (`connect_success`, or data moved through it). */
  connected: boolean;
  /** Why it failed, when it did. */
  error: string | undefined;
}

/** What H2O's CONNECT handler reported for one request (USDT only). */
export interface TunnelRecord {
  readonly attempts: UpstreamAttempt[];
  /** Bytes written to the upstream (from the client). */
  bytesSent: number;
  /** Bytes read from the upstream (to the client). */
  bytesReceived: number;
  /** `connect_error`'s error_type (also H2O's `proxy-status` error). */
  error: string | undefined;
  /** Read/write errors and idle timeouts while the tunnel was up. */
  readonly problems: { readonly at: Stamp; readonly kind: string; readonly message: string }[];
  last: Stamp;
  disposed: Stamp | undefined;
}

export interface ConnectionRecord {
  readonly connId: number;
  protocol: Protocol | undefined;
  readonly tid: number;
  start: Stamp;
  /** Last event seen for the connection (its end when no close event exists, as in HTTP/2). */
  last: Stamp;
  end: Stamp | undefined;
  uuid: string | undefined;
  /** `h1_accept.sock`: links socket-level write events to this HTTP/1 connection. */
  sock: FieldValue | undefined;
  /** HTTP/3: the client's address and port from the QUIC path (`quicly:new_path`). */
  remote: string | undefined;
  /** The HTTP/1 connection id H2O gave the same TCP connection before it switched to HTTP/2 (h2c). */
  http1ConnId: number | undefined;
  requestCount: number;
  /** `h3s_destroy` counters. */
  closeStats: Readonly<Record<string, FieldValue>> | undefined;
  /** HTTP/3: the QUIC connection's transport events, totals, close reason and TLS facts (quicly/picotls events). */
  quic: QuicRecord | undefined;
  /** TLS over TCP: picotls facts, when its events could be tied to this connection (see the correlator). */
  tls: TlsFacts | undefined;
  /** Socket writes (`writev`) on the connection's socket: bytes handed to the kernel, calls, failed writes. */
  bytesWritten: number;
  writes: number;
  writeFailures: number;
  incomplete: IncompleteReason | undefined;
}

export interface RequestRecord {
  conn: ConnectionRecord;
  readonly reqId: number;
  /** H2O's encoding: 256 HTTP/1.0, 257 HTTP/1.1, 512 HTTP/2, 768 HTTP/3; undefined without `receive_request`. */
  httpVersion: number | undefined;
  start: Stamp;
  readonly requestHeaders: Header[];
  /** Header events whose name and value H2O withheld (h2olog not set to `appdata`). */
  hiddenHeaders: number;
  /** Headers beyond the per-request cap, counted and not kept. */
  droppedHeaders: number;
  status: number | undefined;
  responseStart: Stamp | undefined;
  readonly responseHeaders: Header[];
  /** Last socket write of the response (HTTP/1). */
  lastWrite: Stamp | undefined;
  end: Stamp | undefined;
  /** `h3s_stream_stats` counters. */
  streamStats: Readonly<Record<string, FieldValue>> | undefined;
  /** HTTP/3: events of its QUIC stream, and losses and PTOs of the connection while it was in flight. */
  readonly transportEvents: TransportEvent[];
  droppedTransportEvents: number;
  packetsLost: number;
  ptos: number;
  /** HTTP/3: `h3s_stream_stats` came; the request ends when its stream is destroyed (or shortly after). */
  streamDone: Stamp | undefined;
  /** CONNECT: the upstream side of the tunnel (USDT `connect_*` probes). */
  tunnel: TunnelRecord | undefined;
  /** Set when the request arrived over HTTP/1.1 with `Upgrade: h2c` and was answered over HTTP/2. */
  upgradedToHttp2: boolean;
  /** Response body bytes H2O sent (request probe: `bytes_sent`). */
  bodyBytesSent: number | undefined;
  /** H2O's own timestamps of the request (request probe). */
  timings: H2oTimings | undefined;
  /** A reverse-proxied request's exchange with its upstream (request probe: `proxy_stats`). */
  upstream: UpstreamExchange | undefined;
  /** Request probe: the HTTP/2 or HTTP/3 stream, when the build let it be read (then also the reqId). */
  streamId: number | undefined;
  incomplete: IncompleteReason | undefined;
}

/** What H2O noted of a request as it went (its event loop's clock: µs, shared by what one loop turn did). */
export interface H2oTimings {
  readonly connectedAt: Stamp | undefined;
  readonly requestBegin: Stamp;
  readonly responseStart: Stamp | undefined;
  readonly responseEnd: Stamp | undefined;
}

/** H2O's proxy_stats: when it reached each step of the upstream exchange, and the bytes each way. */
export interface UpstreamExchange {
  readonly start: Stamp;
  readonly requestBegin: Stamp | undefined;
  readonly requestEnd: Stamp | undefined;
  readonly responseStart: Stamp | undefined;
  readonly responseEnd: Stamp | undefined;
  /** Headers and body, above TLS. */
  readonly bytesWritten: number;
  readonly bytesRead: number;
}

/** The value of the first request header of that name. */
export function requestHeader(req: RequestRecord, name: string): string | undefined {
  for (const h of req.requestHeaders) if (h.name === name) return h.value;
  return undefined;
}

/** Where the correlator delivers complete records. */
export interface RecordSink {
  requestCompleted(req: RequestRecord): void;
  connectionClosed(conn: ConnectionRecord): void;
}

/** A connection first seen at `start`, nothing else known of it yet. */
export function newConnectionRecord(
  connId: number,
  protocol: Protocol | undefined,
  tid: number,
  start: Stamp,
  incomplete: IncompleteReason | undefined,
): ConnectionRecord {
  return {
    connId,
    protocol,
    tid,
    start,
    last: start,
    end: undefined,
    uuid: undefined,
    sock: undefined,
    remote: undefined,
    http1ConnId: undefined,
    requestCount: 0,
    closeStats: undefined,
    quic: undefined,
    tls: undefined,
    bytesWritten: 0,
    writes: 0,
    writeFailures: 0,
    incomplete,
  };
}

/** A request of `conn` first seen at `start`, with the stream events that came before it (HTTP/3). */
export function newRequestRecord(
  conn: ConnectionRecord,
  reqId: number,
  start: Stamp,
  incomplete: IncompleteReason | undefined,
  transportEvents: TransportEvent[] = [],
): RequestRecord {
  return {
    conn,
    reqId,
    httpVersion: undefined,
    start,
    requestHeaders: [],
    hiddenHeaders: 0,
    droppedHeaders: 0,
    status: undefined,
    responseStart: undefined,
    responseHeaders: [],
    lastWrite: undefined,
    end: undefined,
    streamStats: undefined,
    transportEvents,
    droppedTransportEvents: 0,
    packetsLost: 0,
    ptos: 0,
    streamDone: undefined,
    tunnel: undefined,
    upgradedToHttp2: false,
    bodyBytesSent: undefined,
    timings: undefined,
    upstream: undefined,
    streamId: undefined,
    incomplete,
  };
}
