/**
 * Wires the stages: bytes from a source → decode → (record) → correlate → map → the span processor.
 * One `Session` per source session (one socket connection, one replay): H2O conn ids are only unique within it.
 */
import { Correlator, newCorrelatorStats } from './correlate/correlator.js';
import type { CorrelatorOptions, CorrelatorStats } from './correlate/correlator.js';
import { JsonLineDecoder } from './events/decode-json.js';
import type { EventRecorder } from './events/recorder.js';
import { newDecodeStats } from './events/types.js';
import type { DecodeStats, ProbeEvent } from './events/types.js';
import type { SpanMapper } from './otel/span-mapper.js';

/** What a source feeds: raw bytes of one session, then its end. */
export interface ChunkSink {
  push(chunk: Buffer): void;
  end(): void;
}

export interface PipelineOptions {
  readonly correlator: CorrelatorOptions;
  readonly maxLineBytes: number;
}

export class Pipeline {
  readonly decodeStats: DecodeStats = newDecodeStats();
  readonly correlatorStats: CorrelatorStats = newCorrelatorStats();
  sessions = 0;
  private _current: Session | undefined;

  constructor(
    private readonly _opts: PipelineOptions,
    private readonly _mapper: SpanMapper,
    private readonly _recorder: EventRecorder | undefined,
  ) {}

  /** Start a new id space; the previous session (if any) is flushed first. */
  newSession(): ChunkSink {
    this._current?.end();
    this.sessions++;
    const correlator = new Correlator(this._opts.correlator, this._mapper, this.correlatorStats);
    const decoder = new JsonLineDecoder({ maxLineBytes: this._opts.maxLineBytes }, this.decodeStats);
    this._current = new Session(decoder, correlator, this._recorder);
    return this._current;
  }

  get openConnections(): number {
    return this._current?.correlator.openConnections ?? 0;
  }

  get openRequests(): number {
    return this._current?.correlator.openRequests ?? 0;
  }

  /** Called on a timer while live, so deadlines fire when H2O is quiet. */
  tick(nowMs: number): void {
    this._current?.correlator.tick(nowMs);
  }

  end(): void {
    this._current?.end();
    this._current = undefined;
  }
}

class Session implements ChunkSink {
  private readonly _batch: ProbeEvent[] = [];
  private _ended = false;

  constructor(
    private readonly _decoder: JsonLineDecoder,
    readonly correlator: Correlator,
    private readonly _recorder: EventRecorder | undefined,
  ) {}

  push(chunk: Buffer): void {
    if (this._ended) return;
    this._batch.length = 0;
    this._decoder.push(chunk, this._batch);
    this._deliver();
  }

  end(): void {
    if (this._ended) return;
    this._batch.length = 0;
    this._decoder.end(this._batch);
    this._deliver();
    this._ended = true;
    this.correlator.flush('source_ended');
  }

  private _deliver(): void {
    if (this._batch.length === 0) return;
    this._recorder?.write(this._batch);
    this.correlator.process(this._batch);
  }
}
