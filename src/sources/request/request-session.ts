/**
 * One traced process under the request probe: each disposed request becomes a finished request record, with the
 * record of its connection, pushed straight to the session's sink (no correlator: the probe sees whole requests).
 *
 * Connections: H2O tells when a keep-alive HTTP/1 connection closes (a dispose call with version 0), and a request
 * whose `http1_is_persistent` is off is its connection's last; nothing tells when an HTTP/2 or HTTP/3 connection
 * ends, so it ends after `idleMs` without a request, at its last request's end — as the event sources do for
 * HTTP/2. HTTP/1 connections wait `http1IdleMs`, only a safety net for a lost close record.
 */
import type { ConnectionRecord, Header, Protocol, RequestRecord, Stamp } from '../../correlate/records.js';
import { later, newConnectionRecord, newRequestRecord } from '../../correlate/records.js';
import type { DecodeStats } from '../../events/types.js';
import type { ProcessSession } from '../bpf/process-poller.js';
import type { SourceSink } from '../sink.js';
import type { KtimeClock } from '../bpf/clock.js';
import type { DisposedRequest, ProxyStats, RequestHeader } from './request-record.js';
import {
  AUTHORITY_CAP,
  HEADER_NAME_CAP,
  HEADER_VALUE_CAP,
  METHOD_CAP,
  PATH_CAP,
  RequestAssembler,
  SCHEME_CAP,
} from './request-record.js';

export interface RequestSessionOptions {
  /** An HTTP/2 or HTTP/3 connection without a request for this long has ended (ms). */
  readonly idleMs: number;
  /** An HTTP/1 connection without a request or close record for this long has ended (ms). */
  readonly http1IdleMs: number;
  /** Open connections kept at most; the longest idle is closed (and counted) beyond it. */
  readonly maxConnections: number;
}

export interface RequestSessionStats {
  /** Dispose calls read: requests, and HTTP/1 connection ends. */
  records: number;
  /** Strings (method, authority, path, header names and values) longer than the probe copies. */
  truncated: number;
  /** Connections closed early to keep at most `maxConnections`. */
  evictedConnections: number;
}

export function newRequestSessionStats(): RequestSessionStats {
  return { records: 0, truncated: 0, evictedConnections: 0 };
}

/** H2O's `version` of the dispose call that ends an HTTP/1 connection: not a request. */
const CONNECTION_END = 0;
/** H2O's request headers, at most: beyond the probe's count of headers read. */
const MAX_HEADERS_READ = 64;
/** Conn ids closed before H2O said so (idle, evicted, last request): their late close record is not a new one. */
const MAX_CLOSED_EARLY = 4096;

interface OpenConnection {
  readonly record: ConnectionRecord;
  /** ms since the epoch of its last request's end, for the idle deadline. */
  lastMs: number;
  requests: number;
}

export class RequestProcessSession implements ProcessSession {
  private readonly _assembler = new RequestAssembler();
  /**
   * Open connections by idle deadline class, HTTP/1 and the others, each in order of last use (a Map keeps
   * insertion order; a use moves it to the end), so the idle sweep stops at the first one still in use.
   */
  private readonly _http1 = new Map<bigint, OpenConnection>();
  private readonly _multiplexed = new Map<bigint, OpenConnection>();
  private readonly _closedEarly = new Set<bigint>();
  private readonly _requests: RequestRecord[] = [];
  private readonly _closed: ConnectionRecord[] = [];
  private _ended = false;

  constructor(
    private readonly _clock: KtimeClock,
    private readonly _sink: SourceSink,
    private readonly _decode: DecodeStats,
    readonly stats: RequestSessionStats,
    private readonly _opts: RequestSessionOptions,
  ) {}

  get ended(): boolean {
    return this._ended;
  }

  get openConnections(): number {
    return this._http1.size + this._multiplexed.size;
  }

  record(data: Buffer, off: number, len: number): void {
    const disposed = this._assembler.push(data, off, len);
    if (disposed !== undefined) this._take(disposed);
  }

  flush(): void {
    if (this._requests.length === 0 && this._closed.length === 0) return;
    this._sink.pushRecords(this._requests, this._closed);
    this._requests.length = 0;
    this._closed.length = 0;
  }

  /** Close the connections idle for longer than their deadline as of `nowMs`. */
  tick(nowMs: number): void {
    this._sweep(this._http1, nowMs - this._opts.http1IdleMs);
    this._sweep(this._multiplexed, nowMs - this._opts.idleMs);
    this.flush();
  }

  end(): void {
    if (this._ended) return;
    this._ended = true;
    for (const conns of [this._http1, this._multiplexed])
      for (const [id, c] of conns) this._close(id, c, undefined, 'source_ended');
    this.flush();
    this._sink.end();
  }

  private _sweep(conns: Map<bigint, OpenConnection>, idleBeforeMs: number): void {
    for (const [id, c] of conns) {
      if (c.lastMs > idleBeforeMs) break;
      this._closeEarly(id, c, undefined, undefined);
    }
  }

  private _take(d: DisposedRequest): void {
    this.stats.records++;
    this._decode.events++;
    const at = this._epoch(d.ktimeNs);
    if (d.version === CONNECTION_END) {
      const open = this._http1.get(d.connId);
      if (open !== undefined) this._close(d.connId, open, at, undefined);
      else if (this._closedEarly.delete(d.connId)) return;
      else if (d.connId !== 0n) this._closeUnseen(d, at);
      return;
    }
    const conn = this._connection(d, at);
    conn.record.requestCount++;
    conn.record.last = at;
    // H2O's req_id, as its probes report it: the stream id on HTTP/2 and HTTP/3, a count on HTTP/1.
    conn.requests++;
    const reqId = d.streamId ?? conn.requests;
    const req = newRequestRecord(conn.record, reqId, stampOfUs(d.requestBeginAtUs) ?? at, undefined);
    req.httpVersion = d.version;
    req.streamId = d.streamId;
    req.status = d.status > 0 ? d.status : undefined;
    const responseStart = stampOfUs(d.responseStartAtUs);
    const responseEnd = stampOfUs(d.responseEndAtUs);
    req.responseStart = responseStart;
    // The dispose call is the true end (HTTP/2 and HTTP/3 included); H2O's own stamp, if later, is kept.
    req.end = responseEnd === undefined ? at : later(at, responseEnd);
    req.bodyBytesSent = Number(d.bytesSent);
    req.timings = {
      connectedAt: stampOfUs(d.connectedAtUs),
      requestBegin: req.start,
      responseStart,
      responseEnd,
    };
    req.upstream = d.proxy === undefined ? undefined : upstreamOf(d.proxy);
    this._addHeaders(req.requestHeaders, d);
    req.droppedHeaders = Math.max(0, d.headerCount - MAX_HEADERS_READ);
    if (req.status === undefined) req.incomplete = 'connection_closed';
    this._requests.push(req);
    // `Connection: close` (or HTTP/1.0): H2O closes the connection once this response is out, with no close record.
    if (d.http1Persistent === false && d.version < 0x200) this._closeEarly(d.connId, conn, at, undefined);
  }

  /** The pseudo-headers the other sources report, from the request's fields, then the headers BPF sent. */
  private _addHeaders(out: Header[], d: DisposedRequest): void {
    this._pseudo(out, ':method', d.method, d.methodLen, METHOD_CAP);
    this._pseudo(out, ':scheme', d.scheme, d.scheme.length, SCHEME_CAP);
    this._pseudo(out, ':authority', d.authority, d.authorityLen, AUTHORITY_CAP);
    this._pseudo(out, ':path', d.path, d.pathLen, PATH_CAP);
    for (const h of d.headers) out.push(this._header(h));
  }

  private _pseudo(out: Header[], name: string, value: string, len: number, cap: number): void {
    if (len === 0) return;
    if (len > cap) {
      this.stats.truncated++;
      out.push({ name, value, truncated: true });
    } else out.push({ name, value });
  }

  private _header(h: RequestHeader): Header {
    const truncated = h.nameLen > HEADER_NAME_CAP || h.valueLen > HEADER_VALUE_CAP;
    if (!truncated) return { name: h.name, value: h.value };
    this.stats.truncated++;
    return { name: h.name, value: h.value, truncated: true };
  }

  /** The open connection `d` came on, opened (at H2O's connected_at) if new; now the most recently used. */
  private _connection(d: DisposedRequest, at: Stamp): OpenConnection {
    const conns = d.version < 0x200 ? this._http1 : this._multiplexed;
    let c = conns.get(d.connId);
    if (c !== undefined) conns.delete(d.connId);
    else {
      if (this.openConnections >= this._opts.maxConnections) this._evictOldest();
      const record = newConnectionRecord(
        Number(d.connId),
        protocolOf(d.version),
        0,
        stampOfUs(d.connectedAtUs) ?? at,
        undefined,
      );
      c = { record, lastMs: 0, requests: 0 };
    }
    c.record.remote ??= d.peer;
    c.lastMs = at.timeMs;
    conns.set(d.connId, c);
    return c;
  }

  /** The least recently used of both classes. */
  private _evictOldest(): void {
    const a = this._http1.entries().next().value;
    const b = this._multiplexed.entries().next().value;
    const oldest = a === undefined || (b !== undefined && b[1].lastMs < a[1].lastMs) ? b : a;
    if (oldest === undefined) return;
    this.stats.evictedConnections++;
    this._closeEarly(oldest[0], oldest[1], undefined, 'evicted');
  }

  /** Closed before H2O's close record: remembered (bounded), so that record ends nothing else. */
  private _closeEarly(
    id: bigint,
    c: OpenConnection,
    at: Stamp | undefined,
    incomplete: ConnectionRecord['incomplete'],
  ): void {
    this._close(id, c, at, incomplete);
    if (c.record.protocol !== 'http/1') return;
    if (this._closedEarly.size >= MAX_CLOSED_EARLY)
      this._closedEarly.delete(this._closedEarly.values().next().value!);
    this._closedEarly.add(id);
  }

  /** An HTTP/1 connection that ended without a request seen (sampled in, but idle or refused). */
  private _closeUnseen(d: DisposedRequest, at: Stamp): void {
    const record = newConnectionRecord(
      Number(d.connId),
      'http/1',
      0,
      stampOfUs(d.connectedAtUs) ?? at,
      undefined,
    );
    record.remote = d.peer;
    record.end = at;
    record.last = at;
    this._closed.push(record);
  }

  private _close(
    id: bigint,
    c: OpenConnection,
    at: Stamp | undefined,
    incomplete: ConnectionRecord['incomplete'],
  ): void {
    if (c.record.protocol === 'http/1') this._http1.delete(id);
    else this._multiplexed.delete(id);
    if (at !== undefined) {
      c.record.end = at;
      c.record.last = at;
    }
    c.record.incomplete = incomplete;
    this._closed.push(c.record);
  }

  private _epoch(ktimeNs: bigint): Stamp {
    const timeMs = this._clock.epochMs(Number(ktimeNs >> 32n), Number(ktimeNs & 0xffffffffn));
    return { timeMs, timeSubNs: this._clock.lastSubNs };
  }
}

function protocolOf(version: number): Protocol {
  if (version >= 0x300) return 'http/3';
  if (version >= 0x200) return 'http/2';
  return 'http/1';
}

/** H2O's µs since the epoch → a stamp; 0 (never set) → undefined. */
function stampOfUs(us: number): Stamp | undefined {
  if (us <= 0) return undefined;
  const timeMs = Math.floor(us / 1000);
  return { timeMs, timeSubNs: (us - timeMs * 1000) * 1000 };
}

function upstreamOf(p: ProxyStats): RequestRecord['upstream'] {
  return {
    start: stampOfUs(p.startAtUs)!,
    requestBegin: stampOfUs(p.requestBeginAtUs),
    requestEnd: stampOfUs(p.requestEndAtUs),
    responseStart: stampOfUs(p.responseStartAtUs),
    responseEnd: stampOfUs(p.responseEndAtUs),
    bytesWritten: Number(p.bytesWritten),
    bytesRead: Number(p.bytesRead),
  };
}
