/**
 * The TypeScript side of `struct h2o_request_config` and `struct h2o_request_record` (native/h2o_request.h): the
 * field offsets written into the request probe's .rodata, and the decoding of the one record it sends per call of
 * `h2o_dispose_request`.
 */
import type { Layout } from './layout.js';

export const METHOD_CAP = 32;
export const AUTHORITY_CAP = 128;
export const PATH_CAP = 256;

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
  size: 112 + METHOD_CAP + AUTHORITY_CAP + PATH_CAP,
} as const;

/** Config slots in .rodata order (u32 each) → the layout path whose offset goes there. */
export const CONFIG_FIELDS = [
  'st_h2o_req_t.conn',
  'st_h2o_req_t.version',
  'st_h2o_req_t.res.status',
  'st_h2o_req_t.bytes_sent',
  'st_h2o_req_t.timestamps.request_begin_at',
  'st_h2o_req_t.timestamps.response_start_at',
  'st_h2o_req_t.timestamps.response_end_at',
  'st_h2o_req_t.input.method',
  'st_h2o_req_t.input.authority',
  'st_h2o_req_t.input.path',
  'st_h2o_conn_t.id',
  'st_h2o_conn_t.connected_at',
] as const;

export const CONFIG_SIZE = 4 * CONFIG_FIELDS.length;

/** Fill `mem` (the .rodata initial value) with the offsets of `layout`, which must hold every CONFIG_FIELDS path. */
export function writeRequestConfig(mem: Buffer, layout: Layout): void {
  CONFIG_FIELDS.forEach((path, i) => {
    const field = layout[path];
    if (field === undefined) throw new Error(`request probe: the layout lacks ${path}`);
    mem.writeUInt32LE(field.offset, 4 * i);
  });
}

export interface RequestRecord {
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
}

function timevalUs(buf: Buffer, off: number): number {
  return Number(buf.readBigInt64LE(off)) * 1e6 + Number(buf.readBigInt64LE(off + 8));
}

function text(buf: Buffer, off: number, len: number, cap: number): string {
  return buf.toString('latin1', off, off + Math.min(len, cap));
}

/** The record at `buf[offset…]` (RECORD.size bytes). */
export function decodeRequestRecord(buf: Buffer, offset = 0): RequestRecord {
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
  };
}
