// The stream clock: real gaps and clock steps go through, one line far off does not move it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventClock } from '../../src/events/event-clock.js';
import { newDecodeStats } from '../../src/events/types.js';
import type { ProbeEvent } from '../../src/events/types.js';

const T = 1_700_000_000_000;
const ev = (timeMs: number, tag: number): ProbeEvent => ({
  module: 'h2o',
  type: 'x',
  tid: 1,
  timeMs,
  timeSubNs: 0,
  fields: { tag },
});

/** Times through a clock (wall clock `wall` per step, a replay's far past by default); the tags let through. */
function run(times: readonly number[], wall: (i: number) => number = () => 0) {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  times.forEach((t, i) => {
    clock.wall = wall(i);
    clock.admit(ev(t, i), out);
  });
  clock.end(out);
  return { tags: out.map((e) => e.fields.tag), stats };
}

test('a replay with idle gaps, H2O threads a little out of order, and a last line after a gap: all kept, in order', () => {
  const { tags, stats } = run([T, T + 1, T - 40, T + 5_000, T + 35_000, T + 35_000, T + 35_500, T + 40_000]);
  assert.deepEqual(tags, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(stats.farTimes, 0);
  assert.equal(stats.events, 8);
});

test('one line far ahead, far behind, or first and far ahead is dropped; the clock stays', () => {
  for (const odd of [T + 3_600_000, T + 1e14, T - 3_600_000]) {
    const { tags, stats } = run([T, T + 1, odd, T + 2, T + 3]);
    assert.deepEqual(tags, [0, 1, 3, 4], `odd line at ${odd - T}`);
    assert.equal(stats.farTimes, 1);
  }
  const first = run([T + 1e14, T, T + 1]);
  assert.deepEqual(first.tags, [1, 2]);
  assert.equal(first.stats.farTimes, 1);
});

test('a clock stepped back is followed once the next line confirms it', () => {
  const { tags, stats } = run([T, T + 1, T - 3_600_000, T - 3_599_999, T - 3_599_998]);
  assert.deepEqual(tags, [0, 1, 2, 3, 4]);
  assert.equal(stats.farTimes, 0);
});

test('live: an idle gap the wall clock saw is let through at once; nothing ahead of the wall clock is', () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  clock.wall = T;
  clock.admit(ev(T, 0), out);
  clock.wall = T + 600_000;
  clock.admit(ev(T + 600_000, 1), out);
  assert.deepEqual(
    out.map((e) => e.fields.tag),
    [0, 1],
    'not held for a next line',
  );
  // Two lines an hour ahead of the wall clock: the second cannot confirm the first.
  clock.admit(ev(T + 4_200_000, 2), out);
  clock.admit(ev(T + 4_200_000, 3), out);
  clock.admit(ev(T + 600_001, 4), out);
  clock.end(out);
  assert.deepEqual(
    out.map((e) => e.fields.tag),
    [0, 1, 4],
  );
  assert.equal(stats.farTimes, 2);
});

test('a line without time gets the last time let through (the wall clock before any); counted', () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  clock.wall = 42;
  assert.equal(clock.fill(), 42);
  assert.equal(stats.untimed, 0, 'the 2024 format has no time on any line');
  const out: ProbeEvent[] = [];
  clock.admit(ev(T, 0), out);
  clock.admit(ev(T + 1, 1), out);
  assert.equal(clock.fill(), T + 1);
  assert.equal(stats.untimed, 1);
});

test('a held line still waiting at the end is kept when at most 5 minutes ahead, dropped beyond', () => {
  assert.deepEqual(run([T, T + 1, T + 300_000]).tags, [0, 1, 2]);
  const far = run([T, T + 1, T + 300_002]);
  assert.deepEqual(far.tags, [0, 1]);
  assert.equal(far.stats.farTimes, 1);
});
