// The request probe's record and config, decoded and written from plain bytes, and checked against
// native/h2o_request.h as gcc lays it out.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeRequestRecord,
  HEADER_RECORD,
  HEADER_VALUE_CAP,
  PATH_CAP,
  RECORD,
  RequestAssembler,
} from '../../../src/sources/request/request-record.js';
import {
  CONFIG_FIELDS,
  CONFIG_HEADER_FILTER,
  CONFIG_PIDNS,
  CONFIG_SAMPLE_THRESHOLD,
  CONFIG_SIZE,
  FIELD_SIZES,
  OPTIONAL_CONFIG_FIELDS,
  writeRequestConfig,
} from '../../../src/sources/request/request-config.js';
import { LayoutError } from '../../../src/sources/request/layout.js';
import { repoRoot } from '../../../harness/cli.js';

function timeval(buf: Buffer, off: number, sec: number, usec: number): void {
  buf.writeBigInt64LE(BigInt(sec), off);
  buf.writeBigInt64LE(BigInt(usec), off + 8);
}

test('decodeRequestRecord reads every field, strings cut at their length or cap', () => {
  const at = 24;
  const buf = Buffer.alloc(at + RECORD.size, 0xee);
  const o = at;
  buf.writeBigUInt64LE(123456789012n, o + RECORD.ktimeNs);
  buf.writeUInt32LE(4242, o + RECORD.pid);
  buf.writeInt32LE(0x200, o + RECORD.version);
  buf.writeBigUInt64LE(7n, o + RECORD.connId);
  timeval(buf, o + RECORD.connectedAt, 1_700_000_000, 1);
  timeval(buf, o + RECORD.requestBeginAt, 1_700_000_001, 250_000);
  timeval(buf, o + RECORD.responseStartAt, 1_700_000_001, 250_100);
  timeval(buf, o + RECORD.responseEndAt, 1_700_000_001, 250_300);
  buf.writeBigUInt64LE(1234n, o + RECORD.bytesSent);
  buf.writeInt32LE(404, o + RECORD.status);
  buf.writeUInt32LE(3, o + RECORD.methodLen);
  buf.writeUInt32LE(9, o + RECORD.authorityLen);
  buf.writeUInt32LE(1000, o + RECORD.pathLen);
  buf.write('GET', o + RECORD.method, 'latin1');
  buf.write('localhost', o + RECORD.authority, 'latin1');
  buf.write('/'.padEnd(PATH_CAP, 'x'), o + RECORD.path, 'latin1');
  buf.writeBigUInt64LE(0x7f00deadbeefn, o + RECORD.req);
  buf.writeBigUInt64LE(70n, o + RECORD.headerCount);
  buf.writeUInt32LE(5, o + RECORD.schemeLen);
  buf.write('https', o + RECORD.scheme, 'latin1');
  // sockaddr_in6 [2001:db8::1]:8443
  buf.fill(0, o + RECORD.peer, o + RECORD.peer + 28);
  buf.writeUInt16LE(10, o + RECORD.peer);
  buf.writeUInt16BE(8443, o + RECORD.peer + 2);
  buf.writeUInt16BE(0x2001, o + RECORD.peer + 8);
  buf.writeUInt16BE(0xdb8, o + RECORD.peer + 10);
  buf.writeUInt16BE(1, o + RECORD.peer + 22);
  buf.writeUInt32LE(28, o + RECORD.peerLen);
  buf.writeBigUInt64LE(300n, o + RECORD.proxyBytesWritten);
  buf.writeBigUInt64LE(5000n, o + RECORD.proxyBytesRead);
  [0, 10, 20, 30, 40].forEach((us, i) =>
    timeval(buf, o + RECORD.proxyTimings + 16 * i, 1_700_000_001, 250_000 + us),
  );

  const r = decodeRequestRecord(buf, at);
  assert.deepEqual(r, {
    ktimeNs: 123456789012n,
    pid: 4242,
    version: 0x200,
    connId: 7n,
    connectedAtUs: 1_700_000_000_000_001,
    requestBeginAtUs: 1_700_000_001_250_000,
    responseStartAtUs: 1_700_000_001_250_100,
    responseEndAtUs: 1_700_000_001_250_300,
    bytesSent: 1234n,
    status: 404,
    method: 'GET',
    authority: 'localhost',
    path: '/'.padEnd(PATH_CAP, 'x'),
    methodLen: 3,
    authorityLen: 9,
    pathLen: 1000,
    req: 0x7f00deadbeefn,
    headerCount: 70,
    headers: [],
    scheme: 'https',
    peer: '[2001:db8::1]:8443',
    proxy: {
      startAtUs: 1_700_000_001_250_000,
      requestBeginAtUs: 1_700_000_001_250_010,
      requestEndAtUs: 1_700_000_001_250_020,
      responseStartAtUs: 1_700_000_001_250_030,
      responseEndAtUs: 1_700_000_001_250_040,
      bytesWritten: 300n,
      bytesRead: 5000n,
    },
    http1Persistent: undefined,
    streamId: undefined,
  });
});

test('peer: nothing when H2O has not cached one (length 0) or the family is not IP', () => {
  const buf = Buffer.alloc(RECORD.size);
  buf.writeUInt16LE(2, RECORD.peer);
  buf.writeUInt16BE(54321, RECORD.peer + 2);
  buf.set([127, 0, 0, 1], RECORD.peer + 4);
  assert.equal(decodeRequestRecord(buf).peer, undefined, 'length 0');
  buf.writeUInt32LE(16, RECORD.peerLen);
  assert.equal(decodeRequestRecord(buf).peer, '127.0.0.1:54321');
  buf.writeUInt16LE(1, RECORD.peer);
  assert.equal(decodeRequestRecord(buf).peer, undefined, 'AF_UNIX');
});

test('HTTP/1 persistence: 1 kept open, 0 closing, anything else unknown (the build lacks the flag)', () => {
  const buf = Buffer.alloc(RECORD.size);
  assert.equal(decodeRequestRecord(buf).http1Persistent, false);
  buf[RECORD.http1Persistent] = 1;
  assert.equal(decodeRequestRecord(buf).http1Persistent, true);
  buf[RECORD.http1Persistent] = 0xff;
  assert.equal(decodeRequestRecord(buf).http1Persistent, undefined);
});

test('the stream id: as H2O numbers streams, and unknown (-1) as undefined', () => {
  const buf = Buffer.alloc(RECORD.size);
  buf.writeBigInt64LE(7n, RECORD.streamId);
  assert.equal(decodeRequestRecord(buf).streamId, 7);
  buf.writeBigInt64LE(-1n, RECORD.streamId);
  assert.equal(decodeRequestRecord(buf).streamId, undefined);
});

/** A request record (headers: none in the bytes) keyed by pid, req and dispose time. */
function requestBytes(pid: number, req: bigint, ktimeNs: bigint, path: string): Buffer {
  const buf = Buffer.alloc(RECORD.size);
  buf.writeBigUInt64LE(ktimeNs, RECORD.ktimeNs);
  buf.writeUInt32LE(pid, RECORD.pid);
  buf.writeBigUInt64LE(req, RECORD.req);
  buf.writeUInt32LE(path.length, RECORD.pathLen);
  buf.write(path, RECORD.path, 'latin1');
  return buf;
}

function headerBytes(
  pid: number,
  req: bigint,
  ktimeNs: bigint,
  name: string,
  value: string,
  valueLen = value.length,
): Buffer {
  const buf = Buffer.alloc(HEADER_RECORD.size, 0xee);
  buf.writeBigUInt64LE(ktimeNs, HEADER_RECORD.ktimeNs);
  buf.writeBigUInt64LE(req, HEADER_RECORD.req);
  buf.writeUInt32LE(pid, HEADER_RECORD.pid);
  buf.writeUInt32LE(name.length, HEADER_RECORD.nameLen);
  buf.writeUInt32LE(valueLen, HEADER_RECORD.valueLen);
  buf.write(name, HEADER_RECORD.name, 'latin1');
  buf.write(value, HEADER_RECORD.value, 'latin1');
  return buf;
}

test('RequestAssembler gives each request the headers sent before it, matched by key across interleaving', () => {
  const a = new RequestAssembler();
  const push = (b: Buffer): ReturnType<RequestAssembler['push']> => a.push(b, 0, b.length);
  const long = 'v'.repeat(HEADER_VALUE_CAP);
  // Two CPUs: request 1 (req 0x10) and request 2 (req 0x20) interleave their header records.
  assert.equal(push(headerBytes(7, 0x10n, 100n, 'user-agent', 'curl')), undefined);
  assert.equal(push(headerBytes(7, 0x20n, 101n, 'traceparent', '00-ab')), undefined);
  assert.equal(push(headerBytes(7, 0x10n, 100n, 'x-long', long, 5000)), undefined);
  const first = push(requestBytes(7, 0x10n, 100n, '/one'));
  assert.equal(first?.path, '/one');
  assert.deepEqual(first?.headers, [
    { name: 'user-agent', value: 'curl', nameLen: 10, valueLen: 4 },
    { name: 'x-long', value: long, nameLen: 6, valueLen: 5000 },
  ]);
  assert.equal(a.pending, 1);
  const second = push(requestBytes(7, 0x20n, 101n, '/two'));
  assert.deepEqual(second?.headers, [{ name: 'traceparent', value: '00-ab', nameLen: 11, valueLen: 5 }]);
  assert.equal(a.pending, 0);
});

test('RequestAssembler drops headers orphaned by a lost request record, never giving them to a later request', () => {
  const a = new RequestAssembler();
  const push = (b: Buffer): ReturnType<RequestAssembler['push']> => a.push(b, 0, b.length);
  push(headerBytes(7, 0x10n, 100n, 'authorization', 'old'));
  // The request record of dispose time 100 was lost; H2O reuses the same h2o_req_t memory.
  push(headerBytes(7, 0x10n, 200n, 'user-agent', 'new'));
  const r = push(requestBytes(7, 0x10n, 200n, '/again'));
  assert.deepEqual(
    r?.headers.map((h) => h.name),
    ['user-agent'],
  );
  assert.equal(a.pending, 0);
  assert.equal(a.push(Buffer.alloc(12), 0, 12), undefined, 'a record of unknown size is ignored');
});

test('writeRequestConfig writes each offset in its slot, a flag as its bit, and refuses missing or resized fields', () => {
  const size = (p: string): number => FIELD_SIZES[p] ?? 40;
  const layout = Object.fromEntries(CONFIG_FIELDS.map((p, i) => [p, { offset: 1000 + i, size: size(p) }]));
  const mem = Buffer.alloc(CONFIG_SIZE);
  writeRequestConfig(mem, layout, { headerFilter: false, sampleRatio: undefined });
  // Field paths give their offset; the struct named alone gives its size (the stride of req->headers.entries).
  CONFIG_FIELDS.forEach((p, i) => assert.equal(mem.readUInt32LE(4 * i), p.includes('.') ? 1000 + i : 40, p));
  // Optional fields the build lacks are marked absent, so the program skips them.
  OPTIONAL_CONFIG_FIELDS.forEach((p, i) =>
    assert.equal(mem.readUInt32LE(4 * (CONFIG_FIELDS.length + i)), 0xffffffff, p),
  );
  assert.equal(mem.readUInt32LE(CONFIG_HEADER_FILTER), 0, 'no header filter');
  assert.equal(mem.readBigUInt64LE(CONFIG_SAMPLE_THRESHOLD), 1n << 32n, 'every connection kept');
  const more = {
    ...layout,
    'st_h2o_req_t.proxy_stats.timestamps.start_at': { offset: 408, size: 16 },
    'st_h2o_req_t.http1_is_persistent': { offset: 760, size: 1, bit: 3 },
  };
  writeRequestConfig(mem, more, { headerFilter: true, sampleRatio: 0.25 });
  assert.equal(mem.readUInt32LE(CONFIG_HEADER_FILTER), 1, 'header filter on');
  assert.equal(mem.readBigUInt64LE(CONFIG_SAMPLE_THRESHOLD), 1n << 30n, 'a quarter of connections');
  const slot = (p: (typeof OPTIONAL_CONFIG_FIELDS)[number]): number =>
    mem.readUInt32LE(4 * (CONFIG_FIELDS.length + OPTIONAL_CONFIG_FIELDS.indexOf(p)));
  assert.equal(slot('st_h2o_req_t.proxy_stats.timestamps.start_at'), 408);
  assert.equal(slot('st_h2o_req_t.http1_is_persistent'), 760 * 8 + 3, 'a one-bit flag: its position in bits');
  const options = { headerFilter: false, sampleRatio: undefined };
  const partial = Object.fromEntries(Object.entries(layout).filter(([p]) => p !== 'st_h2o_req_t.version'));
  assert.throws(() => writeRequestConfig(mem, partial, options), /lacks st_h2o_req_t\.version/);
  const resized = { ...layout, 'st_h2o_req_t.version': { offset: 200, size: 8 } };
  assert.throws(
    () => writeRequestConfig(mem, resized, options),
    (err: unknown) =>
      err instanceof LayoutError &&
      /st_h2o_req_t\.version is 8 bytes in this build, where the request probe reads 4/.test(err.message),
  );
});

const PROGRAM = `#include <stdio.h>
#include <stddef.h>
#include "h2o_request.h"
#define R(f) printf("\\"%s\\":%zu,", #f, offsetof(struct h2o_request_record, f));
#define H(f) printf("\\"header.%s\\":%zu,", #f, offsetof(struct h2o_request_header_record, f));
#define C(f) printf("\\"config.%s\\":%zu,", #f, offsetof(struct h2o_request_config, f));
int main(void) {
  printf("{");
  R(ktime_ns) R(pid) R(version) R(conn_id) R(connected_at) R(request_begin_at) R(response_start_at)
  R(response_end_at) R(bytes_sent) R(status) R(method_len) R(authority_len) R(path_len) R(method) R(authority) R(path)
  R(req) R(header_count) R(scheme_len) R(scheme) R(peer_len) R(peer) R(http1_persistent) R(proxy_bytes_written) R(proxy_bytes_read)
  R(proxy_timings) R(stream_id)
  H(ktime_ns) H(req) H(pid) H(name_len) H(value_len) H(index) H(name) H(value)
  C(req_conn) C(req_version) C(req_status) C(req_bytes_sent) C(req_request_begin_at) C(req_response_start_at)
  C(req_response_end_at) C(req_method) C(req_authority) C(req_path) C(conn_id) C(conn_connected_at)
  C(req_headers_entries) C(req_headers_size) C(header_name) C(header_value) C(header_size) C(req_scheme)
  C(scheme_name) C(req_proxy_bytes_written) C(req_proxy_bytes_read) C(req_proxy_timestamps[0])
  C(req_proxy_timestamps[1]) C(req_proxy_timestamps[2]) C(req_proxy_timestamps[3]) C(req_proxy_timestamps[4])
  C(http1_conn_sock) C(http2_conn_sock) C(socket_peername) C(peername_len) C(peername_addr)
  C(req_http1_is_persistent_bit) C(h2_stream_req) C(h2_stream_id) C(h3_stream_req) C(h3_stream_quic)
  C(quicly_stream_id) C(header_filter) C(sample_threshold) C(pidns_dev)
  printf("\\"size\\":%zu,\\"config_size\\":%zu,", sizeof(struct h2o_request_record), sizeof(struct h2o_request_config));
  printf("\\"header_size\\":%zu}", sizeof(struct h2o_request_header_record));
  return 0;
}
`;

test('TypeScript offsets match native/h2o_request.h as compiled by gcc', () => {
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-request-layout-'));
  writeFileSync(join(dir, 'layout.c'), PROGRAM);
  execFileSync('gcc', ['-I', join(repoRoot, 'native'), '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
  const c = JSON.parse(execFileSync(join(dir, 'layout')).toString()) as Record<string, number>;
  rmSync(dir, { recursive: true });
  assert.deepEqual(
    [
      c.ktime_ns,
      c.pid,
      c.version,
      c.conn_id,
      c.connected_at,
      c.request_begin_at,
      c.response_start_at,
      c.response_end_at,
      c.bytes_sent,
      c.status,
      c.method_len,
      c.authority_len,
      c.path_len,
      c.method,
      c.authority,
      c.path,
      c.req,
      c.header_count,
      c.scheme_len,
      c.scheme,
      c.peer_len,
      c.peer,
      c.http1_persistent,
      c.proxy_bytes_written,
      c.proxy_bytes_read,
      c.proxy_timings,
      c.stream_id,
      c.size,
    ],
    [
      RECORD.ktimeNs,
      RECORD.pid,
      RECORD.version,
      RECORD.connId,
      RECORD.connectedAt,
      RECORD.requestBeginAt,
      RECORD.responseStartAt,
      RECORD.responseEndAt,
      RECORD.bytesSent,
      RECORD.status,
      RECORD.methodLen,
      RECORD.authorityLen,
      RECORD.pathLen,
      RECORD.method,
      RECORD.authority,
      RECORD.path,
      RECORD.req,
      RECORD.headerCount,
      RECORD.schemeLen,
      RECORD.scheme,
      RECORD.peerLen,
      RECORD.peer,
      RECORD.http1Persistent,
      RECORD.proxyBytesWritten,
      RECORD.proxyBytesRead,
      RECORD.proxyTimings,
      RECORD.streamId,
      RECORD.size,
    ],
  );
  const headerFields = ['ktime_ns', 'req', 'pid', 'name_len', 'value_len', 'index', 'name', 'value'];
  assert.deepEqual(
    [...headerFields.map((f) => c[`header.${f}`]), c.header_size],
    [
      HEADER_RECORD.ktimeNs,
      HEADER_RECORD.req,
      HEADER_RECORD.pid,
      HEADER_RECORD.nameLen,
      HEADER_RECORD.valueLen,
      HEADER_RECORD.index,
      HEADER_RECORD.name,
      HEADER_RECORD.value,
      HEADER_RECORD.size,
    ],
  );
  // The config slots are u32s in CONFIG_FIELDS order.
  const slots = [
    'req_conn',
    'req_version',
    'req_status',
    'req_bytes_sent',
    'req_request_begin_at',
    'req_response_start_at',
    'req_response_end_at',
    'req_method',
    'req_authority',
    'req_path',
    'conn_id',
    'conn_connected_at',
    'req_headers_entries',
    'req_headers_size',
    'header_name',
    'header_value',
    'header_size',
    'req_scheme',
    'scheme_name',
    'req_proxy_bytes_written',
    'req_proxy_bytes_read',
    'req_proxy_timestamps[0]',
    'req_proxy_timestamps[1]',
    'req_proxy_timestamps[2]',
    'req_proxy_timestamps[3]',
    'req_proxy_timestamps[4]',
    'http1_conn_sock',
    'http2_conn_sock',
    'socket_peername',
    'peername_len',
    'peername_addr',
    'req_http1_is_persistent_bit',
    'h2_stream_req',
    'h2_stream_id',
    'h3_stream_req',
    'h3_stream_quic',
    'quicly_stream_id',
  ];
  assert.equal(slots.length, CONFIG_FIELDS.length + OPTIONAL_CONFIG_FIELDS.length);
  slots.forEach((s, i) => assert.equal(c[`config.${s}`], 4 * i, s));
  assert.equal(c['config.header_filter'], CONFIG_HEADER_FILTER);
  assert.equal(c['config.sample_threshold'], CONFIG_SAMPLE_THRESHOLD);
  assert.equal(c['config.pidns_dev'], CONFIG_PIDNS);
  assert.equal(c.config_size, CONFIG_SIZE);
});
