/** Record stamps (ms + sub-ms ns) → OpenTelemetry times. */
import type { HrTime } from '@opentelemetry/api';
import type { Stamp } from '../correlate/records.js';

export function toHrTime(s: Stamp): HrTime {
  const ms = Math.floor(s.timeMs);
  const sec = Math.floor(ms / 1000);
  return [sec, (ms - sec * 1000) * 1e6 + Math.round((s.timeMs - ms) * 1e6) + s.timeSubNs];
}

/** `to - from` in ms, rounded to the µs. */
export function durationMs(from: Stamp, to: Stamp): number {
  return Math.round(((to.timeMs - from.timeMs) * 1e6 + (to.timeSubNs - from.timeSubNs)) / 1e3) / 1e3;
}
