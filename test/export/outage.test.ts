// Collector outages against a real OTLP receiver that goes away and comes back, refuses, or hangs: spans wait in
// the bounded queue while the endpoint cannot be reached and all arrive once it is back, for both protocols; what
// is lost (queue full, unsent at the shutdown deadline, refused for good) is counted.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { CountingBatchProcessor, DEFAULT_BATCH_OPTIONS } from '../../src/export/batch-processor.js';
import type { BatchOptions } from '../../src/export/batch-processor.js';
import { isRetryableExportError } from '../../src/export/export-errors.js';
import { createOtlpExporter } from '../../src/export/otlp.js';
import type { OtlpProtocol } from '../../src/export/otlp.js';
import { withReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver } from '../../harness/otlp-receiver.js';
import { endSpans } from '../../harness/spans.js';
import { waitFor } from '../../harness/wait.js';

const PROTOCOLS: readonly OtlpProtocol[] = ['grpc', 'http/protobuf'];

function processorFor(
  receiver: OtlpReceiver,
  protocol: OtlpProtocol,
  opts: Partial<BatchOptions> = {},
  timeoutMillis = 2_000,
): CountingBatchProcessor {
  const url = protocol === 'grpc' ? receiver.grpcUrl : `${receiver.httpUrl}/v1/traces`;
  return new CountingBatchProcessor(createOtlpExporter({ protocol, url, headers: {}, timeoutMillis }), {
    ...DEFAULT_BATCH_OPTIONS,
    scheduledDelayMillis: 50,
    exportTimeoutMillis: timeoutMillis,
    ...opts,
  });
}

const lost = (p: CountingBatchProcessor) => ({ failed: p.stats.failed, dropped: p.stats.dropped });

void test('retryable export errors are the OTLP specification lists, and errors without a status', () => {
  const withCode = (code: number) => Object.assign(new Error(`code ${code}`), { code });
  for (const code of [1, 4, 8, 10, 11, 14, 15, 408, 429, 502, 503, 504])
    assert.equal(isRetryableExportError(withCode(code)), true, `code ${code}`);
  for (const code of [2, 3, 5, 7, 12, 13, 16, 400, 401, 403, 404, 413, 500])
    assert.equal(isRetryableExportError(withCode(code)), false, `code ${code}`);
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  assert.equal(isRetryableExportError(refused), true);
  assert.equal(isRetryableExportError(new Error('export timed out after 10000 ms')), true);
});

for (const protocol of PROTOCOLS) {
  void test(`${protocol}: through a 10 s outage spans wait in the queue, then all arrive within seconds`, () =>
    withReceiver(async (receiver) => {
      const processor = processorFor(receiver, protocol);
      try {
        endSpans(processor, 1000, 'before');
        // Stopped with an export in flight, the collector may have taken a batch that then counts as unsent.
        await waitFor(() => processor.stats.exported === 1000, 'the first spans exported');
        await receiver.stop();
        // Ten seconds of spans while the collector is away: long enough for per-batch retries to give up, and
        // for grpc-js to back off reconnecting well past the processor's 2 s probes.
        for (let i = 0; i < 10; i++) {
          endSpans(processor, 300, `during ${i}`);
          await sleep(1000);
        }
        assert.notEqual(processor.stats.outageSince, undefined, 'the outage is noticed');
        assert.equal(processor.stats.outages, 1);
        assert.deepEqual(lost(processor), { failed: 0, dropped: 0 });
        assert.equal(processor.backlog, 3000);

        await receiver.restart();
        const backAt = Date.now();
        await receiver.waitForSpans(4000, 15_000);
        const drainedInMs = Date.now() - backAt;
        assert.ok(drainedInMs < 6_000, `the backlog drained ${drainedInMs} ms after the collector came back`);
        await processor.forceFlush();
        assert.equal(processor.stats.exported, 4000);
        assert.deepEqual(lost(processor), { failed: 0, dropped: 0 });
        assert.equal(processor.stats.outageSince, undefined);
        assert.equal(processor.stats.lastOutage?.delayed, 3000);
        assert.equal(processor.stats.lastOutage?.dropped, 0);
        assert.equal(new Set(receiver.spans.map((s) => s.name)).size, 4000, 'each span once');
      } finally {
        await processor.shutdown(1_000);
      }
    }));

  void test(`${protocol}: a collector answering UNAVAILABLE 50 times loses nothing`, () =>
    withReceiver(async (receiver) => {
      // A short export timeout keeps the HTTP exporter from retrying inside one attempt: one refusal per probe.
      const processor = processorFor(receiver, protocol, { probeMinMillis: 5, probeMaxMillis: 20 }, 500);
      try {
        receiver.failWith('unavailable');
        endSpans(processor, 2000);
        await waitFor(() => receiver.failures.refused >= 50, '50 refusals', 20_000);
        receiver.failWith('none');
        await receiver.waitForSpans(2000);
        await processor.forceFlush();
        assert.equal(processor.stats.exported, 2000);
        assert.deepEqual(lost(processor), { failed: 0, dropped: 0 });
        assert.equal(processor.stats.outages, 1);
      } finally {
        await processor.shutdown(1_000);
      }
    }));

  void test(`${protocol}: a batch the collector refuses for good is counted as failed, without an outage`, () =>
    withReceiver(async (receiver) => {
      const processor = processorFor(receiver, protocol);
      try {
        receiver.failWith('reject');
        endSpans(processor, 100);
        await processor.forceFlush();
        assert.deepEqual(lost(processor), { failed: 100, dropped: 0 });
        assert.equal(processor.stats.outages, 0);
        assert.match(processor.stats.lastError ?? '', /reject|Bad Request/);
      } finally {
        await processor.shutdown(1_000);
      }
    }));
}

void test('a full queue during an outage drops the newest spans, counted, and the rest arrive', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, 'http/protobuf', { maxQueueSize: 1000 });
    try {
      await receiver.stop();
      endSpans(processor, 800, 'first');
      await waitFor(() => processor.stats.outageSince !== undefined, 'the outage');
      endSpans(processor, 700, 'then');
      assert.deepEqual(lost(processor), { failed: 0, dropped: 500 });
      await receiver.restart();
      await receiver.waitForSpans(1000);
      await processor.forceFlush();
      assert.equal(processor.stats.exported, 1000);
      assert.deepEqual(processor.stats.lastOutage && { ...processor.stats.lastOutage, durationMs: 0 }, {
        durationMs: 0,
        delayed: 1000,
        dropped: 500,
      });
    } finally {
      await processor.shutdown(1_000);
    }
  }));

for (const [what, breakIt] of [
  ['down', (r: OtlpReceiver) => r.stop()],
  ['hung', (r: OtlpReceiver) => r.failWith('hang')],
] as const) {
  void test(`shutdown with the collector ${what} ends by its deadline and counts the unsent spans as dropped`, () =>
    withReceiver(async (receiver) => {
      const processor = processorFor(receiver, 'grpc', {}, 10_000);
      await breakIt(receiver);
      endSpans(processor, 800);
      await sleep(200);
      const t0 = Date.now();
      await processor.shutdown(500);
      const tookMs = Date.now() - t0;
      assert.ok(tookMs < 2_000, `shutdown took ${tookMs} ms`);
      assert.deepEqual(
        {
          ...lost(processor),
          droppedAtExit: processor.stats.droppedAtExit,
          exported: processor.stats.exported,
        },
        { failed: 0, dropped: 800, droppedAtExit: 800, exported: 0 },
      );
      assert.equal(processor.backlog, 0);
    }));
}

void test('a producer that can wait is held back while the queue is over half full, then let through', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, 'http/protobuf', {
      maxQueueSize: 1000,
      minExportBatchSize: 4096,
    });
    try {
      await receiver.stop();
      endSpans(processor, 700);
      assert.equal(processor.hasRoom(), false);
      let released = false;
      const waiting = processor.waitForRoom().then(() => (released = true));
      await sleep(300);
      assert.equal(released, false, 'held while the collector is away');
      await receiver.restart();
      await waiting;
      assert.ok(processor.backlog <= 500);
      await processor.forceFlush();
      assert.equal(processor.stats.exported, 700);
    } finally {
      await processor.shutdown(1_000);
    }
  }));

void test('a collector back with a refusal for good ends the outage: that batch fails, the next spans go out', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, 'http/protobuf', { probeMinMillis: 20, probeMaxMillis: 50 });
    try {
      await receiver.stop();
      endSpans(processor, 100, 'refused');
      await waitFor(() => processor.stats.outageSince !== undefined, 'the outage');
      receiver.failWith('reject');
      await receiver.restart();
      await waitFor(() => processor.stats.failed === 100, 'the refusal');
      assert.equal(processor.stats.outageSince, undefined);
      receiver.failWith('none');
      endSpans(processor, 50, 'after');
      await processor.forceFlush();
      assert.equal(processor.stats.exported, 50);
      assert.equal(receiver.spans.length, 50);
    } finally {
      await processor.shutdown(1_000);
    }
  }));

void test('a producer waiting for room goes on once exports made no progress for stallMillis', () =>
  withReceiver(async (receiver) => {
    const processor = processorFor(receiver, 'grpc', { maxQueueSize: 1000, stallMillis: 300 });
    try {
      await receiver.stop();
      endSpans(processor, 700);
      assert.equal(processor.hasRoom(), false);
      await processor.waitForRoom();
      assert.equal(processor.hasRoom(), true, 'stalled: producers go on as live ones do');
      endSpans(processor, 600);
      assert.equal(processor.stats.dropped, 300, 'the queue holds what it can; the rest is counted');
      await receiver.restart();
      await waitFor(() => processor.stats.exported === 1000, 'the queue exported');
      endSpans(processor, 600);
      assert.equal(processor.hasRoom(), false, 'progress again: waiting for room again');
    } finally {
      await processor.shutdown(1_000);
    }
  }));
