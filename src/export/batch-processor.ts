/**
 * A span processor with a bounded queue that counts everything: spans queued, exported, refused by the collector,
 * and dropped (queue full, or unsent at the shutdown deadline). The SDK's BatchSpanProcessor drops silently (one
 * warn log) and keeps one export in flight; at tens of thousands of spans per second we need several and need to
 * say what was lost.
 *
 * While the collector cannot be reached (a retryable failure: see export-errors.ts), exporting pauses: spans wait
 * in the queue, one batch at a time probes the endpoint with a capped backoff, and once it succeeds the backlog
 * drains at full concurrency. Retrying each batch on its own would burn its attempts within seconds of an outage
 * and lose it; waiting in the queue loses spans only when the queue is full, and counts them.
 */
import type { Context } from '@opentelemetry/api';
import { TraceFlags } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { withinMs } from './deadline.js';
import { isRetryableExportError } from './export-errors.js';

export interface BatchOptions {
  /** Spans waiting for export or in flight at most; beyond it new spans are dropped and counted. */
  readonly maxQueueSize: number;
  /**
   * An export starts as soon as this many spans wait and no export is in flight, so that spans die young (a span
   * that waits for a big batch outlives V8's young-generation collections and costs a copy to the old one); while
   * exports are in flight, batches fill up to `maxExportBatchSize`, which keeps throughput to a slow collector.
   */
  readonly minExportBatchSize: number;
  readonly maxExportBatchSize: number;
  /** A partial batch is exported after this long (ms). */
  readonly scheduledDelayMillis: number;
  /** One export attempt may take this long (ms). */
  readonly exportTimeoutMillis: number;
  /** Exports in flight at once. */
  readonly maxConcurrentExports: number;
  /** While the collector cannot be reached, a probe is sent after this long (ms), doubling up to the maximum. */
  readonly probeMinMillis: number;
  readonly probeMaxMillis: number;
  /**
   * A producer that can wait for room (a replay, an end-of-session flush) waits while exports progress; after
   * this long (ms) without, it goes on as a live source would: the queue fills and the rest is dropped, counted.
   */
  readonly stallMillis: number;
}

export const DEFAULT_BATCH_OPTIONS: BatchOptions = {
  maxQueueSize: 65_536,
  minExportBatchSize: 512,
  maxExportBatchSize: 4_096,
  scheduledDelayMillis: 1_000,
  exportTimeoutMillis: 10_000,
  maxConcurrentExports: 4,
  probeMinMillis: 250,
  probeMaxMillis: 2_000,
  stallMillis: 5_000,
};

/** An outage that ended: how long, how many spans waited through it, how many were dropped meanwhile. */
export interface OutageRecord {
  readonly durationMs: number;
  readonly delayed: number;
  readonly dropped: number;
}

export interface ExportStats {
  queued: number;
  exported: number;
  /** Spans the collector refused with a status retrying cannot change (bad request, unauthenticated, …). */
  failed: number;
  /** Spans dropped: the queue was full, or they were still unsent at the shutdown deadline. */
  dropped: number;
  /** Of `dropped`, the spans still queued or in flight at the shutdown deadline. */
  droppedAtExit: number;
  /** Failed export attempts of either kind. */
  exportErrors: number;
  lastError: string | undefined;
  /** The last error of a refusal for good. */
  lastRejection: string | undefined;
  /** Outages so far: times the endpoint could not be reached and exporting paused. */
  outages: number;
  /** When (epoch ms) the current outage began; undefined while the collector is reachable. */
  outageSince: number | undefined;
  /** The last outage that ended. */
  lastOutage: OutageRecord | undefined;
  /** When (epoch ms) export attempts began failing, every one since (of either kind); undefined once one succeeds. */
  failingSince: number | undefined;
}

export class CountingBatchProcessor implements SpanProcessor {
  readonly stats: ExportStats = {
    queued: 0,
    exported: 0,
    failed: 0,
    dropped: 0,
    droppedAtExit: 0,
    exportErrors: 0,
    lastError: undefined,
    lastRejection: undefined,
    outages: 0,
    outageSince: undefined,
    lastOutage: undefined,
    failingSince: undefined,
  };
  private _buffer: ReadableSpan[] = [];
  /** Spans in exports not yet settled, and those exports. */
  private _inFlight = 0;
  private _active = 0;
  private _timer: NodeJS.Timeout | undefined;
  private _probeTimer: NodeJS.Timeout | undefined;
  private _probeDelay: number;
  private _droppedBeforeOutage = 0;
  /** Exports' progress when a wait for room stalled; -1 while none has. */
  private _stalledAt = -1;
  /** Past the shutdown deadline: whatever is unsent has been counted as dropped. */
  private _closed = false;
  /** Woken whenever an export settles (and at close): flushes and back-pressured producers wait on it. */
  private _waiters: (() => void)[] = [];
  private _shutdown: Promise<void> | undefined;
  private readonly _minBatch: number;

  constructor(
    private readonly _exporter: SpanExporter,
    private readonly _opts: BatchOptions,
  ) {
    this._minBatch = Math.max(1, Math.min(_opts.minExportBatchSize, _opts.maxExportBatchSize));
    this._probeDelay = _opts.probeMinMillis;
  }

  /** Spans waiting for an export (not those in flight). */
  get queueLength(): number {
    return this._buffer.length;
  }

  /** Spans waiting or in flight: what the queue bound applies to. */
  get backlog(): number {
    return this._buffer.length + this._inFlight;
  }

  /**
   * Whether a producer that can wait (an end-of-session flush, a replay) may hand over more spans now: the queue
   * is at most half full, or waiting stalled (see `stallMillis`) and nothing was exported or refused since.
   */
  hasRoom(): boolean {
    return (
      this._closed || this.backlog <= this._opts.maxQueueSize / 2 || this._stalledAt === this._progress()
    );
  }

  /**
   * Resolves once `hasRoom()`, exporting everything queued meanwhile rather than waiting for full batches; or
   * once exports made no progress for `stallMillis`.
   */
  async waitForRoom(): Promise<void> {
    let progress = this._progress();
    let movedAt = Date.now();
    while (!this.hasRoom()) {
      this._drain(true);
      await withinMs(this._nextSettle(), Math.max(0, movedAt + this._opts.stallMillis - Date.now()));
      if (this._progress() !== progress) {
        progress = this._progress();
        movedAt = Date.now();
      } else if (Date.now() - movedAt >= this._opts.stallMillis) {
        this._stalledAt = progress;
      }
    }
  }

  private _progress(): number {
    return this.stats.exported + this.stats.failed;
  }

  /** Spans that were never made, for want of time at shutdown, count as dropped at exit like unsent ones. */
  countDroppedAtExit(spans: number): void {
    this.stats.dropped += spans;
    this.stats.droppedAtExit += spans;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this._closed || this.backlog >= this._opts.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this._buffer.push(span);
    this.stats.queued++;
    if (this._batchReady()) this._drain(false);
    else if (this.stats.outageSince === undefined)
      this._timer ??= setTimeout(() => this._onTimer(), this._opts.scheduledDelayMillis).unref();
    else this._scheduleProbe();
  }

  /** Export everything queued and wait for it; while the collector is away, that waits for it to come back. */
  async forceFlush(): Promise<void> {
    while (!this._closed && this.backlog > 0) {
      this._drain(true);
      await this._nextSettle();
    }
  }

  /**
   * Flush within `deadlineMs`; what is still queued or in flight then is counted as dropped, and the exporter is
   * given what is left of the deadline to close. Idempotent.
   */
  shutdown(deadlineMs = 5_000): Promise<void> {
    this._shutdown ??= this._doShutdown(deadlineMs);
    return this._shutdown;
  }

  private async _doShutdown(deadlineMs: number): Promise<void> {
    const deadlineAt = Date.now() + deadlineMs;
    await withinMs(this.forceFlush(), deadlineMs);
    this.dropUnsent();
    await withinMs(
      this._exporter.shutdown().catch(() => undefined),
      Math.max(0, deadlineAt - Date.now()),
    );
  }

  /** Stop exporting: what is still queued or in flight counts as dropped at exit (later results are ignored). */
  dropUnsent(): void {
    if (this._closed) return;
    this._closed = true;
    const unsent = this.backlog;
    this.stats.dropped += unsent;
    this.stats.droppedAtExit += unsent;
    this._buffer = [];
    this._inFlight = 0;
    clearTimeout(this._timer);
    clearTimeout(this._probeTimer);
    this._wake();
  }

  private _nextSettle(): Promise<void> {
    return new Promise((resolve) => this._waiters.push(resolve));
  }

  private _wake(): void {
    const waiters = this._waiters;
    this._waiters = [];
    for (const wake of waiters) wake();
  }

  private _onTimer(): void {
    this._timer = undefined;
    this._drain(true);
  }

  private _slotFree(): boolean {
    return this.stats.outageSince === undefined && this._active < this._opts.maxConcurrentExports;
  }

  /**
   * A full batch, or the minimum while no export is in flight. Under a sustained backlog some export always is,
   * so batches stay full and the exporter's throughput is that of full batches.
   */
  private _batchReady(): boolean {
    const n = this._buffer.length;
    if (n >= this._opts.maxExportBatchSize) return this._slotFree();
    return n >= this._minBatch && this._active === 0 && this.stats.outageSince === undefined;
  }

  /** Hand ready batches (any size when `all`), each of at most the maximum, to exports while a slot is free. */
  private _drain(all: boolean): void {
    while (this._buffer.length > 0 && (all ? this._slotFree() : this._batchReady())) {
      this._start(this._takeBatch(), false);
    }
    if (this._buffer.length > 0 && this._timer === undefined && this.stats.outageSince === undefined) {
      this._timer = setTimeout(() => this._onTimer(), this._opts.scheduledDelayMillis).unref();
    }
  }

  private _takeBatch(): ReadableSpan[] {
    const max = this._opts.maxExportBatchSize;
    if (this._buffer.length <= max) {
      const batch = this._buffer;
      this._buffer = [];
      return batch;
    }
    const batch = this._buffer.slice(0, max);
    this._buffer = this._buffer.slice(max);
    return batch;
  }

  private _start(batch: ReadableSpan[], probe: boolean): void {
    this._active++;
    this._inFlight += batch.length;
    this._exportOnce(batch).then(
      () => this._settled(batch, probe, undefined),
      (err: unknown) => this._settled(batch, probe, err ?? new Error('export failed')),
    );
  }

  private _settled(batch: ReadableSpan[], probe: boolean, err: unknown): void {
    // Past the deadline these spans were counted as dropped already.
    if (this._closed) return;
    this._active--;
    this._inFlight -= batch.length;
    if (err === undefined) {
      this.stats.exported += batch.length;
      this.stats.failingSince = undefined;
      if (this.stats.outageSince !== undefined) this._recovered(batch.length);
    } else {
      this.stats.exportErrors++;
      this.stats.failingSince ??= Date.now();
      this.stats.lastError = err instanceof Error ? err.message : JSON.stringify(err);
      if (isRetryableExportError(err)) {
        this._unreachable(batch, probe);
      } else {
        this.stats.failed += batch.length;
        this.stats.lastRejection = this.stats.lastError;
        // It answered: reachable again, whatever it thought of this batch.
        if (this.stats.outageSince !== undefined) this._recovered(0);
      }
    }
    this._drain(false);
    if (this.stats.outageSince !== undefined) this._scheduleProbe();
    this._wake();
  }

  /** The batch goes back to the head of the queue, and exporting pauses until a probe gets through. */
  private _unreachable(batch: ReadableSpan[], probe: boolean): void {
    this._buffer = batch.concat(this._buffer);
    if (this.stats.outageSince === undefined) {
      this.stats.outages++;
      this.stats.outageSince = Date.now();
      this._droppedBeforeOutage = this.stats.dropped;
      this._probeDelay = this._opts.probeMinMillis;
      clearTimeout(this._timer);
      this._timer = undefined;
    } else if (probe) {
      this._probeDelay = Math.min(this._probeDelay * 2, this._opts.probeMaxMillis);
    }
  }

  private _recovered(delivered: number): void {
    const since = this.stats.outageSince ?? Date.now();
    this.stats.lastOutage = {
      durationMs: Date.now() - since,
      delayed: delivered + this.backlog,
      dropped: this.stats.dropped - this._droppedBeforeOutage,
    };
    this.stats.outageSince = undefined;
    clearTimeout(this._probeTimer);
    this._probeTimer = undefined;
    this._drain(true);
  }

  /**
   * One probe at a time, once the exports that were in flight when the outage began have failed too. Its timer
   * keeps the process alive: spans are waiting on it (shutdown clears it).
   */
  private _scheduleProbe(): void {
    if (this._probeTimer !== undefined || this._active > 0 || this._buffer.length === 0) return;
    this._probeTimer = setTimeout(() => {
      this._probeTimer = undefined;
      if (!this._closed && this._buffer.length > 0) this._start(this._takeBatch(), true);
    }, this._probeDelay);
  }

  private _exportOnce(batch: ReadableSpan[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`export timed out after ${this._opts.exportTimeoutMillis} ms`)),
        this._opts.exportTimeoutMillis,
      ).unref();
      this._exporter.export(batch, (result) => {
        clearTimeout(timer);
        if (result.code === ExportResultCode.SUCCESS) resolve();
        else reject(result.error ?? new Error('export failed'));
      });
    });
  }
}
