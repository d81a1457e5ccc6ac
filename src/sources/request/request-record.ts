/**
 * The TypeScript side of native/h2o_request.h's records (its configuration: request-config.ts): the decoding of
 * what the request probe sends per call of `h2o_dispose_request` (one record per request header, then the
 * request's), and their assembly into one request with its headers.
 */
import { formatSockaddr } from '../bpf/sockaddr.js';

export const METHOD_CAP = 32;
export const AUTHORITY_CAP = 128;
export const PATH_CAP = 256;
export const HEADER_NAME_CAP = 64;
export const HEADER_VALUE_CAP = 256;
export const SCHEME_CAP = 8;
export const PEER_CAP = 28;

/** Byte offsets in the record. */
export const RECORD = {
  ktimeNs: 0,
  pid: 8,
  version: 12,
  connId: 16,
  connectedAt: 24,
  requestBeginAt: 40,
  responseStartAt: 56,
  responseEndAt: 72,
  bytesSent: 88,
  status: 96,
  methodLen: 100,
  authorityLen: 104,
  pathLen: 108,
  method: 112,
  authority: 112 + METHOD_CAP,
  path: 112 + METHOD_CAP + AUTHORITY_CAP,
  req: 528,
  headerCount: 536,
  schemeLen: 544,
  scheme: 548,
  peerLen: 556,
  peer: 560,
  http1Persistent: 588,
  proxyBytesWritten: 592,
  proxyBytesRead: 600,
  /** Five timevals: start_at, request_begin_at, request_end_at, response_start_at, response_end_at. */
  proxyTimings: 608,
  streamId: 688,
  size: 696,
} as const;

/** Byte offsets in a header record. */
export const HEADER_RECORD = {
  ktimeNs: 0,
  pid: 8,
  nameLen: 12,
  req: 16,
  valueLen: 24,
  index: 28,
  name: 32,
  value: 32 + HEADER_NAME_CAP,
  size: 32 + HEADER_NAME_CAP + HEADER_VALUE_CAP,
} as const;

/** A request header as H2O holds it (names lowercase); lengths are true ones, the strings capped. */
export interface RequestHeader {
  readonly name: string;
  readonly value: string;
  readonly nameLen: number;
  readonly valueLen: number;
}

const NO_HEADERS: readonly RequestHeader[] = Object.freeze([]);

export interface DisposedRequest {
  /** CLOCK_MONOTONIC at dispose, ns. */
  readonly ktimeNs: bigint;
  readonly pid: number;
  /** 0x101, 0x200, 0x300; 0 for the call that ends an HTTP/1 connection (not a request). */
  readonly version: number;
  readonly connId: bigint;
  /** H2O's timestamps in µs since the epoch (0: unset). */
  readonly connectedAtUs: number;
  readonly requestBeginAtUs: number;
  readonly responseStartAtUs: number;
  readonly responseEndAtUs: number;
  readonly bytesSent: bigint;
  readonly status: number;
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  /** True lengths, which exceed the strings' when the probe capped them. */
  readonly methodLen: number;
  readonly authorityLen: number;
  readonly pathLen: number;
  /** The `h2o_req_t *` disposed: with pid and ktimeNs, the key of its header records. */
  readonly req: bigint;
  /** H2O's count of request headers; `headers` holds at most the probe's maximum (64) of them. */
  readonly headerCount: number;
  readonly headers: readonly RequestHeader[];
  /** `http`, `https` (as H2O received the request); empty when unknown. */
  readonly scheme: string;
  /** The client's `address:port` as H2O cached it on the socket (HTTP/1 and HTTP/2); undefined when not cached. */
  readonly peer: string | undefined;
  /** proxy_stats, when the request was reverse-proxied and the build has it. */
  readonly proxy: ProxyStats | undefined;
  /** HTTP/1: H2O keeps the connection open after this response; undefined when the build does not say. */
  readonly http1Persistent: boolean | undefined;
  /** HTTP/2 and HTTP/3: the request's stream id (H2O's req_id); undefined when unknown. */
  readonly streamId: number | undefined;
}

/** What H2O's proxy handler kept of a request's upstream exchange (µs since the epoch; 0: not reached). */
export interface ProxyStats {
  readonly startAtUs: number;
  readonly requestBeginAtUs: number;
  readonly requestEndAtUs: number;
  readonly responseStartAtUs: number;
  readonly responseEndAtUs: number;
  /** Above TLS, headers and body. */
  readonly bytesWritten: bigint;
  readonly bytesRead: bigint;
}

function timevalUs(buf: Buffer, off: number): number {
  return Number(buf.readBigInt64LE(off)) * 1e6 + Number(buf.readBigInt64LE(off + 8));
}

function text(buf: Buffer, off: number, len: number, cap: number): string {
  return buf.toString('latin1', off, off + Math.min(len, cap));
}

function streamIdOf(id: bigint): number | undefined {
  return id < 0n || id > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(id);
}

function persistentOf(byte: number | undefined): boolean | undefined {
  return byte === 0 ? false : byte === 1 ? true : undefined;
}

function peerOf(buf: Buffer, o: number): string | undefined {
  const len = buf.readUInt32LE(o + RECORD.peerLen);
  if (len === 0) return undefined;
  const peer = formatSockaddr(buf.subarray(o + RECORD.peer, o + RECORD.peer + Math.min(len, PEER_CAP)));
  return peer === '' || peer.startsWith('family-') ? undefined : peer;
}

function decodeProxy(buf: Buffer, o: number): ProxyStats | undefined {
  const t = o + RECORD.proxyTimings;
  const startAtUs = timevalUs(buf, t);
  if (startAtUs === 0) return undefined;
  return {
    startAtUs,
    requestBeginAtUs: timevalUs(buf, t + 16),
    requestEndAtUs: timevalUs(buf, t + 32),
    responseStartAtUs: timevalUs(buf, t + 48),
    responseEndAtUs: timevalUs(buf, t + 64),
    bytesWritten: buf.readBigUInt64LE(o + RECORD.proxyBytesWritten),
    bytesRead: buf.readBigUInt64LE(o + RECORD.proxyBytesRead),
  };
}

/** The request record at `buf[offset…]` (RECORD.size bytes), with the headers assembled for it. */
export function decodeRequestRecord(
  buf: Buffer,
  offset = 0,
  headers: readonly RequestHeader[] = NO_HEADERS,
): DisposedRequest {
  const o = offset;
  const methodLen = buf.readUInt32LE(o + RECORD.methodLen);
  const authorityLen = buf.readUInt32LE(o + RECORD.authorityLen);
  const pathLen = buf.readUInt32LE(o + RECORD.pathLen);
  return {
    ktimeNs: buf.readBigUInt64LE(o + RECORD.ktimeNs),
    pid: buf.readUInt32LE(o + RECORD.pid),
    version: buf.readInt32LE(o + RECORD.version),
    connId: buf.readBigUInt64LE(o + RECORD.connId),
    connectedAtUs: timevalUs(buf, o + RECORD.connectedAt),
    requestBeginAtUs: timevalUs(buf, o + RECORD.requestBeginAt),
    responseStartAtUs: timevalUs(buf, o + RECORD.responseStartAt),
    responseEndAtUs: timevalUs(buf, o + RECORD.responseEndAt),
    bytesSent: buf.readBigUInt64LE(o + RECORD.bytesSent),
    status: buf.readInt32LE(o + RECORD.status),
    method: text(buf, o + RECORD.method, methodLen, METHOD_CAP),
    authority: text(buf, o + RECORD.authority, authorityLen, AUTHORITY_CAP),
    path: text(buf, o + RECORD.path, pathLen, PATH_CAP),
    methodLen,
    authorityLen,
    pathLen,
    req: buf.readBigUInt64LE(o + RECORD.req),
    headerCount: Number(buf.readBigUInt64LE(o + RECORD.headerCount)),
    headers,
    scheme: text(buf, o + RECORD.scheme, buf.readUInt32LE(o + RECORD.schemeLen), SCHEME_CAP),
    peer: peerOf(buf, o),
    proxy: decodeProxy(buf, o),
    http1Persistent: persistentOf(buf[o + RECORD.http1Persistent]),
    streamId: streamIdOf(buf.readBigInt64LE(o + RECORD.streamId)),
  };
}

interface PendingHeader {
  readonly ktimeNs: bigint;
  readonly req: bigint;
  readonly pid: number;
  readonly header: RequestHeader;
}

/** At most this many headers wait for their request; past it the oldest go (their request record was lost). */
const MAX_PENDING = 4096;

/**
 * Joins each request record with the header records sent before it. Records of requests disposed at once on other
 * CPUs may interleave, so headers are matched by key (pid, `h2o_req_t *`, dispose time), never by position.
 */
export class RequestAssembler {
  private _pending: PendingHeader[] = [];

  /** Records waiting for their request: non-zero only between polls or after a lost request record. */
  get pending(): number {
    return this._pending.length;
  }

  /** Take one ring record (`length` bytes at `buf[offset…]`); returns the request when it completes one. */
  push(buf: Buffer, offset: number, length: number): DisposedRequest | undefined {
    if (length === HEADER_RECORD.size) {
      this._addHeader(buf, offset);
      return undefined;
    }
    if (length !== RECORD.size) return undefined;
    if (this._pending.length === 0) return decodeRequestRecord(buf, offset);
    const ktimeNs = buf.readBigUInt64LE(offset + RECORD.ktimeNs);
    const req = buf.readBigUInt64LE(offset + RECORD.req);
    const pid = buf.readUInt32LE(offset + RECORD.pid);
    const headers: RequestHeader[] = [];
    // Headers of the same h2o_req_t but another dispose time are orphans of a lost record: drop them too.
    this._pending = this._pending.filter((p) => {
      if (p.req !== req || p.pid !== pid) return true;
      if (p.ktimeNs === ktimeNs) headers.push(p.header);
      return false;
    });
    return decodeRequestRecord(buf, offset, headers);
  }

  private _addHeader(buf: Buffer, o: number): void {
    if (this._pending.length >= MAX_PENDING) this._pending.splice(0, MAX_PENDING / 2);
    const nameLen = buf.readUInt32LE(o + HEADER_RECORD.nameLen);
    const valueLen = buf.readUInt32LE(o + HEADER_RECORD.valueLen);
    this._pending.push({
      ktimeNs: buf.readBigUInt64LE(o + HEADER_RECORD.ktimeNs),
      req: buf.readBigUInt64LE(o + HEADER_RECORD.req),
      pid: buf.readUInt32LE(o + HEADER_RECORD.pid),
      header: {
        name: text(buf, o + HEADER_RECORD.name, nameLen, HEADER_NAME_CAP),
        value: text(buf, o + HEADER_RECORD.value, valueLen, HEADER_VALUE_CAP),
        nameLen,
        valueLen,
      },
    });
  }
}
