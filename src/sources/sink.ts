/**
 * Where every source delivers: one sink per session (one id space — an h2olog socket connection, a replay, a
 * traced process; H2O's conn ids restart with the server). A source decodes its own input and pushes either probe
 * events, which the correlator turns into records, or finished records, for a source that already sees whole
 * requests; both meet at the span mapper.
 */
import type { ConnectionRecord, RequestRecord } from '../correlate/records.js';
import type { DecodeStats, HeaderUse, ProbeEvent, UsedHeaderNames } from '../events/types.js';
import type { JsonDecoderOptions } from '../events/decode-json.js';

export interface SourceSink {
  /** Decoded probe events of this session, in order. */
  pushEvents(events: readonly ProbeEvent[]): void;
  /**
   * Finished requests and closed connections of this session (they skip the correlator). A request's connection
   * must be pushed too, once it has closed or before `end()`: its span ends only then. The source counts what it
   * read in `DecodePlan.stats`; the `--record` and qlog taps see events only.
   */
  pushRecords(requests: readonly RequestRecord[], connections: readonly ConnectionRecord[]): void;
  /** The session ended: whatever is still open completes now. */
  end(): void;
}

/** What the rest of the pipeline needs decoded: only what some span uses, unless everything is recorded. */
export interface DecodePlan {
  /** Counters every decoder of every session adds to. */
  readonly stats: DecodeStats;
  /** How JSON lines are read (socket, replay). */
  readonly json: JsonDecoderOptions;
  /** Which header events are worth decoding; undefined: all of them. */
  readonly usesHeader: HeaderUse | undefined;
  /** The same as name lists, for a filter before decoding (BPF); undefined: all of them. */
  readonly usedHeaderNames: UsedHeaderNames | undefined;
}

/** What a source is given: how to decode, and where each new session goes. */
export interface Sessions {
  readonly decode: DecodePlan;
  /**
   * A new session with its own id space; it runs until its `end()`, beside any others. With a `key` (the traced
   * process), sources that trace the same process share one session, which ends once each has ended it.
   */
  open(key?: string): SourceSink;
  /**
   * For a source that can wait between reads (a replay; live ones cannot): undefined while more can be taken,
   * else a promise of when it can.
   */
  ready?(): Promise<void> | undefined;
}
