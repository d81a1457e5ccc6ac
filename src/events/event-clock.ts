/**
 * The time of one stream of lines, kept from jumping because of a few lines. The correlator's clock is the newest
 * event time; a line far ahead would fire every deadline at once (all open requests end as `timeout`, every
 * connection closes, and their later events come back as `attached_mid_flight`).
 *
 * H2O stamps each line with `gettimeofday` as it writes it, one line at a time, so a stream's time moves on only
 * as real time does. A line within the window around the newest time is let through. One beyond it is held with
 * the lines after it: once CONFIRM_LINES in a row agree, the stream really moved (an idle gap in a replay, a clock
 * step) and they go on; a held line that a later one goes back before is dropped, counted in `farTimes` (one odd
 * line against two or more held ones that agree is dropped instead, once: a replay's first lines are held too). A
 * live stream's idle gap is told from a jump by the wall clock, so its lines are not held.
 *
 * A line without time takes the stream's last valid time and never moves it. Before the first valid time it waits
 * for it (see `pass`): stamped with the wall clock, a replay's untimed first line would move the correlator's clock
 * to now and end the whole capture as `timeout`.
 */
import type { DecodeStats, ProbeEvent } from './types.js';

/**
 * How far one line may move the clock ahead. Far more than threads interleaving or quicly's cached clock account
 * for, and short of the deadlines a jump would fire (HTTP/1 responses end 2 s after their last write).
 */
export const AHEAD_MS = 1_000;
/** How far a line may lag the newest time: a thread's line written a little after another's. */
export const BEHIND_MS = 10_000;
/**
 * Lines in a row that move the clock beyond the window: the first one and those after it that do not go back
 * before them. What follows a real gap is a burst: a request is 8 to 15 lines, idle timeouts close connections
 * together, so 3 come at once; the last line or two of a stream after a gap are `end`'s (LAST_LINE_AHEAD_MS). A
 * line written twice (a duplicate of a hostile line) does not move it.
 */
export const CONFIRM_LINES = 3;
/** A stream whose time is this close to the wall clock is live: nothing can come from ahead of the wall clock. */
const LIVE_MS = 60_000;
/**
 * A line still held when the stream ends (no line after it can confirm it) is kept if it is at most this far
 * ahead: H2O's last lines of a session (closes) come within its own idle timeouts, which are seconds to minutes.
 */
const LAST_LINE_AHEAD_MS = 300_000;
/**
 * Lines without time waiting for the stream's first valid time, at most: the formats without time (the 2024
 * socket format, the old h2olog) have it on no line, so past this many, or once the wall clock moved this long
 * with no timed line waiting, they go on with the wall clock of their read.
 */
const EARLY_LINES = 256;
const EARLY_WAIT_MS = 1_000;

export class EventClock {
  /** The newest time let through; NaN until the first. */
  private _newest = NaN;
  /** The time of the last timed line let through: what a line without time gets. NaN until the first. */
  private _last = NaN;
  /** Wall-clock ms when the current chunk came, and when `_newest` last moved. */
  private _wall = 0;
  private _newestAtWall = 0;
  /** Timed lines beyond the window, in order, and how many lines after each confirmed it; reused. */
  private readonly _held: ProbeEvent[] = [];
  private readonly _confirmations: number[] = [];
  /** A line was just taken as the odd one against the held lines (see `_odd`). */
  private _doubted = false;
  /** Lines without time before the first valid time, in order, each with the wall clock of its read; reused. */
  private readonly _early: ProbeEvent[] = [];
  private _earlySince = 0;
  /** The early lines once went on with the wall clock: the stream has no time, its lines no longer wait. */
  private _timeless = false;

  constructor(private readonly _stats: DecodeStats) {}

  /** Wall-clock ms now (once per chunk, not per line). */
  set wall(ms: number) {
    this._wall = ms;
  }

  /** The time to build a line without one with: the stream's last, or the wall clock before it has one. */
  fill(): number {
    return Number.isNaN(this._last) ? this._wall : this._last;
  }

  /** An event with a valid time: appended to `out` (with held ones it confirms), held, or dropped and counted. */
  admit(ev: ProbeEvent, out: ProbeEvent[]): void {
    const held = this._held;
    const t = ev.timeMs;
    // Nearly every line: nothing held or waiting, and in the window. What `_passTimed` does then, without its calls.
    if (held.length === 0 && this._early.length === 0 && this._within(t)) {
      if (!(t <= this._newest)) {
        this._newest = t;
        this._newestAtWall = this._wall;
      }
      this._last = t;
      this._stats.events++;
      out.push(ev);
      return;
    }
    if (held.length > 0) {
      if (this._odd(t)) {
        this._stats.farTimes++;
        return;
      }
      this._confirmHeld(t, out);
      if (held.length > 0) {
        held.push(ev);
        this._confirmations.push(0);
        return;
      }
    }
    if (this._within(t)) return this._passTimed(ev, out);
    // Nothing is written ahead of the wall clock on the machine that writes it live.
    if (Math.abs(this._newest - this._wall) <= LIVE_MS && t > this._wall + AHEAD_MS) {
      this._stats.farTimes++;
      return;
    }
    held.push(ev);
    this._confirmations.push(0);
  }

  /**
   * An event without time, built with `fill()`: appended, or, before the stream's first valid time, kept to be
   * stamped with it (see EARLY_LINES).
   */
  pass(ev: ProbeEvent, out: ProbeEvent[]): void {
    if (!Number.isNaN(this._last)) {
      this._stats.untimed++;
      return this._emit(ev, out);
    }
    if (this._timeless) return this._emit(ev, out);
    const early = this._early;
    if (early.length === 0) this._earlySince = this._wall;
    early.push(ev);
    if (early.length >= EARLY_LINES) this._releaseEarly(out);
  }

  /** The chunk's lines are read: early lines that waited long enough for a time that is not coming go on. */
  chunkEnd(out: ProbeEvent[]): void {
    if (this._early.length > 0 && this._held.length === 0 && this._wall - this._earlySince >= EARLY_WAIT_MS)
      this._releaseEarly(out);
  }

  /** The stream ended: held lines go on if they are not too far ahead, then early lines still waiting. */
  end(out: ProbeEvent[]): void {
    const newest = this._newest;
    for (const h of this._held) {
      const t = h.timeMs;
      if (Number.isNaN(newest) || (t > newest && t - newest <= LAST_LINE_AHEAD_MS)) this._passTimed(h, out);
      else this._stats.farTimes++;
    }
    this._held.length = 0;
    this._confirmations.length = 0;
    if (this._early.length > 0) this._releaseEarly(out);
  }

  /** A timed line let through: the early lines go first, stamped with its time (the stream's first). */
  private _passTimed(ev: ProbeEvent, out: ProbeEvent[]): void {
    const early = this._early;
    if (early.length > 0) {
      this._stats.untimed += early.length;
      // ProbeEvents are shared read-only: a new one for this rare case.
      for (const e of early) this._emit({ ...e, timeMs: ev.timeMs }, out);
      early.length = 0;
    }
    const t = ev.timeMs;
    // Behind the stream (a confirmed clock step back), the newest time goes back with it.
    if (!(t <= this._newest) || t < this._newest - BEHIND_MS) {
      this._newest = t;
      this._newestAtWall = this._wall;
    }
    this._last = t;
    this._emit(ev, out);
  }

  /** The early lines go on with the wall clock of their reads, and so will the stream's next untimed lines. */
  private _releaseEarly(out: ProbeEvent[]): void {
    for (const e of this._early) this._emit(e, out);
    this._early.length = 0;
    this._timeless = true;
  }

  private _emit(ev: ProbeEvent, out: ProbeEvent[]): void {
    this._stats.events++;
    out.push(ev);
  }

  /** Whether `t` is in the window: near the newest time, or ahead of it by no more than the wall clock moved. */
  private _within(t: number): boolean {
    const newest = this._newest;
    if (Number.isNaN(newest)) return Math.abs(t - this._wall) <= AHEAD_MS;
    if (t < newest - BEHIND_MS) return false;
    return t - newest <= AHEAD_MS + Math.max(0, this._wall - this._newestAtWall);
  }

  /**
   * A line at `t` after the held lines: each it does not confirm is dropped and counted, the others count it, and
   * those confirmed by enough lines, or now within the window, go on from the first.
   */
  private _confirmHeld(t: number, out: ProbeEvent[]): void {
    this._doubted = false;
    const held = this._held;
    const counts = this._confirmations;
    let kept = 0;
    for (let i = 0; i < held.length; i++) {
      const h = held[i]!;
      if (!this._confirms(t, h.timeMs)) {
        this._stats.farTimes++;
        continue;
      }
      held[kept] = h;
      counts[kept++] = counts[i]! + 1;
    }
    let n = 0;
    while (n < kept && (counts[n]! >= CONFIRM_LINES - 1 || this._within(held[n]!.timeMs)))
      this._passTimed(held[n++]!, out);
    let left = 0;
    for (let i = n; i < kept; i++) {
      held[left] = held[i]!;
      counts[left++] = counts[i]!;
    }
    held.length = left;
    counts.length = left;
  }

  /**
   * Whether a line at `t` is the odd one rather than the held lines: off the stream, it confirms none of two or
   * more held lines that agree among themselves (a replay's first lines, a burst after a gap). Once only: if the
   * next line does not confirm them either, they are the odd ones.
   */
  private _odd(t: number): boolean {
    const held = this._held;
    if (held.length < 2 || this._doubted || this._within(t)) return false;
    for (const h of held) if (this._confirms(t, h.timeMs)) return false;
    this._doubted = true;
    return true;
  }

  /**
   * Whether a line at `t` after a held one at `held` says the stream moved there: it does not go back before it,
   * and, for a held line behind the stream, it is behind the stream too.
   */
  private _confirms(t: number, held: number): boolean {
    if (t < held - BEHIND_MS) return false;
    const behind = held < this._newest - BEHIND_MS;
    return !behind || t < this._newest - BEHIND_MS;
  }
}
