// The wiring on plain data: sessions, the records path beside the events path, and what the decode plan asks.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import { Correlator, DEFAULT_CORRELATOR_OPTIONS } from '../src/correlate/correlator.js';
import { newConnectionRecord, newRequestRecord } from '../src/correlate/records.js';
import type { ConnectionRecord, RequestRecord } from '../src/correlate/records.js';
import { JsonLineDecoder } from '../src/events/decode-json.js';
import { EventRecorder } from '../src/events/recorder.js';
import { newDecodeStats } from '../src/events/types.js';
import type { ProbeEvent } from '../src/events/types.js';
import { QlogDirectory } from '../src/export/qlog.js';
import { fixture } from '../harness/cli.js';
import { replayInto, testPipeline } from '../harness/pipeline.js';
import { spanShapes } from '../harness/span-shape.js';

const HEADERS = { request: ['x-request-id'], response: [], sanitize: [], maxValueLength: 64 };

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
    const viaEvents = testPipeline(HEADERS);
    const s1 = viaEvents.pipeline.open();
    s1.pushEvents(events);
    s1.end();
    await viaEvents.pipeline.processor.forceFlush();

    const requests: RequestRecord[] = [];
    const connections: ConnectionRecord[] = [];
    const correlator = new Correlator(DEFAULT_CORRELATOR_OPTIONS, {
      requestCompleted: (r) => void requests.push(r),
      connectionClosed: (c) => void connections.push(c),
    });
    correlator.process(events);
    correlator.flush();
    const viaRecords = testPipeline(HEADERS);
    const s2 = viaRecords.pipeline.open();
    s2.pushRecords(requests, connections);
    s2.end();
    await viaRecords.pipeline.processor.forceFlush();

    const fromEvents = viaEvents.exporter.getFinishedSpans();
    assert.ok(fromEvents.length >= 2, name);
    assert.deepEqual(spanShapes(viaRecords.exporter.getFinishedSpans()), spanShapes(fromEvents), name);
    assert.equal(viaRecords.pipeline.stats.correlate.requests, 0, 'records skip the correlator');
  }
});

test('sessions are separate id spaces that run side by side; end() completes every open one', async () => {
  const events = await eventsOf('http2.jsonl');
  const { pipeline: p, exporter } = testPipeline(HEADERS);
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
    const t = testPipeline(HEADERS);
    const spans = spanShapes(await replayInto(t, bytes, chunk));
    return { spans, events: t.pipeline.stats.decode.events };
  };
  const whole = await shapes(bytes.length);
  const cut = await shapes(7);
  assert.ok(whole.events > 40);
  assert.deepEqual(cut, whole);
});

test('the decode plan reads only what spans use, unless --record or --qlog-dir needs every line whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-plan-'));
  try {
    const plain = testPipeline(HEADERS).pipeline.decode;
    assert.equal(plain.usesHeader?.('x-request-id', true), true);
    assert.equal(plain.usesHeader?.(':path', true), true);
    assert.equal(plain.usesHeader?.('upgrade', true), true, 'the correlator reads it (h2c)');
    assert.equal(plain.usesHeader?.('accept-language', true), false);
    assert.ok(plain.json.fieldUses !== undefined && plain.json.fieldSubsets !== undefined);
    assert.ok(Array.isArray(plain.usedHeaderNames?.request));

    const recorder = new EventRecorder(join(dir, 'r.jsonl'));
    const recorded = testPipeline(HEADERS, { recorder }).pipeline.decode;
    assert.equal(recorded.usesHeader, undefined);
    assert.equal(recorded.usedHeaderNames, undefined);
    assert.equal(recorded.json.fieldUses, undefined);
    await recorder.close();

    const qlog = await QlogDirectory.open(join(dir, 'q'), 1 << 20);
    const withQlog = testPipeline(HEADERS, { qlog }).pipeline.decode;
    assert.equal(withQlog.json.fieldUses, undefined);
    assert.equal(withQlog.json.fieldSubsets, undefined);
    assert.equal(withQlog.usesHeader?.('accept-language', true), false, 'qlog needs no headers');
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('two sources of one process share its session (open(key)): HTTP/3 records join the QUIC connection of events', async () => {
  // The QUIC probes' events of the capture (hybrid tracing attaches no HTTP-level probe), and the request as the
  // request probe reports it, on a connection record of its own for the same conn id.
  const requestLevel = new Set([
    'receive_request',
    'receive_request_header',
    'send_response',
    'send_response_header',
  ]);
  const events = (await eventsOf('http3.jsonl')).filter(
    (e) => !requestLevel.has(e.type) && e.type !== 'h3s_stream_stats',
  );
  const { pipeline: p, exporter } = testPipeline(HEADERS);
  const quic = p.open('pid:1');
  const requests = p.open('pid:1');
  assert.equal(p.sessions, 1, 'one session for the process');
  const ownConn = newConnectionRecord(19, 'http/3', 0, events[0]!, undefined);
  ownConn.requestCount = 1;
  const req = newRequestRecord(ownConn, 1, events[10]!, undefined);
  req.status = 200;
  req.end = events[events.length - 1]!;
  quic.pushEvents(events.slice(0, 20));
  requests.pushRecords([req], []);
  quic.pushEvents(events.slice(20));
  // The request probe's own record of the connection closes later: it made no span of its own.
  requests.pushRecords([], [ownConn]);
  quic.end();
  assert.equal(p.sessions, 1);
  requests.end();
  await p.processor.forceFlush();
  const spans = exporter.getFinishedSpans();
  const conns = spans.filter((s) => s.name === 'QUIC connection');
  assert.equal(conns.length, 1, spans.map((s) => s.name).join());
  const request = spans.find((s) => s.kind === SpanKind.SERVER)!;
  assert.equal(request.links[0]?.context.spanId, conns[0]!.spanContext().spanId);
  assert.equal(conns[0]!.attributes['h2o.request_count'], 1);
  assert.ok(conns[0]!.attributes['h2o.quic.original_dcid'] !== undefined, 'the events made it');
});

test('one source per key: a session opened with a key alone is no hybrid (connection closes are not held)', async () => {
  const events = await eventsOf('http3.jsonl');
  const { pipeline: p, exporter } = testPipeline(HEADERS);
  const only = p.open('pid:2');
  only.pushEvents(events);
  await p.processor.forceFlush();
  assert.ok(
    exporter.getFinishedSpans().some((s) => s.name === 'QUIC connection'),
    'the QUIC connection span goes out when the events end it, before the session ends',
  );
  only.end();
});
