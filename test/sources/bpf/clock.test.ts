// Kernel monotonic readings → epoch stamps: exact below and above 2^53 ns, carries and borrows of the sub-ms part,
// and an offset that can be set again while tracing (a wall-clock step).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KtimeClock } from '../../../src/sources/bpf/clock.js';

const halves = (ns: bigint): [number, number] => [Number(ns >> 32n), Number(ns & 0xffffffffn)];

test('epoch ms and sub-ms ns of a reading, with the sub-ms part carried', () => {
  const clock = new KtimeClock(1_700_000_000_000_600_000n, 100_000n); // offset 1.7e18 + 500 µs
  assert.equal(clock.epochMs(...halves(2_000_700_000n)), 1_700_000_002_001);
  assert.equal(clock.lastSubNs, 200_000, '0.7 ms + 0.5 ms = 1 ms + 0.2 ms');
});

test('readings past 2^53 ns (104 days of uptime) stay exact', () => {
  const clock = new KtimeClock(0n, 0n);
  const ns = (1n << 60n) + 123_456_789n;
  assert.equal(clock.epochMs(...halves(ns)), Number(ns / 1_000_000n));
  assert.equal(clock.lastSubNs, Number(ns % 1_000_000n));
});

test('set() moves later readings with the wall clock; a negative sub-ms offset borrows', () => {
  const clock = new KtimeClock(10_000_000_000n, 0n);
  assert.equal(clock.epochMs(0, 1_000_000), 10_001);
  clock.set(9_999_999_000n, 0n); // the wall clock stepped back 1 µs
  assert.equal(clock.epochMs(0, 1_000_000), 10_000);
  assert.equal(clock.lastSubNs, 999_000);
  clock.set(0n, 500n); // epoch behind monotonic by 500 ns
  assert.equal(clock.epochMs(0, 1_000_000), 0);
  assert.equal(clock.lastSubNs, 999_500);
});
