/**
 * Wires the stages: bytes from a source → decode → (record) → correlate → map → the span processor.
 * One `Session` per source session (one socket connection, one replay): H2O conn ids are only unique within it.
 */
import {
  CORRELATOR_FIELD_USES,
  CORRELATOR_REQUEST_HEADERS,
  Correlator,
  newCorrelatorStats,
} from './correlate/correlator.js';
import type { CorrelatorOptions, CorrelatorStats } from './correlate/correlator.js';
import { JsonLineDecoder } from './events/decode-json.js';
import type { JsonDecoderOptions } from './events/decode-json.js';
import type { EventRecorder } from './events/recorder.js';
import { newDecodeStats } from './events/types.js';
import type { DecodeStats, HeaderUse, ProbeEvent, UsedHeaderNames } from './events/types.js';
import type { QlogDirectory, QlogSession } from './export/qlog.js';
import type { SpanMapper } from './otel/span-mapper.js';

/** What a byte source feeds: raw bytes of one session, then its end. */
export interface ChunkSink {
  push(chunk: Buffer): void;
  end(): void;
}

/** What an event source (USDT) feeds: decoded events of one session, then its end. */
export interface EventSink {
  /** Which header events are worth decoding; undefined: all of them. */
  readonly usesHeader: HeaderUse | undefined;
  /** `unusedHeaders`: header events the source left undecoded (see `usesHeader`), counted as events. */
  pushEvents(events: readonly ProbeEvent[], unusedHeaders?: number): void;
  end(): void;
}

export interface PipelineOptions {
  readonly correlator: CorrelatorOptions;
  readonly maxLineBytes: number;
  /** `--qlog-dir`: where QUIC connections are also written as qlog. */
  readonly qlog: QlogDirectory | undefined;
}

/**
 * Which headers must be decoded: those the correlator or the mapper reads or captures. A browser sends a dozen
 * headers per request (accept-*, sec-*, cookie, …) and only a few change a span.
 */
export function usedHeaderNames(mapper: SpanMapper): UsedHeaderNames {
  const m = mapper.usedHeaderNames();
  return {
    request: m.request === 'all' ? 'all' : [...CORRELATOR_REQUEST_HEADERS, ...m.request],
    response: m.response,
  };
}

/** The same as a predicate, for the decoders. */
function headerUse(used: UsedHeaderNames): HeaderUse {
  const request = used.request === 'all' ? undefined : new Set(used.request);
  const response = used.response === 'all' ? undefined : new Set(used.response);
  return (name, isRequest) => {
    const names = isRequest ? request : response;
    return names === undefined || names.has(name);
  };
}

export class Pipeline {
  readonly decodeStats: DecodeStats = newDecodeStats();
  readonly correlatorStats: CorrelatorStats = newCorrelatorStats();
  sessions = 0;
  private _current: Session | undefined;
  /** Sessions open at the same time (one per traced process). */
  private readonly _concurrent = new Set<Session>();

  /** Header lines no span uses are not parsed, unless `--record` keeps every event. */
  private readonly _usesHeader: HeaderUse | undefined;
  /** The same as lists, for a source that filters before decoding (BPF); undefined with `--record`. */
  readonly usedHeaderNames: UsedHeaderNames | undefined;
  /**
   * How each session's JSON decoder reads lines: nor are the QUIC and TLS lines no span uses parsed, and of
   * `conn_stats` only what spans show is read, unless `--record` or `--qlog-dir` keeps every event whole.
   */
  readonly decoderOptions: JsonDecoderOptions;

  constructor(
    private readonly _opts: PipelineOptions,
    private readonly _mapper: SpanMapper,
    private readonly _recorder: EventRecorder | undefined,
  ) {
    this.usedHeaderNames = _recorder === undefined ? usedHeaderNames(_mapper) : undefined;
    this._usesHeader = this.usedHeaderNames === undefined ? undefined : headerUse(this.usedHeaderNames);
    const whole = _recorder !== undefined || _opts.qlog !== undefined;
    this.decoderOptions = {
      maxLineBytes: _opts.maxLineBytes,
      usesHeader: this._usesHeader,
      fieldUses: whole ? undefined : CORRELATOR_FIELD_USES,
      fieldSubsets: whole ? undefined : _mapper.usedFields(),
    };
  }

  /** Start a new id space; the previous session (if any) is flushed first. */
  newSession(): ChunkSink {
    this._current?.end();
    this.sessions++;
    const correlator = new Correlator(this._opts.correlator, this._mapper, this.correlatorStats);
    const decoder = new JsonLineDecoder(this.decoderOptions, this.decodeStats);
    this._current = new Session(
      decoder,
      correlator,
      this._recorder,
      this._opts.qlog?.session(),
      this.decodeStats,
      this._usesHeader,
      undefined,
    );
    return this._current;
  }

  /** A session that runs beside the others (its own id space, e.g. one traced process); ends on its own. */
  openEventSession(): EventSink {
    this.sessions++;
    const correlator = new Correlator(this._opts.correlator, this._mapper, this.correlatorStats);
    const session = new Session(
      undefined,
      correlator,
      this._recorder,
      this._opts.qlog?.session(),
      this.decodeStats,
      this._usesHeader,
      () => this._concurrent.delete(session),
    );
    this._concurrent.add(session);
    return session;
  }

  private *_open(): Iterable<Session> {
    if (this._current !== undefined) yield this._current;
    yield* this._concurrent;
  }

  get openConnections(): number {
    let n = 0;
    for (const s of this._open()) n += s.correlator.openConnections;
    return n;
  }

  get openRequests(): number {
    let n = 0;
    for (const s of this._open()) n += s.correlator.openRequests;
    return n;
  }

  /** Called on a timer while live, so deadlines fire when H2O is quiet. */
  tick(nowMs: number): void {
    for (const s of this._open()) s.correlator.tick(nowMs);
  }

  end(): void {
    for (const s of [...this._open()]) s.end();
    this._current = undefined;
  }
}

class Session implements ChunkSink, EventSink {
  private readonly _batch: ProbeEvent[] = [];
  private _ended = false;

  /** `_decoder` is undefined for sessions fed with decoded events. */
  constructor(
    private readonly _decoder: JsonLineDecoder | undefined,
    readonly correlator: Correlator,
    private readonly _recorder: EventRecorder | undefined,
    private readonly _qlog: QlogSession | undefined,
    private readonly _stats: DecodeStats,
    readonly usesHeader: HeaderUse | undefined,
    private readonly _onEnd: (() => void) | undefined,
  ) {}

  push(chunk: Buffer): void {
    if (this._ended || this._decoder === undefined) return;
    this._batch.length = 0;
    this._decoder.push(chunk, this._batch);
    this._deliver(this._batch);
  }

  pushEvents(events: readonly ProbeEvent[], unusedHeaders = 0): void {
    if (this._ended) return;
    this._stats.events += events.length + unusedHeaders;
    this._stats.unusedHeaders += unusedHeaders;
    this._deliver(events);
  }

  end(): void {
    if (this._ended) return;
    if (this._decoder !== undefined) {
      this._batch.length = 0;
      this._decoder.end(this._batch);
      this._deliver(this._batch);
    }
    this._ended = true;
    this.correlator.flush('source_ended');
    this._qlog?.end();
    this._onEnd?.();
  }

  private _deliver(events: readonly ProbeEvent[]): void {
    if (events.length === 0) return;
    this._recorder?.write(events);
    this._qlog?.write(events);
    this.correlator.process(events);
  }
}
