/**
 * The time of one stream of lines, kept from jumping because of one line. The correlator's clock is the newest
 * event time; a single line far ahead would fire every deadline at once (all open requests end as `timeout`,
 * every connection closes, and their later events come back as `attached_mid_flight`).
 *
 * H2O stamps each line with `gettimeofday` as it writes it, one line at a time, so a stream's time moves on only
 * as real time does. A line within the window around the newest time is let through. One beyond it is held until
 * the next line: if that one does not go back before it, the stream really moved (an idle gap in a replay, a clock
 * step) and both go on; if it does, the held line was alone and is dropped, counted in `farTimes`. A live stream's
 * idle gap is told from a jump by the wall clock, so its lines are not held.
 */
import type { DecodeStats, ProbeEvent } from './types.js';

/**
 * How far one line may move the clock ahead. Far more than threads interleaving or quicly's cached clock account
 * for, and short of the deadlines a jump would fire (HTTP/1 responses end 2 s after their last write).
 */
export const AHEAD_MS = 1_000;
/** How far a line may lag the newest time: a thread's line written a little after another's. */
export const BEHIND_MS = 10_000;
/** A stream whose time is this close to the wall clock is live: nothing can come from ahead of the wall clock. */
const LIVE_MS = 60_000;
/**
 * A line still held when the stream ends (no next line can confirm it) is kept if it is at most this far ahead:
 * H2O's last line of a session (a close) comes within its own idle timeouts, which are seconds to minutes.
 */
const LAST_LINE_AHEAD_MS = 300_000;

export class EventClock {
  /** The newest time let through; NaN until the first. */
  private _newest = NaN;
  /** The time of the last line let through: what a line without time gets. */
  private _last = NaN;
  /** Wall-clock ms when the current chunk came, and when `_newest` last moved. */
  private _wall = 0;
  private _newestAtWall = 0;
  /** A line beyond the window, waiting for the next to say whether the stream moved. */
  private _held: ProbeEvent | undefined;

  constructor(private readonly _stats: DecodeStats) {}

  /** Wall-clock ms now (once per chunk, not per line). */
  set wall(ms: number) {
    this._wall = ms;
  }

  /** The time for a line without one: the stream's last, or the wall clock before the stream has one. */
  fill(): number {
    if (Number.isNaN(this._last)) return this._wall;
    this._stats.untimed++;
    return this._last;
  }

  /** An event with a valid time: appended to `out` (with a held one it confirms), held, or dropped and counted. */
  admit(ev: ProbeEvent, out: ProbeEvent[]): void {
    const held = this._held;
    if (held !== undefined) {
      this._held = undefined;
      if (this._confirms(ev.timeMs, held.timeMs)) {
        // Behind the stream (a clock stepped back), the newest time goes back with it.
        this._newest = Math.max(held.timeMs, ev.timeMs);
        this._newestAtWall = this._wall;
        this._pass(held, out);
        return this._pass(ev, out);
      }
      this._stats.farTimes++;
    }
    const t = ev.timeMs;
    if (this._within(t)) {
      if (!(t <= this._newest)) {
        this._newest = t;
        this._newestAtWall = this._wall;
      }
      return this._pass(ev, out);
    }
    // Nothing is written ahead of the wall clock on the machine that writes it live.
    if (Math.abs(this._newest - this._wall) <= LIVE_MS && t > this._wall + AHEAD_MS) {
      this._stats.farTimes++;
      return;
    }
    this._held = ev;
  }

  /** A timeless line's event (see `fill`): appended as it is. */
  pass(ev: ProbeEvent, out: ProbeEvent[]): void {
    this._pass(ev, out);
  }

  /** The stream ended: a held line goes on if it is not too far ahead. */
  end(out: ProbeEvent[]): void {
    const held = this._held;
    if (held === undefined) return;
    this._held = undefined;
    const t = held.timeMs;
    if (Number.isNaN(this._newest) || (t > this._newest && t - this._newest <= LAST_LINE_AHEAD_MS))
      this._pass(held, out);
    else this._stats.farTimes++;
  }

  private _pass(ev: ProbeEvent, out: ProbeEvent[]): void {
    this._last = ev.timeMs;
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
   * Whether a line at `t` after the held one at `held` says the stream moved there: it does not go back before
   * it, and, for a held line behind the stream, it is behind the stream too.
   */
  private _confirms(t: number, held: number): boolean {
    if (t < held - BEHIND_MS) return false;
    const behind = held < this._newest - BEHIND_MS;
    return !behind || t < this._newest - BEHIND_MS;
  }
}
