// The bytes the request probe sends (native/h2o_request.h), built from plain values, for tests of what reads them.
import { HEADER_RECORD, RECORD } from '../src/sources/request/request-record.js';

export interface DisposedFields {
  ktimeNs?: bigint;
  pid?: number;
  version?: number;
  connId?: bigint;
  /** µs since the epoch; 0: unset. */
  connectedAtUs?: number;
  requestBeginAtUs?: number;
  responseStartAtUs?: number;
  responseEndAtUs?: number;
  bytesSent?: bigint;
  status?: number;
  method?: string;
  authority?: string;
  path?: string;
  scheme?: string;
  /** True lengths when the strings stand for longer ones the probe cut. */
  pathLen?: number;
  req?: bigint;
  headerCount?: number;
  /** IPv4 `a.b.c.d:port`. */
  peer?: string;
  /** Undefined: the build does not say. */
  http1Persistent?: boolean;
  /** HTTP/2 and HTTP/3: the request's stream; undefined: unknown. */
  streamId?: number;
  /** start, request begin, request end, response start, response end (µs); bytes written, read. */
  proxy?: { timingsUs: readonly number[]; written: bigint; read: bigint };
}

function timeval(buf: Buffer, off: number, us: number): void {
  buf.writeBigInt64LE(BigInt(Math.floor(us / 1e6)), off);
  buf.writeBigInt64LE(BigInt(us % 1e6), off + 8);
}

function str(buf: Buffer, lenAt: number, at: number, s: string, len = s.length): void {
  buf.writeUInt32LE(len, lenAt);
  buf.write(s, at, 'latin1');
}

export function requestRecordBytes(f: DisposedFields): Buffer {
  const b = Buffer.alloc(RECORD.size);
  b.writeBigUInt64LE(f.ktimeNs ?? 1_000_000_000n, RECORD.ktimeNs);
  b.writeUInt32LE(f.pid ?? 100, RECORD.pid);
  b.writeInt32LE(f.version ?? 0x101, RECORD.version);
  b.writeBigUInt64LE(f.connId ?? 1n, RECORD.connId);
  timeval(b, RECORD.connectedAt, f.connectedAtUs ?? 0);
  timeval(b, RECORD.requestBeginAt, f.requestBeginAtUs ?? 0);
  timeval(b, RECORD.responseStartAt, f.responseStartAtUs ?? 0);
  timeval(b, RECORD.responseEndAt, f.responseEndAtUs ?? 0);
  b.writeBigUInt64LE(f.bytesSent ?? 0n, RECORD.bytesSent);
  b.writeInt32LE(f.status ?? 200, RECORD.status);
  str(b, RECORD.methodLen, RECORD.method, f.method ?? 'GET');
  str(b, RECORD.authorityLen, RECORD.authority, f.authority ?? 'example.com');
  str(b, RECORD.pathLen, RECORD.path, f.path ?? '/', f.pathLen);
  str(b, RECORD.schemeLen, RECORD.scheme, f.scheme ?? 'http');
  b.writeBigUInt64LE(f.req ?? 0x1000n, RECORD.req);
  b.writeBigUInt64LE(BigInt(f.headerCount ?? 0), RECORD.headerCount);
  if (f.peer !== undefined) {
    const [ip, port] = f.peer.split(':');
    b.writeUInt16LE(2, RECORD.peer);
    b.writeUInt16BE(Number(port), RECORD.peer + 2);
    b.set(ip!.split('.').map(Number), RECORD.peer + 4);
    b.writeUInt32LE(16, RECORD.peerLen);
  }
  b.writeBigInt64LE(BigInt(f.streamId ?? -1), RECORD.streamId);
  b[RECORD.http1Persistent] = f.http1Persistent === undefined ? 0xff : f.http1Persistent ? 1 : 0;
  if (f.proxy !== undefined) {
    f.proxy.timingsUs.forEach((us, i) => timeval(b, RECORD.proxyTimings + 16 * i, us));
    b.writeBigUInt64LE(f.proxy.written, RECORD.proxyBytesWritten);
    b.writeBigUInt64LE(f.proxy.read, RECORD.proxyBytesRead);
  }
  return b;
}

/** A header record keyed to the request record with the same pid, req and ktimeNs. */
export function headerRecordBytes(
  key: { pid?: number; req?: bigint; ktimeNs?: bigint },
  name: string,
  value: string,
  valueLen = value.length,
): Buffer {
  const b = Buffer.alloc(HEADER_RECORD.size);
  b.writeBigUInt64LE(key.ktimeNs ?? 1_000_000_000n, HEADER_RECORD.ktimeNs);
  b.writeUInt32LE(key.pid ?? 100, HEADER_RECORD.pid);
  b.writeBigUInt64LE(key.req ?? 0x1000n, HEADER_RECORD.req);
  str(b, HEADER_RECORD.nameLen, HEADER_RECORD.name, name);
  b.writeUInt32LE(valueLen, HEADER_RECORD.valueLen);
  b.write(value, HEADER_RECORD.value, 'latin1');
  return b;
}
