// The batch processor's batching against a real OTLP receiver: an export starts as soon as the minimum batch waits
// and no export is in flight (spans die young); while one is, batches fill to the maximum (throughput).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../../src/export/batch-processor.js';
import type { BatchOptions } from '../../src/export/batch-processor.js';
import { createOtlpExporter } from '../../src/export/otlp.js';
import { withReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver } from '../../harness/otlp-receiver.js';
import { endSpans } from '../../harness/spans.js';

function processorFor(receiver: OtlpReceiver, opts: Partial<BatchOptions>): CountingBatchProcessor {
  return new CountingBatchProcessor(
    createOtlpExporter({ protocol: 'http/protobuf', url: `${receiver.httpUrl}/v1/traces`, headers: {} }),
    // A timer that never fires during the test: every export below is started by the batching rule itself.
    { ...DEFAULT_BATCH_OPTIONS, scheduledDelayMillis: 600_000, ...opts },
  );
}

/** Spans per export request, smallest first: concurrent exports may arrive in any order. */
const spanCounts = (receiver: OtlpReceiver): number[] =>
  receiver.requests
    .filter((r) => r.kind === 'traces')
    .map((r) => r.spanCount)
    .sort((a, b) => a - b);

void test('an export starts once the minimum batch waits and none is in flight, without the timer', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, { minExportBatchSize: 512 });
    try {
      endSpans(processor, 600);
      await receiver.waitForSpans(512, 5_000);
      assert.deepEqual(spanCounts(receiver), [512]);
      assert.equal(processor.queueLength, 88);
      await processor.forceFlush();
      assert.deepEqual(spanCounts(receiver), [88, 512]);
      assert.equal(processor.stats.exported, 600);
    } finally {
      await processor.shutdown();
    }
  }));

void test('while an export is in flight, the waiting spans fill maximum-size batches', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, {
      minExportBatchSize: 512,
      maxExportBatchSize: 4096,
      maxConcurrentExports: 4,
    });
    try {
      endSpans(processor, 5512);
      await processor.forceFlush();
      assert.deepEqual(spanCounts(receiver), [512, 904, 4096]);
      assert.equal(processor.stats.exported, 5512);
      assert.equal(processor.stats.dropped + processor.stats.failed, 0);
    } finally {
      await processor.shutdown();
    }
  }));

void test('a maximum below the minimum is the batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE=100)', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, { minExportBatchSize: 512, maxExportBatchSize: 100 });
    try {
      endSpans(processor, 250);
      await processor.forceFlush();
      assert.deepEqual(spanCounts(receiver), [50, 100, 100]);
    } finally {
      await processor.shutdown();
    }
  }));

void test('failingSince: set by the first failed export, kept through more failures, cleared by a success', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, { minExportBatchSize: 1 });
    try {
      assert.equal(processor.stats.failingSince, undefined);
      receiver.failWith('reject');
      const before = Date.now();
      endSpans(processor, 1);
      await processor.forceFlush();
      const since = processor.stats.failingSince;
      assert.ok(since !== undefined && since >= before && since <= Date.now(), String(since));
      await new Promise((r) => setTimeout(r, 20));
      endSpans(processor, 1);
      await processor.forceFlush();
      assert.equal(processor.stats.failed, 2);
      assert.equal(processor.stats.failingSince, since, 'still failing since the first failure');
      receiver.failWith('none');
      endSpans(processor, 1);
      await processor.forceFlush();
      assert.equal(processor.stats.exported, 1);
      assert.equal(processor.stats.failingSince, undefined);
    } finally {
      await processor.shutdown();
    }
  }));
