// The wiring on plain data: sessions, the records path beside the events path, and what the decode plan asks.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AlwaysOnSampler, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { defaultResource } from '@opentelemetry/resources';
import { Correlator, DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import type { ConnectionRecord, RequestRecord } from '../src/correlate/records.js';
import { JsonLineDecoder } from '../src/events/decode-json.js';
import { EventRecorder } from '../src/events/recorder.js';
import { newDecodeStats } from '../src/events/types.js';
import type { ProbeEvent } from '../src/events/types.js';
import { DEFAULT_BATCH_OPTIONS } from '../src/export/batch-processor.js';
import { QlogDirectory } from '../src/export/qlog.js';
import { buildPipeline } from '../src/pipeline.js';
import type { PipelineEdges } from '../src/pipeline.js';
import { JsonLinesSession } from '../src/sources/json-lines.js';
import { fixture } from '../harness/cli.js';
import { spanShapes } from '../harness/span-shape.js';

function pipelineTo(exporter: InMemorySpanExporter, edges: Partial<PipelineEdges> = {}) {
  return buildPipeline(
    {
      correlator: DEFAULT_CORRELATOR_OPTIONS,
      maxLineBytes: 1 << 20,
      headers: { request: ['x-request-id'], response: [], sanitize: [], maxValueLength: 64 },
      sensitiveQueryParams: [],
      sampler: new AlwaysOnSampler(),
      resource: defaultResource(),
      batch: DEFAULT_BATCH_OPTIONS,
    },
    { exporter, ...edges },
  );
}

async function eventsOf(name: string): Promise<ProbeEvent[]> {
  const out: ProbeEvent[] = [];
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20 }, newDecodeStats());
  d.push(await readFile(fixture(name)), out);
  d.end(out);
  return out;
}

test('finished records pushed by a source give the spans the same requests give as events', async () => {
  for (const name of ['http1.jsonl', 'http2.jsonl', 'http3.jsonl', 'h2c.jsonl']) {
    const events = await eventsOf(name);
    const viaEvents = new InMemorySpanExporter();
    const p1 = pipelineTo(viaEvents);
    const s1 = p1.open();
    s1.pushEvents(events);
    s1.end();
    await p1.processor.forceFlush();

    const requests: RequestRecord[] = [];
    const connections: ConnectionRecord[] = [];
    const correlator = new Correlator(DEFAULT_CORRELATOR_OPTIONS, {
      requestCompleted: (r) => void requests.push(r),
      connectionClosed: (c) => void connections.push(c),
    });
    correlator.process(events);
    correlator.flush();
    const viaRecords = new InMemorySpanExporter();
    const p2 = pipelineTo(viaRecords);
    const s2 = p2.open();
    s2.pushRecords(requests, connections);
    s2.end();
    await p2.processor.forceFlush();

    assert.ok(viaEvents.getFinishedSpans().length >= 2, name);
    assert.deepEqual(
      spanShapes(viaRecords.getFinishedSpans()),
      spanShapes(viaEvents.getFinishedSpans()),
      name,
    );
    assert.equal(p2.stats.correlate.requests, 0, 'records skip the correlator');
  }
});

test('sessions are separate id spaces that run side by side; end() completes every open one', async () => {
  const events = await eventsOf('http2.jsonl');
  const exporter = new InMemorySpanExporter();
  const p = pipelineTo(exporter);
  const a = p.open();
  const b = p.open();
  // The same conn ids in both: two connections, not one.
  a.pushEvents(events);
  b.pushEvents(events);
  assert.equal(p.sessions, 2);
  assert.equal(p.openConnections, 2);
  p.end();
  assert.equal(p.openConnections, 0);
  await p.processor.forceFlush();
  const spans = exporter.getFinishedSpans();
  assert.equal(spans.filter((s) => s.name === 'HTTP/2 connection').length, 2);
  // An ended session takes nothing more.
  a.pushEvents(events);
  assert.equal(p.openConnections, 0);
});

test('JSON lines are cut anywhere and still decode to the same spans', async () => {
  const bytes = await readFile(fixture('http3.jsonl'));
  const shapes = async (chunk: number) => {
    const exporter = new InMemorySpanExporter();
    const p = pipelineTo(exporter);
    const s = new JsonLinesSession(p);
    for (let off = 0; off < bytes.length; off += chunk) s.push(bytes.subarray(off, off + chunk));
    s.end();
    await p.processor.forceFlush();
    return { spans: spanShapes(exporter.getFinishedSpans()), events: p.stats.decode.events };
  };
  const whole = await shapes(bytes.length);
  const cut = await shapes(7);
  assert.ok(whole.events > 40);
  assert.deepEqual(cut, whole);
});

test('the decode plan reads only what spans use, unless --record or --qlog-dir needs every line whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-plan-'));
  try {
    const plain = pipelineTo(new InMemorySpanExporter()).decode;
    assert.equal(plain.usesHeader?.('x-request-id', true), true);
    assert.equal(plain.usesHeader?.(':path', true), true);
    assert.equal(plain.usesHeader?.('upgrade', true), true, 'the correlator reads it (h2c)');
    assert.equal(plain.usesHeader?.('accept-language', true), false);
    assert.ok(plain.json.fieldUses !== undefined && plain.json.fieldSubsets !== undefined);
    assert.ok(Array.isArray(plain.usedHeaderNames?.request));

    const recorder = new EventRecorder(join(dir, 'r.jsonl'));
    const recorded = pipelineTo(new InMemorySpanExporter(), { recorder }).decode;
    assert.equal(recorded.usesHeader, undefined);
    assert.equal(recorded.usedHeaderNames, undefined);
    assert.equal(recorded.json.fieldUses, undefined);
    await recorder.close();

    const qlog = await QlogDirectory.open(join(dir, 'q'), 1 << 20);
    const withQlog = pipelineTo(new InMemorySpanExporter(), { qlog }).decode;
    assert.equal(withQlog.json.fieldUses, undefined);
    assert.equal(withQlog.json.fieldSubsets, undefined);
    assert.equal(withQlog.usesHeader?.('accept-language', true), false, 'qlog needs no headers');
  } finally {
    await rm(dir, { recursive: true });
  }
});
