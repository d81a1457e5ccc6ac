// The wire primitives the encoder's hot path hand-writes, against Node's own: fixed64 nanoseconds (with the
// remembered second and the carry into the high half) and hex ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { putFixed32, putFixed64Nanos, putHex } from '../../src/export/protobuf-wire.js';

function nanos(sec: number, ns: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(sec) * 1_000_000_000n + BigInt(ns));
  return b;
}

test('fixed64 nanoseconds are exact across seconds, repeats of a second and carries', () => {
  const times: [number, number][] = [
    [0, 0],
    [1, 999_999_999],
    [1_700_000_000, 123_456_789],
    [1_700_000_000, 999_999_999], // the same second again, from the remembered split
    [1_700_000_000, 0],
    [4_294_967_295, 999_999_999],
    [0xffff, 999_999_999],
    [0x10000, 1],
  ];
  // Seconds whose low half of sec × 1e9 lies just under 2^32, so adding the nanoseconds carries.
  for (let sec = 1_795_400_000; sec < 1_795_400_000 + 2000; sec++) times.push([sec, 999_999_999], [sec, 1]);
  for (const [sec, ns] of times) {
    const buf = Buffer.alloc(10);
    assert.equal(putFixed64Nanos(buf, 1, sec, ns), 9);
    assert.deepEqual(buf.subarray(1, 9), nanos(sec, ns), `${sec} s ${ns} ns`);
  }
});

test('fixed32 is little-endian, as writeUInt32LE', () => {
  for (const v of [0, 1, 0x80, 0x1234_5678, 0xffff_ffff]) {
    const ours = Buffer.alloc(4);
    const node = Buffer.alloc(4);
    assert.equal(putFixed32(ours, 0, v), 4);
    node.writeUInt32LE(v);
    assert.deepEqual(ours, node);
  }
});

test('hex ids are the bytes Buffer.from(hex, "hex") gives, in either case', () => {
  for (const hex of ['0af7651916cd43dd8448eb211c80319c', 'B7AD6B7169203331', '00', '']) {
    const buf = Buffer.alloc(hex.length / 2 + 2);
    assert.equal(putHex(buf, 1, hex), 1 + hex.length / 2);
    assert.deepEqual(buf.subarray(1, 1 + hex.length / 2), Buffer.from(hex, 'hex'), hex);
  }
});
