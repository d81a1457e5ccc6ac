/**
 * The event model shared by every stage after the sources. One `ProbeEvent` per H2O probe hit or log line,
 * whatever the source (h2olog socket, replayed JSON lines, BPF records).
 */

/** A decoded field value. Integers above 2^53 stay exact as bigint; hex dumps and strings stay strings. */
export type FieldValue = string | number | bigint | boolean;

export interface ProbeEvent {
  /** Provider: `h2o`, `quicly` or `picotls`. */
  readonly module: string;
  /** Point name in snake_case, e.g. `receive_request`. */
  readonly type: string;
  /** OS thread id of the H2O worker (0 when the source does not say). */
  readonly tid: number;
  /** Wall-clock time in ms since the epoch (integer for the socket source). */
  readonly timeMs: number;
  /** Sub-millisecond part in ns (0..999999), for sources with nanosecond clocks. */
  readonly timeSubNs: number;
  /**
   * The point's fields in source order (includes `conn_id` when present). The JSON decoder hands over the parsed
   * line itself, so the common keys (COMMON_KEYS) may be present too: code that iterates fields skips them.
   */
  readonly fields: Record<string, FieldValue>;
}

/** A numeric field as a number (bigint ones rounded), or undefined when it is missing or not a number. */
export function numberOf(v: FieldValue | undefined): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** A numeric field as a number, 0 when it is missing or not a number (counters, codes and ids H2O sends). */
export function numberOr0(v: FieldValue | undefined): number {
  return numberOf(v) ?? 0;
}

/** Whether a header of this name (request or response) can change a span: decoders skip the others. */
export type HeaderUse = (name: string, request: boolean) => boolean;

/**
 * A point of which only some events can change a span, told apart by one field's value (a string, or an integer
 * as a number): a decoder reads that field from the raw line and leaves the other events undecoded.
 */
export interface FieldUse {
  readonly module: string;
  readonly type: string;
  readonly field: string;
  readonly used: (value: FieldValue) => boolean;
}

/** A point of which spans read only some fields (besides `conn_id`): a decoder may read just those. */
export interface FieldSubset {
  readonly module: string;
  readonly type: string;
  readonly fields: readonly string[];
}

/** The header names some span uses, per direction, as a list for BPF's filter; `all`: every name (`*` capture). */
export interface UsedHeaderNames {
  readonly request: readonly string[] | 'all';
  readonly response: readonly string[] | 'all';
}

/** Keys of the line format that are not point fields. `time_sub_ns` is ours (`--record` with a ns clock). */
export const COMMON_KEYS: ReadonlySet<string> = new Set([
  'module',
  'type',
  'tid',
  'time',
  'time_sub_ns',
  'seq',
]);

/** Why a line or record could not be turned into an event. Counted per reason, never fatal. */
export type DecodeError = 'malformed-json' | 'not-an-event' | 'too-long' | 'lost-marker';

/** Lines dropped for what they hold rather than their syntax (see field-checks.ts, event-clock.ts). */
export function rejectedLines(s: DecodeStats): number {
  return s.badTimes + s.farTimes + s.badIds + s.badStatuses + s.badVersions + s.badFields + s.tooDeep;
}

/** Counters a decoder keeps; the CLI reports them. */
export interface DecodeStats {
  lines: number;
  events: number;
  malformed: number;
  notEvents: number;
  tooLong: number;
  nonUtf8Lines: number;
  /** Events the producer itself reported as lost (old h2olog `h2olog-event-lost` lines). */
  reportedLost: number;
  /** Header events of names no span uses: counted in `events`, not parsed. */
  unusedHeaders: number;
  /** Other events no span uses (see `FieldUse`): counted in `events`, not parsed. */
  unusedEvents: number;
  /** Lines without `time` given the stream's last time (counted in `events` too). */
  untimed: number;
  /** Lines dropped for a `time` that is not a non-negative number (a string, null, 1e999, above 2^64). */
  badTimes: number;
  /** Lines dropped for a `time` far from the stream's (see `EventClock`). */
  farTimes: number;
  /** Lines dropped for an id, thread id, stream id or pointer that is not an integer in range. */
  badIds: number;
  /** Lines dropped for a `status` that is not an integer 100..999. */
  badStatuses: number;
  /** Lines dropped for an `http_version` that is not an integer 0..0xffff. */
  badVersions: number;
  /** Lines dropped for another field later stages read, of the wrong type or range (see field-checks.ts). */
  badFields: number;
  /** Lines dropped unparsed for nesting deeper than H2O's flat objects. */
  tooDeep: number;
}

export function newDecodeStats(): DecodeStats {
  return {
    lines: 0,
    events: 0,
    malformed: 0,
    notEvents: 0,
    tooLong: 0,
    nonUtf8Lines: 0,
    reportedLost: 0,
    unusedHeaders: 0,
    unusedEvents: 0,
    untimed: 0,
    badTimes: 0,
    farTimes: 0,
    badIds: 0,
    badStatuses: 0,
    badVersions: 0,
    badFields: 0,
    tooDeep: 0,
  };
}
