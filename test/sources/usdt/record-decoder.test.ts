// BPF records decoded on plain bytes: the event's epoch time in ms and sub-ms ns from the kernel's monotonic
// clock, fields in the socket's shape, and broken records counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProbeEvent } from '../../../src/events/types.js';
import { USDT_PROBES } from '../../../src/events/usdt-probes.js';
import { KtimeClock } from '../../../src/sources/bpf/clock.js';
import { RECORD, UsdtRecordDecoder } from '../../../src/sources/usdt/record-decoder.js';

const RECEIVE_REQUEST = USDT_PROBES.findIndex((p) => p.name === 'receive_request');

/** A `receive_request(conn_id, req_id, http_version)` record written at kernel time `tsNs`. */
function receiveRequest(tsNs: bigint, connId: number, reqId: number, httpVersion: number): Buffer {
  const b = Buffer.alloc(RECORD.args + 3 * 8);
  b.writeBigUInt64LE(tsNs, RECORD.tsNs);
  b.writeUInt32LE(4242, RECORD.pid);
  b.writeUInt32LE(4243, RECORD.tid);
  b.writeUInt16LE(RECEIVE_REQUEST, RECORD.probe);
  b[RECORD.nargs] = 3;
  b.writeBigUInt64LE(BigInt(connId), RECORD.args);
  b.writeBigUInt64LE(BigInt(reqId), RECORD.args + 8);
  b.writeBigInt64LE(BigInt(httpVersion), RECORD.args + 16);
  return b;
}

function decode(decoder: UsdtRecordDecoder, ...records: Buffer[]): ProbeEvent[] {
  const out: ProbeEvent[] = [];
  for (const r of records) decoder.decode(r, 0, r.length, out);
  return out;
}

test('a record becomes the socket-shaped event, its time the kernel clock plus the epoch offset', () => {
  // Epoch = monotonic + 1_700_000_000_000 ms + 1 ns.
  const clock = new KtimeClock(1_700_000_000_000_000_001n + 7n, 7n);
  assert.equal(clock.epochMs(0, 0), 1_700_000_000_000);
  assert.equal(clock.lastSubNs, 1);
  const [ev] = decode(new UsdtRecordDecoder(clock), receiveRequest(5_000_123_456n, 12, 3, 0x101));
  assert.deepEqual(ev, {
    module: 'h2o',
    type: 'receive_request',
    tid: 4243,
    timeMs: 1_700_000_005_000,
    timeSubNs: 123_457,
    fields: { conn_id: 12, req_id: 3, http_version: 0x101 },
  });
});

test('sub-millisecond parts that add up past a millisecond carry into it', () => {
  const clock = new KtimeClock(1_700_000_000_000_000_001n, 0n);
  const [ev] = decode(new UsdtRecordDecoder(clock), receiveRequest(5_000_999_999n, 1, 1, 0x200));
  assert.equal(ev!.timeMs, 1_700_000_005_001);
  assert.equal(ev!.timeSubNs, 0);
});

test('kernel times past 2^53 ns (104 days of uptime) stay exact', () => {
  const ts = 2n ** 53n + 987_654_321n;
  const [ev] = decode(new UsdtRecordDecoder(new KtimeClock(0n, 0n)), receiveRequest(ts, 1, 1, 0x101));
  assert.equal(ev!.timeMs, Number(ts / 1_000_000n));
  assert.equal(ev!.timeSubNs, Number(ts % 1_000_000n));
});

test('each event keeps its own time when several are decoded in a row', () => {
  const decoder = new UsdtRecordDecoder(new KtimeClock(0n, 0n));
  const evs = decode(
    decoder,
    receiveRequest(1_000_000_001n, 1, 1, 0x101),
    receiveRequest(2_000_500_000n, 1, 3, 0x101),
  );
  assert.deepEqual(
    evs.map((e) => [e.timeMs, e.timeSubNs]),
    [
      [1000, 1],
      [2000, 500_000],
    ],
  );
});

test('records too short for their arguments, or of an unknown probe, are counted and skipped', () => {
  const decoder = new UsdtRecordDecoder(new KtimeClock(0n, 0n));
  const good = receiveRequest(1n, 1, 1, 0x101);
  const unknown = Buffer.from(good);
  unknown.writeUInt16LE(USDT_PROBES.length, RECORD.probe);
  const out: ProbeEvent[] = [];
  decoder.decode(good, 0, good.length - 8, out);
  decoder.decode(unknown, 0, unknown.length, out);
  assert.deepEqual(out, []);
  assert.equal(decoder.stats.badRecords, 2);
  assert.equal(decoder.stats.records, 2);
});
