/**
 * The TypeScript side of native/h2o_request.h's configuration: the field paths whose offsets (from the traced
 * build's debug info) are written into the request probe's .rodata before load, the checks on them, and the
 * counters the program keeps in .bss.
 */
import { sampleThreshold } from '../usdt/bpf-config.js';
import { type FieldLayout, type Layout, LayoutError } from './layout.js';

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
  'st_h2o_req_t.headers.entries',
  'st_h2o_req_t.headers.size',
  'st_h2o_header_t.name',
  'st_h2o_header_t.value',
  'st_h2o_header_t',
  'st_h2o_req_t.input.scheme',
  'st_h2o_url_scheme_t.name',
] as const;

/**
 * Config slots after those: fields some releases lack (proxy_stats is newer than 2.2.5; HTTP/3 connections have no
 * socket), read only when the build has them.
 */
export const OPTIONAL_CONFIG_FIELDS = [
  'st_h2o_req_t.proxy_stats.bytes_written.total',
  'st_h2o_req_t.proxy_stats.bytes_read.total',
  'st_h2o_req_t.proxy_stats.timestamps.start_at',
  'st_h2o_req_t.proxy_stats.timestamps.request_begin_at',
  'st_h2o_req_t.proxy_stats.timestamps.request_end_at',
  'st_h2o_req_t.proxy_stats.timestamps.response_start_at',
  'st_h2o_req_t.proxy_stats.timestamps.response_end_at',
  'st_h2o_http1_conn_t.sock',
  'st_h2o_http2_conn_t.sock',
  'st_h2o_socket_t._peername',
  'st_h2o_socket_t._peername->len',
  'st_h2o_socket_t._peername->addr',
  'st_h2o_req_t.http1_is_persistent',
  'st_h2o_http2_stream_t.req',
  'st_h2o_http2_stream_t.stream_id',
  'st_h2o_http3_server_stream_t.req',
  'st_h2o_http3_server_stream_t.quic',
  'st_quicly_stream_t.stream_id',
] as const;

const POINTER = 8;
const TIMEVAL = 16;
const IOVEC = 16;

/**
 * The bytes the program reads of each field (a one-bit flag: 1): a build whose field differs is refused by name
 * rather than read wrong. Structs named alone (their size is the datum) are absent.
 */
export const FIELD_SIZES: Readonly<Record<string, number>> = {
  'st_h2o_req_t.conn': POINTER,
  'st_h2o_req_t.version': 4,
  'st_h2o_req_t.res.status': 4,
  'st_h2o_req_t.bytes_sent': 8,
  'st_h2o_req_t.timestamps.request_begin_at': TIMEVAL,
  'st_h2o_req_t.timestamps.response_start_at': TIMEVAL,
  'st_h2o_req_t.timestamps.response_end_at': TIMEVAL,
  'st_h2o_req_t.input.method': IOVEC,
  'st_h2o_req_t.input.authority': IOVEC,
  'st_h2o_req_t.input.path': IOVEC,
  'st_h2o_conn_t.id': 8,
  'st_h2o_conn_t.connected_at': TIMEVAL,
  'st_h2o_req_t.headers.entries': POINTER,
  'st_h2o_req_t.headers.size': 8,
  'st_h2o_header_t.name': POINTER,
  'st_h2o_header_t.value': IOVEC,
  'st_h2o_req_t.input.scheme': POINTER,
  'st_h2o_url_scheme_t.name': IOVEC,
  'st_h2o_req_t.proxy_stats.bytes_written.total': 8,
  'st_h2o_req_t.proxy_stats.bytes_read.total': 8,
  'st_h2o_req_t.proxy_stats.timestamps.start_at': TIMEVAL,
  'st_h2o_req_t.proxy_stats.timestamps.request_begin_at': TIMEVAL,
  'st_h2o_req_t.proxy_stats.timestamps.request_end_at': TIMEVAL,
  'st_h2o_req_t.proxy_stats.timestamps.response_start_at': TIMEVAL,
  'st_h2o_req_t.proxy_stats.timestamps.response_end_at': TIMEVAL,
  'st_h2o_http1_conn_t.sock': POINTER,
  'st_h2o_http2_conn_t.sock': POINTER,
  'st_h2o_socket_t._peername': POINTER,
  'st_h2o_socket_t._peername->len': 4,
  // A struct sockaddr, which H2O allocates large enough for the address's family (the program reads 28 bytes).
  'st_h2o_socket_t._peername->addr': 16,
  'st_h2o_req_t.http1_is_persistent': 1,
  'st_h2o_http2_stream_t.stream_id': 4,
  'st_h2o_http3_server_stream_t.quic': POINTER,
  'st_quicly_stream_t.stream_id': 8,
};

/** An optional field's slot when the build lacks it (H2O_REQUEST_ABSENT). */
const ABSENT = 0xffffffff;
/** The u32 after the offsets: non-zero to send only the headers named in the `header_names` map. */
export const CONFIG_HEADER_FILTER = 4 * (CONFIG_FIELDS.length + OPTIONAL_CONFIG_FIELDS.length);
/** The u64 sampling threshold, 8-aligned after the filter flag. */
export const CONFIG_SAMPLE_THRESHOLD = (CONFIG_HEADER_FILTER + 4 + 7) & ~7;
export const CONFIG_PIDNS = CONFIG_SAMPLE_THRESHOLD + 8;
export const CONFIG_SIZE = CONFIG_PIDNS + 16;

export interface RequestProbeConfig {
  /** Send only the request headers named in the `header_names` map. */
  readonly headerFilter: boolean;
  /** The share of connections kept (0–1); undefined: all. */
  readonly sampleRatio: number | undefined;
  /** The tracer's pid namespace, so records carry pids as /proc here shows them. */
  readonly pidns?: { readonly dev: bigint; readonly ino: bigint } | undefined;
}

/**
 * Fill `mem` (the .rodata initial value) from `layout`, which must hold every CONFIG_FIELDS path: a field's offset,
 * or for a path naming a struct alone its size (the stride of an array of it); the OPTIONAL_CONFIG_FIELDS it holds;
 * whether to filter headers, and which share of connections to keep.
 */
export function writeRequestConfig(mem: Buffer, layout: Layout, config: RequestProbeConfig): void {
  CONFIG_FIELDS.forEach((path, i) => {
    const field = layout[path];
    if (field === undefined) throw new LayoutError(`request probe: the layout lacks ${path}`, [path]);
    mem.writeUInt32LE(path.includes('.') ? slotValue(path, field) : field.size, 4 * i);
  });
  OPTIONAL_CONFIG_FIELDS.forEach((path, i) => {
    const field = layout[path];
    mem.writeUInt32LE(field === undefined ? ABSENT : slotValue(path, field), 4 * (CONFIG_FIELDS.length + i));
  });
  mem.writeUInt32LE(config.headerFilter ? 1 : 0, CONFIG_HEADER_FILTER);
  mem.writeBigUInt64LE(sampleThreshold(config.sampleRatio), CONFIG_SAMPLE_THRESHOLD);
  mem.writeBigUInt64LE(config.pidns?.dev ?? 0n, CONFIG_PIDNS);
  mem.writeBigUInt64LE(config.pidns?.ino ?? 0n, CONFIG_PIDNS + 8);
}

/** A field's slot: its offset, or for a one-bit flag its position in bits; its size checked against the read. */
function slotValue(path: string, field: FieldLayout): number {
  const expected = FIELD_SIZES[path];
  if (expected !== undefined && field.size !== expected)
    throw new LayoutError(
      `${path} is ${field.size} bytes in this build, where the request probe reads ${expected}: this H2O's ` +
        'layout is not one the probe knows; use --bpf usdt',
      [path],
    );
  return field.bit === undefined ? field.offset : field.offset * 8 + field.bit;
}

/** The program's counters in .bss (struct h2o_request_counters), in order. */
export const COUNTER_NAMES = [
  'hits',
  'requests',
  'lost',
  'lostHeaders',
  'sampledOut',
  'skippedHeaders',
] as const;
export const COUNTERS_SIZE = 8 * COUNTER_NAMES.length;
export type RequestProbeCounters = Record<(typeof COUNTER_NAMES)[number], number>;

export function readRequestCounters(mem: Buffer): RequestProbeCounters {
  const out = {} as RequestProbeCounters;
  COUNTER_NAMES.forEach((name, i) => (out[name] = Number(mem.readBigUInt64LE(8 * i))));
  return out;
}
