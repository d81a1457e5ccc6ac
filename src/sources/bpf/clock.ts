/**
 * Epoch times of the kernel's CLOCK_MONOTONIC readings, the clock of BPF's `bpf_ktime_get_ns`: the offset between
 * the two clocks, read back to back. A source sets it again on its timer, so a step of the wall clock (NTP) shows in
 * later records as it does in H2O's own (wall-clock) timestamps.
 */
const TWO_32 = 0x1_0000_0000;

export class KtimeClock {
  /** The offset, split in ms and ns so no bigint is needed per record. */
  private _ms = 0;
  private _subNs = 0;
  /** The sub-millisecond ns of the time `epochMs` returned last: two numbers without an object per record. */
  lastSubNs = 0;

  constructor(realtimeNs: bigint, monotonicNs: bigint) {
    this.set(realtimeNs, monotonicNs);
  }

  /** A new offset, from two readings taken back to back: epoch and monotonic time, both in ns. */
  set(realtimeNs: bigint, monotonicNs: bigint): void {
    const diff = realtimeNs - monotonicNs;
    const ms = diff / 1_000_000n;
    this._ms = Number(ms);
    this._subNs = Number(diff - ms * 1_000_000n);
  }

  /** The epoch time in ms of a monotonic reading given as its u32 halves; its sub-ms ns left in `lastSubNs`. */
  epochMs(hi: number, lo: number): number {
    let ms: number;
    let sub: number;
    if (hi < 0x20_0000) {
      // Below 2^53 ns (104 days of uptime) the double is exact.
      const ns = hi * TWO_32 + lo;
      ms = Math.floor(ns / 1e6);
      sub = ns - ms * 1e6;
    } else {
      const ns = (BigInt(hi) << 32n) | BigInt(lo);
      ms = Number(ns / 1_000_000n);
      sub = Number(ns % 1_000_000n);
    }
    ms += this._ms;
    sub += this._subNs;
    if (sub >= 1e6) {
      ms++;
      sub -= 1e6;
    } else if (sub < 0) {
      ms--;
      sub += 1e6;
    }
    this.lastSubNs = sub;
    return ms;
  }
}
