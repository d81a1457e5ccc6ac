/**
 * A span processor with a bounded queue that counts everything: spans queued, exported, failed after retries,
 * and dropped because the queue was full. The SDK's BatchSpanProcessor drops silently (one warn log) and keeps
 * one export in flight; at tens of thousands of spans per second we need several and need to say what was lost.
 */
import type { Context } from '@opentelemetry/api';
import { TraceFlags } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { ReadableSpan, Span, SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import PQueue from 'p-queue';
import pRetry, { AbortError } from 'p-retry';

export interface BatchOptions {
  /** Spans waiting for export at most; beyond it new spans are dropped and counted. */
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
  /** Attempts per batch (first try included) before its spans count as failed. */
  readonly maxAttempts: number;
}

export const DEFAULT_BATCH_OPTIONS: BatchOptions = {
  maxQueueSize: 65_536,
  minExportBatchSize: 512,
  maxExportBatchSize: 4_096,
  scheduledDelayMillis: 1_000,
  exportTimeoutMillis: 10_000,
  maxConcurrentExports: 4,
  maxAttempts: 5,
};

export interface ExportStats {
  queued: number;
  exported: number;
  /** Spans whose batch still failed after every attempt (collector down or refusing). */
  failed: number;
  /** Spans dropped because the queue was full. */
  dropped: number;
  exportErrors: number;
  lastError: string | undefined;
}

export class CountingBatchProcessor implements SpanProcessor {
  readonly stats: ExportStats = {
    queued: 0,
    exported: 0,
    failed: 0,
    dropped: 0,
    exportErrors: 0,
    lastError: undefined,
  };
  private _buffer: ReadableSpan[] = [];
  private readonly _exports: PQueue;
  private _timer: NodeJS.Timeout | undefined;
  private readonly _abort = new AbortController();
  private _shutdown: Promise<void> | undefined;
  private readonly _minBatch: number;

  constructor(
    private readonly _exporter: SpanExporter,
    private readonly _opts: BatchOptions,
  ) {
    this._exports = new PQueue({ concurrency: _opts.maxConcurrentExports });
    this._minBatch = Math.max(1, Math.min(_opts.minExportBatchSize, _opts.maxExportBatchSize));
  }

  get queueLength(): number {
    return this._buffer.length;
  }

  onStart(_span: Span, _parentContext: Context): void {}

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this._buffer.length >= this._opts.maxQueueSize) {
      this.stats.dropped++;
      return;
    }
    this._buffer.push(span);
    this.stats.queued++;
    if (this._batchReady()) this._drain(false);
    else this._timer ??= setTimeout(() => this._onTimer(), this._opts.scheduledDelayMillis).unref();
  }

  /** Export everything queued and wait for it (bounded by each export's timeout and retries). */
  async forceFlush(): Promise<void> {
    for (;;) {
      this._drain(true);
      await this._exports.onIdle();
      if (this._buffer.length === 0) return;
    }
  }

  /** Flush within `deadlineMs`; what is still unsent then is counted as failed. Idempotent. */
  shutdown(deadlineMs = 5_000): Promise<void> {
    this._shutdown ??= this._doShutdown(deadlineMs);
    return this._shutdown;
  }

  private async _doShutdown(deadlineMs: number): Promise<void> {
    const deadline = setTimeout(() => this._abort.abort(), deadlineMs).unref();
    try {
      await this.forceFlush();
    } finally {
      clearTimeout(deadline);
      this.stats.failed += this._buffer.length;
      this._buffer = [];
      await this._exporter.shutdown().catch(() => undefined);
    }
  }

  private _onTimer(): void {
    this._timer = undefined;
    this._drain(true);
  }

  private _slotFree(): boolean {
    return this._exports.size + this._exports.pending < this._opts.maxConcurrentExports;
  }

  /**
   * A full batch, or the minimum while no export is in flight. Under a sustained backlog some export always is,
   * so batches stay full and the exporter's throughput is that of full batches.
   */
  private _batchReady(): boolean {
    const n = this._buffer.length;
    if (n >= this._opts.maxExportBatchSize) return this._slotFree();
    return n >= this._minBatch && this._exports.size + this._exports.pending === 0;
  }

  /** Hand ready batches (any size when `all`), each of at most the maximum, to exports while a slot is free. */
  private _drain(all: boolean): void {
    const o = this._opts;
    while (this._buffer.length > 0 && (all ? this._slotFree() : this._batchReady())) {
      const batch =
        this._buffer.length <= o.maxExportBatchSize
          ? this._buffer
          : this._buffer.slice(0, o.maxExportBatchSize);
      this._buffer = batch === this._buffer ? [] : this._buffer.slice(o.maxExportBatchSize);
      void this._exports.add(() => this._exportBatch(batch));
    }
    if (this._buffer.length > 0 && this._timer === undefined) {
      this._timer = setTimeout(() => this._onTimer(), o.scheduledDelayMillis).unref();
    }
  }

  private async _exportBatch(batch: ReadableSpan[]): Promise<void> {
    try {
      await pRetry(() => this._exportOnce(batch), {
        retries: this._opts.maxAttempts - 1,
        minTimeout: 250,
        maxTimeout: 5_000,
        factor: 2,
        randomize: true,
        signal: this._abort.signal,
        onFailedAttempt: ({ error }) => {
          this.stats.exportErrors++;
          this.stats.lastError = error.message;
        },
      });
      this.stats.exported += batch.length;
    } catch (err) {
      this.stats.failed += batch.length;
      this.stats.lastError = err instanceof Error ? err.message : String(err);
    } finally {
      // A finished export frees a slot: keep batches moving without waiting for the timer.
      setImmediate(() => this._drain(false));
    }
  }

  private _exportOnce(batch: ReadableSpan[]): Promise<void> {
    if (this._abort.signal.aborted) return Promise.reject(new AbortError('shutdown deadline reached'));
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
