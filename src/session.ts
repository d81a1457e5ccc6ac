/**
 * A pipeline session (one id space: an h2olog connection, a replay, a traced process) and what carries its records
 * to the mapper: its correlator, the join of a hybrid source's records with its events, and the feed that releases
 * an ended session's records as the processor makes room.
 */
import type { Correlator } from './correlate/correlator.js';
import { QuicConnectionJoin } from './correlate/quic-join.js';
import type { ConnectionRecord, RecordSink, RequestRecord } from './correlate/records.js';
import type { EventRecorder } from './events/recorder.js';
import type { ProbeEvent } from './events/types.js';
import type { CountingBatchProcessor } from './export/batch-processor.js';
import type { QlogSession } from './export/qlog.js';
import type { SourceSink } from './sources/sink.js';

/**
 * The records a session's end releases at once (every connection still open: 100k after a big replay, or all of
 * H2O's at each restart under --socket) go on as the processor makes room instead of overflowing its queue. While
 * nothing is waiting and there is room, they go straight through, so a small flush completes synchronously.
 */
export class EndOfSessionFeed {
  private _records: (RequestRecord | ConnectionRecord)[] = [];
  private _isConnection: boolean[] = [];
  private _next = 0;
  private _feeding: Promise<void> | undefined;

  constructor(
    private readonly _sink: RecordSink,
    private readonly _processor: CountingBatchProcessor,
  ) {}

  get busy(): boolean {
    return this._feeding !== undefined;
  }

  request(req: RequestRecord): void {
    if (this._direct()) this._sink.requestCompleted(req);
    else this._defer(req, false);
  }

  connection(conn: ConnectionRecord): void {
    if (this._direct()) this._sink.connectionClosed(conn);
    else this._defer(conn, true);
  }

  /** Resolves once every deferred record has been handed on (sessions may keep ending meanwhile). */
  async done(): Promise<void> {
    while (this._feeding !== undefined) await this._feeding;
  }

  /** Forget the records not handed on yet; how many they were. */
  abandon(): number {
    const left = this._records.length - this._next;
    this._records = [];
    this._isConnection = [];
    this._next = 0;
    return left;
  }

  private _direct(): boolean {
    return this._feeding === undefined && this._processor.hasRoom();
  }

  private _defer(record: RequestRecord | ConnectionRecord, isConnection: boolean): void {
    this._records.push(record);
    this._isConnection.push(isConnection);
    this._feeding ??= this._feed();
  }

  private async _feed(): Promise<void> {
    while (this._next < this._records.length) {
      await this._processor.waitForRoom();
      for (; this._next < this._records.length && this._processor.hasRoom(); this._next++) {
        const record = this._records[this._next]!;
        if (this._isConnection[this._next] === true) this._sink.connectionClosed(record as ConnectionRecord);
        else this._sink.requestCompleted(record as RequestRecord);
      }
    }
    this.abandon();
    this._feeding = undefined;
  }
}

/**
 * The request probe's HTTP/3 requests wait at most this long for their QUIC connection's events (hybrid tracing):
 * a few of the rings' poll intervals.
 */
const QUIC_JOIN_HOLD_MS = 250;

/**
 * One session: its correlator's records go to the mapper, or through the end feed once the session ended. A
 * session two sources feed (hybrid tracing: events and finished records) joins the records' HTTP/3 requests to the
 * connections the events made.
 */
export class Session implements SourceSink, RecordSink {
  readonly correlator: Correlator;
  private _ended = false;
  private _join: QuicConnectionJoin | undefined;
  private _nowMs = 0;
  /** The time of the latest event handed on (hybrid: how far the events' ring has been read). */
  private _eventsMs = 0;
  private readonly _ready: RequestRecord[] = [];

  constructor(
    correlator: (sink: RecordSink) => Correlator,
    private readonly _records: RecordSink,
    private readonly _endFeed: EndOfSessionFeed,
    private readonly _recorder: EventRecorder | undefined,
    private readonly _qlog: QlogSession | undefined,
    private readonly _open: Set<Session>,
  ) {
    this.correlator = correlator(this);
  }

  /** QUIC connections the events ended, once their late requests had their chance to join. */
  private _handOnClosed(all: boolean): void {
    const closed: ConnectionRecord[] = [];
    this._join?.releaseClosed(this._nowMs, closed, all);
    for (const c of closed) this._records.connectionClosed(c);
  }

  private _handOnReady(): void {
    for (const r of this._ready) this._records.requestCompleted(r);
    this._ready.length = 0;
  }

  requestCompleted(req: RequestRecord): void {
    if (this._ended) this._endFeed.request(req);
    else this._records.requestCompleted(req);
  }

  connectionClosed(conn: ConnectionRecord): void {
    // Hybrid: an HTTP/3 request may still be on its way through the other ring.
    if (!this._ended && this._join !== undefined && conn.protocol === 'http/3')
      return this._join.deferClose(conn, this._nowMs);
    if (this._ended) this._endFeed.connection(conn);
    else this._records.connectionClosed(conn);
  }

  /** Two sources feed this session, one with events and one with finished records: join them (hybrid). */
  joinRecordsToEvents(): void {
    this._join ??= new QuicConnectionJoin(
      (id) => this.correlator.connectionRecord(id),
      QUIC_JOIN_HOLD_MS,
      (id, stream) => this.correlator.takeStreamEvents(id, stream),
      this.correlator.opts.maxSpanEvents,
      () => this._eventsMs,
    );
  }

  pushEvents(events: readonly ProbeEvent[]): void {
    if (this._ended) return;
    const last = events[events.length - 1];
    if (last !== undefined && last.timeMs > this._eventsMs) this._eventsMs = last.timeMs;
    if (this._eventsMs > this._nowMs) this._nowMs = this._eventsMs;
    this._recorder?.write(events);
    this._qlog?.write(events);
    this.correlator.process(events);
    // Hybrid: requests waiting for these events go on.
    if (this._join !== undefined && this._join.held > 0) {
      this._join.release(this._nowMs, this._ready);
      this._handOnReady();
    }
  }

  pushRecords(requests: readonly RequestRecord[], connections: readonly ConnectionRecord[]): void {
    if (this._ended) return;
    const join = this._join;
    if (join === undefined) {
      for (const r of requests) this._records.requestCompleted(r);
      for (const c of connections) this._records.connectionClosed(c);
      return;
    }
    for (const r of requests)
      if (r.end !== undefined && r.end.timeMs > this._nowMs) this._nowMs = r.end.timeMs;
    join.take(requests, this._nowMs, this._ready);
    // A connection's requests all go before it ends.
    join.releaseOf(connections, this._ready);
    this._handOnReady();
    for (const c of connections) if (join.keeps(c)) this._records.connectionClosed(c);
  }

  tick(nowMs: number): void {
    this.correlator.tick(nowMs);
    const join = this._join;
    if (join === undefined || (join.held === 0 && join.closing === 0)) return;
    if (nowMs > this._nowMs) this._nowMs = nowMs;
    join.release(this._nowMs, this._ready);
    this._handOnReady();
    this._handOnClosed(false);
  }

  end(): void {
    if (this._ended) return;
    this._join?.release(this._nowMs, this._ready, true);
    this._handOnReady();
    this._handOnClosed(true);
    this._ended = true;
    this.correlator.flush('source_ended');
    this._qlog?.end();
    this._open.delete(this);
  }
}

/** A session two sources feed (hybrid tracing: one process, two rings): it ends when both have ended it. */
export class SharedSession {
  private _handles = 0;

  constructor(
    private readonly _session: Session,
    private readonly _forget: () => void,
  ) {}

  handle(): SourceSink {
    // A second source on the same process: the request probe beside the QUIC probes.
    if (++this._handles === 2) this._session.joinRecordsToEvents();
    let ended = false;
    const session = this._session;
    return {
      pushEvents: (events) => session.pushEvents(events),
      pushRecords: (requests, connections) => session.pushRecords(requests, connections),
      end: () => {
        if (ended) return;
        ended = true;
        if (--this._handles > 0) return;
        this._forget();
        session.end();
      },
    };
  }
}
