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

test("a replay's first lines are held until three agree; one odd line among them is dropped, not them", () => {
  const odd = run([T, T + 1, T - 3_600_000, T + 2, T + 3]);
  assert.deepEqual(odd.tags, [0, 1, 3, 4]);
  assert.equal(odd.stats.farTimes, 1);
  // Two odd lines in a row: the held ones, not confirmed twice over, are the odd ones.
  const two = run([T, T + 1, T - 3_600_000, T - 3_600_000, T - 3_599_999]);
  assert.deepEqual(two.tags, [3, 4]);
  assert.equal(two.stats.farTimes, 3);
});

test('a clock stepped back is followed once two more lines confirm it, and lines near it pass at once after', () => {
  const back = T - 3_600_000;
  const { tags, stats } = run([T, T + 1, T + 2, back, back + 1, back, back + 2, back + 500, T]);
  assert.deepEqual(tags, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(
    stats.farTimes,
    1,
    'the old time is now an hour ahead of the stream: one line alone at the end',
  );
});

test('two identical lines far ahead do not move the clock; both are dropped and counted', () => {
  const { tags, stats } = run([T, T + 1, T + 1e14, T + 1e14, T + 2, T + 3]);
  assert.deepEqual(tags, [0, 1, 4, 5]);
  assert.equal(stats.farTimes, 2);
});

test('three lines in a row beyond the window move the clock: an idle gap in a replay, then a burst', () => {
  const gap = T + 3_600_000;
  const { tags, stats } = run([T, T + 1, gap, gap + 3, gap - 20, gap + 5, gap + 6]);
  assert.deepEqual(tags, [0, 1, 2, 3, 4, 5, 6], 'a thread a little behind the burst still confirms it');
  assert.equal(stats.farTimes, 0);
});

test('held lines are all dropped when a line goes back before them, and that line is judged on its own', () => {
  const ahead = T + 3_600_000;
  const back = run([T, ahead, ahead + 1, T + 2, T + 3]);
  assert.deepEqual(back.tags, [0, 3, 4]);
  assert.equal(back.stats.farTimes, 2);
  // A line far ahead inside a real burst after a gap: only it is dropped.
  const inBurst = run([T, T + 1, T + 2, ahead, T + 1e14, ahead + 1, ahead + 2]);
  assert.deepEqual(inBurst.tags, [0, 1, 2, 3, 5, 6]);
  assert.equal(inBurst.stats.farTimes, 1);
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

/** A line without time through `clock`, built as the decoder builds it. */
const untimed = (clock: EventClock, tag: number, out: ProbeEvent[]): void =>
  clock.pass(ev(clock.fill(), tag), out);

test('a line without time gets the last valid time, counted, and never moves it', () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  clock.wall = T;
  clock.admit(ev(T, 0), out);
  clock.admit(ev(T + 1, 1), out);
  clock.admit(ev(T - 40, 2), out);
  untimed(clock, 3, out);
  clock.wall = T + 60_000;
  untimed(clock, 4, out);
  assert.deepEqual(
    out.map((e) => e.timeMs),
    [T, T + 1, T - 40, T - 40, T - 40],
  );
  assert.equal(stats.untimed, 2);
  assert.equal(stats.events, 5);
});

test("a stream without time: each line gets the wall clock of its read, never the first line's", () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  [1_000, 1_500, 2_500, 2_600, 9_000].forEach((wall, i) => {
    clock.wall = wall;
    untimed(clock, i, out);
    clock.chunkEnd(out);
  });
  assert.deepEqual(
    out.map((e) => e.timeMs),
    [1_000, 1_500, 2_500, 2_600, 9_000],
  );
  assert.equal(stats.untimed, 0, 'the 2024 format has no time on any line: nothing to count');
});

test('a stream without time: lines wait for a time at most 1 s of wall clock, or 256 lines, or the end', () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  clock.wall = 1_000;
  untimed(clock, 0, out);
  clock.chunkEnd(out);
  clock.wall = 1_999;
  untimed(clock, 1, out);
  clock.chunkEnd(out);
  assert.equal(out.length, 0, "a replay's timed lines may be in the next read");
  clock.wall = 2_000;
  clock.chunkEnd(out);
  assert.equal(out.length, 2);
  const many = new EventClock(newDecodeStats());
  const manyOut: ProbeEvent[] = [];
  for (let i = 0; i < 256; i++) untimed(many, i, manyOut);
  assert.equal(manyOut.length, 256);
  const ended = new EventClock(newDecodeStats());
  const endedOut: ProbeEvent[] = [];
  untimed(ended, 0, endedOut);
  ended.chunkEnd(endedOut);
  ended.end(endedOut);
  assert.equal(endedOut.length, 1);
});

test("untimed lines before a replay's first time wait for it and go first, stamped with it", () => {
  const stats = newDecodeStats();
  const clock = new EventClock(stats);
  const out: ProbeEvent[] = [];
  const wall = T + 30 * 86_400_000;
  clock.wall = wall;
  untimed(clock, 0, out);
  clock.admit(ev(T, 1), out);
  clock.chunkEnd(out);
  clock.wall = wall + 5_000;
  untimed(clock, 2, out);
  clock.admit(ev(T + 1, 3), out);
  clock.chunkEnd(out);
  assert.equal(out.length, 0, 'the first time is held until confirmed, the untimed lines with it');
  clock.admit(ev(T + 2, 4), out);
  assert.deepEqual(
    out.map((e) => [e.fields.tag, e.timeMs]),
    [
      [0, T],
      [2, T],
      [1, T],
      [3, T + 1],
      [4, T + 2],
    ],
  );
  assert.equal(stats.untimed, 2);
  assert.equal(stats.events, 5);
});

test('held lines still waiting at the end are kept when at most 5 minutes ahead, dropped beyond', () => {
  assert.deepEqual(run([T, T + 1, T + 300_000]).tags, [0, 1, 2]);
  assert.deepEqual(run([T, T + 1, T + 299_000, T + 300_000]).tags, [0, 1, 2, 3]);
  const far = run([T, T + 1, T + 300_002, T + 300_002]);
  assert.deepEqual(far.tags, [0, 1]);
  assert.equal(far.stats.farTimes, 2);
});
