// The direct encoder against the SDK's serializer: for every capture in the repository, and for hand-made spans
// with every kind of value, and for spans made from the request probe's records, both requests decoded with the official OTLP .proto files are equal field by field.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SpanKind, SpanStatusCode, TraceFlags } from '@opentelemetry/api';
import { ExportResultCode, TraceState } from '@opentelemetry/core';
import type { ExportResult } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createOtlpExporter } from '../../src/export/otlp.js';
import { OtlpTraceEncoder } from '../../src/export/otlp-encoder.js';
import { AttributeList, attrKey } from '../../src/otel/attribute-list.js';
import { FinishedSpan } from '../../src/otel/finished-span.js';
import { newDecodeStats } from '../../src/events/types.js';
import { KtimeClock } from '../../src/sources/bpf/clock.js';
import { newRequestSessionStats, RequestProcessSession } from '../../src/sources/request/request-session.js';
import { repoRoot } from '../../harness/cli.js';
import { headerRecordBytes, requestRecordBytes } from '../../harness/request-bytes.js';
import { decodeTraceRequest, withReceiver } from '../../harness/otlp-receiver.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';

const HEADERS = {
  request: ['x-request-id', 'cookie'],
  response: ['content-type'],
  sanitize: [],
  maxValueLength: 64,
};

function assertSameAsSdk(spans: ReadableSpan[], what: string): void {
  const sdk = ProtobufTraceSerializer.serializeRequest(spans);
  assert.ok(sdk !== undefined);
  const ours = new OtlpTraceEncoder().encode(spans);
  assert.deepEqual(decodeTraceRequest(ours), decodeTraceRequest(sdk), what);
}

const captures = [
  ...readdirSync(join(repoRoot, 'test', 'fixtures', 'h2olog'))
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => join(repoRoot, 'test', 'fixtures', 'h2olog', f)),
  ...readdirSync(join(repoRoot, 'test', 'fixtures', 'h2olog', 'lab')).map((f) =>
    join(repoRoot, 'test', 'fixtures', 'h2olog', 'lab', f),
  ),
  join(repoRoot, 'examples', 'captures', 'all-protocols.jsonl'),
];

test('every capture: the spans encode as the SDK encodes them', async () => {
  let total = 0;
  for (const path of captures) {
    const spans = await replayInto(testPipeline(HEADERS), readFileSync(path));
    total += spans.length;
    assertSameAsSdk(spans, path);
  }
  assert.ok(total > 100, `${total} spans compared`);
});

test('request-probe records: the spans encode as the SDK encodes them', async () => {
  const t = testPipeline(HEADERS);
  const session = new RequestProcessSession(
    new KtimeClock(0n, 0n),
    t.pipeline.open(),
    newDecodeStats(),
    newRequestSessionStats(),
    { idleMs: 30_000, http1IdleMs: 300_000, maxConnections: 100 },
  );
  const t0 = 1_700_000_000_000_000;
  const times = (us: number) => ({
    connectedAtUs: us,
    requestBeginAtUs: us + 1000,
    responseStartAtUs: us + 1500,
    responseEndAtUs: us + 2000,
    ktimeNs: BigInt(us + 2100) * 1000n,
  });
  const records = [
    headerRecordBytes({ ktimeNs: BigInt(t0 + 2100) * 1000n }, 'x-request-id', 'abc'),
    headerRecordBytes({ ktimeNs: BigInt(t0 + 2100) * 1000n }, 'cookie', 'secret=1'),
    headerRecordBytes(
      { ktimeNs: BigInt(t0 + 2100) * 1000n },
      'traceparent',
      '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    ),
    requestRecordBytes({ ...times(t0), path: '/a?token=x', headerCount: 3, peer: '10.0.0.2:5555' }),
    requestRecordBytes({ ...times(t0 + 10), connId: 2n, version: 0x200, streamId: 3, status: 503 }),
    requestRecordBytes({
      ...times(t0 + 20),
      connId: 3n,
      path: '/proxy/' + 'p'.repeat(300),
      pathLen: 900,
      proxy: { timingsUs: [t0 + 1100, t0 + 1150, t0 + 1200, t0 + 1400, t0 + 1800], written: 77n, read: 900n },
    }),
    requestRecordBytes({ ...times(t0 + 30), connId: 4n, version: 0x300, streamId: 0, method: 'BREW' }),
    requestRecordBytes({ ...times(t0 + 40), connId: 1n, version: 0 }),
  ];
  for (const r of records) session.record(r, 0, r.length);
  session.flush();
  session.end();
  await t.pipeline.flushed();
  const spans = t.exporter.getFinishedSpans();
  const kinds = new Set(spans.map((s) => s.kind));
  assert.ok(spans.length >= 9 && kinds.has(SpanKind.CLIENT) && kinds.has(SpanKind.SERVER), `${spans.length}`);
  assertSameAsSdk(spans, 'request probe');
});

test('one encoder, reused: each request holds only its own batch', async () => {
  const spans = await replayInto(testPipeline(HEADERS), readFileSync(captures[0]!));
  const encoder = new OtlpTraceEncoder();
  const first = encoder.encode(spans);
  const second = encoder.encode(spans.slice(0, 1));
  assert.deepEqual(
    decodeTraceRequest(second),
    decodeTraceRequest(ProtobufTraceSerializer.serializeRequest(spans.slice(0, 1))!),
  );
  assert.deepEqual(decodeTraceRequest(encoder.encode(spans)), decodeTraceRequest(first));
});

test('every value kind, events, links, status, trace state, remote parents, two resources and scopes', () => {
  const resourceA = defaultResource().merge(resourceFromAttributes({ 'service.name': 'a', 'x.n': 3 }));
  const resourceB = resourceFromAttributes(
    { 'service.name': 'b' },
    { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' },
  );
  const ctx = (traceId: string, spanId: string, isRemote?: boolean) => ({
    traceId,
    spanId,
    traceFlags: TraceFlags.SAMPLED,
    isRemote,
    traceState: new TraceState('vendor=x,other=y'),
  });
  const make = (
    resource: typeof resourceA,
    scope: { name: string; version?: string; schemaUrl?: string },
    name: string,
  ): FinishedSpan => {
    const span = new FinishedSpan(
      ctx('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331'),
      ctx('0af7651916cd43dd8448eb211c80319c', '00f067aa0ba902b7', true),
      name,
      SpanKind.CLIENT,
      [1_700_000_000, 123_456_789],
      AttributeList.from({
        s: 'é ✓ long '.repeat(40),
        i: 42,
        neg: -7,
        big: 2 ** 40,
        d: 0.25,
        b: false,
        t: true,
        arr: ['a', 'b'],
        nums: [1, 2.5],
        empty: '',
        shortUtf8: 'é',
        ascii64: 'x'.repeat(64),
        ascii65: 'y'.repeat(65),
        tailUtf8: `${'z'.repeat(63)}ü`,
        control: 'a\u0000\u007f',
      }),
      [
        {
          context: ctx('1af7651916cd43dd8448eb211c80319c', 'a7ad6b7169203331', false),
          attributes: { k: 'v' },
        },
      ],
      resource,
      scope,
    );
    span.endTime = [1_700_000_001, 5];
    span.events.push({ name: 'e1', time: [1_700_000_000, 200_000_000], attributes: { n: 1 } });
    span.events.push({ name: 'e2', time: [1_700_000_000, 300_000_000] });
    span.droppedEventsCount = 3;
    span.status = { code: SpanStatusCode.ERROR, message: 'no response' };
    return span;
  };
  assertSameAsSdk(
    [
      make(resourceA, { name: 'h2o-otel', version: '1.0' }, 'one'),
      make(resourceB, { name: 'other' }, 'two'),
      make(resourceA, { name: 'h2o-otel', version: '1.0' }, 'three'),
      make(resourceA, { name: 'second-scope', version: '2' }, 'four'),
      make(resourceB, { name: 'with-schema', schemaUrl: 'https://example.com/s' }, 'five'),
    ],
    'hand-made',
  );
  assert.equal(new OtlpTraceEncoder().encode([]).length, 0);
  assert.equal(ProtobufTraceSerializer.serializeRequest([])?.length, 0);
});

test('a span encoded from its attribute list is byte for byte the span encoded from the same attributes as an object', () => {
  // Past the registry's bound a name gets a key of its own (id -1): encoded each time, never cached by id.
  let overflow = attrKey('test.fill.0');
  for (let i = 1; overflow.id >= 0; i++) overflow = attrKey(`test.fill.${i}`);
  const list = AttributeList.from({
    'http.request.method': 'GET',
    s: 'é ✓ long '.repeat(40),
    n: -7,
    d: 0.25,
    b: true,
    arr: ['a', 'b'],
    u: undefined,
  });
  list.push(overflow, 'over');
  list.push(attrKey('test.over.other'), 'other');
  list.set(attrKey('http.request.method'), 'POST');
  list.push(attrKey('http.request.header.x-new'), ['v']);
  const context = {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    traceFlags: TraceFlags.SAMPLED,
  };
  const span = new FinishedSpan(
    context,
    undefined,
    'GET',
    SpanKind.SERVER,
    [1_700_000_000, 1],
    list,
    [],
    defaultResource(),
    { name: 'h2o-otel' },
  );
  span.endTime = [1_700_000_000, 2];
  const plain: ReadableSpan = {
    name: span.name,
    kind: span.kind,
    spanContext: () => context,
    parentSpanContext: undefined,
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: { ...span.attributes },
    links: [],
    events: [],
    duration: span.duration,
    ended: true,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: 0,
    droppedEventsCount: 0,
    droppedLinksCount: 0,
  };
  const encoder = new OtlpTraceEncoder();
  const fromList = Buffer.from(encoder.encode([span, span]));
  assert.deepEqual(fromList, Buffer.from(new OtlpTraceEncoder().encode([plain, plain])));
  // Again with the keys cached by id.
  assert.deepEqual(Buffer.from(encoder.encode([span, span])), fromList);
  assertSameAsSdk([span], 'from the list');
});

test('through the exporters: gRPC and HTTP/protobuf, with and without gzip, every span arrives as encoded', async () => {
  const spans = await replayInto(
    testPipeline(HEADERS),
    readFileSync(join(repoRoot, 'examples', 'captures', 'all-protocols.jsonl')),
  );
  const key = (traceId: string, spanId: string, name: string, attributes: number, events: number): string =>
    `${traceId}/${spanId} ${name} ${attributes} attributes ${events} events`;
  const sent = spans
    .map((s) =>
      key(
        s.spanContext().traceId,
        s.spanContext().spanId,
        s.name,
        Object.keys(s.attributes).length,
        s.events.length,
      ),
    )
    .sort();
  for (const protocol of ['grpc', 'http/protobuf'] as const) {
    for (const compression of ['none', 'gzip'] as const) {
      await withReceiver(async (rx) => {
        const url = protocol === 'grpc' ? rx.grpcUrl : `${rx.httpUrl}/v1/traces`;
        const exporter = createOtlpExporter({ protocol, url, headers: {}, compression });
        const result = await new Promise<ExportResult>((resolve) => exporter.export(spans, resolve));
        assert.equal(
          result.code,
          ExportResultCode.SUCCESS,
          `${protocol} ${compression}: ${String(result.error)}`,
        );
        const got = (await rx.waitForSpans(spans.length))
          .map((s) => key(s.traceId, s.spanId, s.name, Object.keys(s.attributes).length, s.events.length))
          .sort();
        assert.deepEqual(got, sent, `${protocol} ${compression}`);
        await exporter.shutdown();
      });
    }
  }
});
