// Disposed-request records (plain bytes, as the probe sends them) through a request session and the pipeline: the
// spans they make, how connections end, and what is counted.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { newDecodeStats } from '../../../src/events/types.js';
import { KtimeClock } from '../../../src/sources/bpf/clock.js';
import {
  newRequestSessionStats,
  RequestProcessSession,
} from '../../../src/sources/request/request-session.js';
import { headerRecordBytes, requestRecordBytes } from '../../../harness/request-bytes.js';
import type { DisposedFields } from '../../../harness/request-bytes.js';
import { testPipeline } from '../../../harness/pipeline.js';

const HEADERS = { request: ['x-custom'], response: [], sanitize: [], maxValueLength: 64 };
const T0_US = 1_700_000_000_000_000;
/** ktime in ns at µs `us` since the epoch (the session's clock offset is 0). */
const kt = (us: number): bigint => BigInt(us) * 1000n;

function setup(idleMs = 30_000, maxConnections = 100, http1IdleMs = 300_000) {
  const t = testPipeline(HEADERS);
  const stats = newRequestSessionStats();
  const decode = newDecodeStats();
  const session = new RequestProcessSession(new KtimeClock(0n, 0n), t.pipeline.open(), decode, stats, {
    idleMs,
    http1IdleMs,
    maxConnections,
  });
  const push = (...records: Buffer[]): void => {
    for (const r of records) session.record(r, 0, r.length);
    session.flush();
  };
  const spans = async (): Promise<ReadableSpan[]> => {
    await t.pipeline.processor.forceFlush();
    return t.exporter.getFinishedSpans();
  };
  return { session, stats, decode, push, spans };
}

const request = (f: DisposedFields): Buffer =>
  requestRecordBytes({
    connectedAtUs: T0_US,
    requestBeginAtUs: T0_US + 1000,
    responseStartAtUs: T0_US + 1500,
    responseEndAtUs: T0_US + 2000,
    ktimeNs: kt(T0_US + 2100),
    ...f,
  });

const nanos = (t: [number, number]): bigint => BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);

test('a request: pseudo-headers from its fields, its headers, H2O timings, true end at dispose', async () => {
  const { push, spans, decode } = setup();
  push(
    headerRecordBytes({ ktimeNs: kt(T0_US + 2100) }, 'x-custom', 'v'),
    headerRecordBytes({ ktimeNs: kt(T0_US + 2100) }, 'user-agent', 'ua/1'),
    request({ path: '/a?q=1', bytesSent: 123n, headerCount: 5, peer: '10.0.0.2:5555', scheme: 'https' }),
  );
  const [span, ...rest] = await spans();
  assert.equal(rest.length, 0, 'the connection is still open');
  assert.ok(span);
  assert.equal(span.name, 'GET');
  assert.equal(span.kind, SpanKind.SERVER);
  assert.equal(nanos(span.startTime), kt(T0_US + 1000), 'starts at request_begin_at');
  assert.equal(nanos(span.endTime), kt(T0_US + 2100), 'ends at the dispose call, after response_end_at');
  const a = span.attributes;
  assert.equal(a['url.path'], '/a');
  assert.equal(a['url.query'], 'q=1');
  assert.equal(a['url.scheme'], 'https');
  assert.equal(a['server.address'], 'example.com');
  assert.equal(a['server.port'], 443);
  assert.equal(a['network.protocol.version'], '1.1');
  assert.equal(a['http.response.status_code'], 200);
  assert.equal(a['http.response.body.size'], 123);
  assert.equal(a['user_agent.original'], 'ua/1');
  assert.deepEqual(a['http.request.header.x-custom'], ['v']);
  assert.equal(a['network.peer.address'], '10.0.0.2');
  assert.equal(a['client.port'], 5555);
  assert.equal(a['h2o.timings.connect_ms'], 1);
  assert.equal(a['h2o.timings.process_ms'], 0.5);
  assert.equal(a['h2o.timings.response_ms'], 0.5);
  assert.equal(a['h2o.timings.total_ms'], 1);
  assert.deepEqual(
    span.events.map((e) => e.name),
    ['response_start'],
  );
  assert.equal(decode.events, 1);
});

test('capped strings are flagged truncated and counted; headers past the 64 read are counted as dropped', async () => {
  const { push, spans, stats } = setup();
  push(request({ path: '/p'.padEnd(256, 'x'), pathLen: 4000, headerCount: 70 }));
  const [span] = await spans();
  assert.deepEqual(span!.attributes['h2o.truncated_headers'], [':path']);
  assert.equal(span!.attributes['h2o.dropped_headers'], 6);
  assert.equal(stats.truncated, 1);
});

test('HTTP/1: the version-0 dispose call ends the connection; its span links every request', async () => {
  const { push, spans, session } = setup();
  push(request({ connId: 7n, req: 1n }), request({ connId: 7n, req: 1n, ktimeNs: kt(T0_US + 3000) }));
  push(request({ connId: 7n, version: 0, status: 0, method: '', path: '', ktimeNs: kt(T0_US + 9000) }));
  assert.equal(session.openConnections, 0);
  const all = await spans();
  const conn = all.find((s) => s.name === 'HTTP/1.1 connection')!;
  assert.ok(conn);
  assert.equal(conn.attributes['h2o.request_count'], 2);
  assert.equal(nanos(conn.startTime), kt(T0_US), 'starts at connected_at');
  assert.equal(nanos(conn.endTime), kt(T0_US + 9000), 'ends at the close');
  const reqs = all.filter((s) => s.kind === SpanKind.SERVER);
  assert.deepEqual(
    reqs.map((s) => s.attributes['h2o.req_id']),
    [1, 2],
  );
  for (const r of reqs) assert.equal(r.links[0]?.context.spanId, conn.spanContext().spanId);
});

test('HTTP/2 and HTTP/3: the connection ends after idleMs without a request, at its last request', async () => {
  const { push, spans, session } = setup(1000);
  push(request({ connId: 3n, version: 0x200 }), request({ connId: 4n, version: 0x300 }));
  session.tick(T0_US / 1000 + 500);
  assert.equal(session.openConnections, 2, 'not idle long enough');
  session.tick(T0_US / 1000 + 1500);
  assert.equal(session.openConnections, 0);
  const names = (await spans()).map((s) => s.name).sort();
  assert.deepEqual(names, ['GET', 'GET', 'HTTP/2 connection', 'QUIC connection']);
});

test('the session end closes what is open, flagged source_ended; beyond maxConnections the oldest is evicted', async () => {
  const { push, spans, session, stats } = setup(30_000, 2);
  push(request({ connId: 1n }), request({ connId: 2n }), request({ connId: 3n }));
  assert.equal(stats.evictedConnections, 1);
  session.end();
  const conns = (await spans()).filter((s) => s.name.endsWith('connection'));
  assert.deepEqual(
    conns.map((s) => [s.attributes['h2o.conn_id'], s.attributes['h2o.incomplete']]),
    [
      [1, 'evicted'],
      [2, 'source_ended'],
      [3, 'source_ended'],
    ],
  );
});

test('no response (status 0): an error span; a 5xx: an error with its status', async () => {
  const { push, spans } = setup();
  push(
    request({ connId: 1n, status: 0, path: '/gone' }),
    request({ connId: 2n, status: 503, path: '/busy' }),
  );
  const [gone, busy] = await spans();
  assert.equal(gone!.status.code, SpanStatusCode.ERROR);
  assert.equal(gone!.attributes['error.type'], 'no_response');
  assert.equal(busy!.status.code, SpanStatusCode.ERROR);
  assert.equal(busy!.attributes['error.type'], '503');
});

test('a proxied request (proxy_stats): a CLIENT child span for the upstream with its timings and bytes', async () => {
  const { push, spans } = setup();
  push(
    request({
      method: 'POST',
      status: 502,
      proxy: {
        timingsUs: [T0_US + 1100, T0_US + 1300, T0_US + 1400, T0_US + 1800, T0_US + 1900],
        written: 300n,
        read: 4000n,
      },
    }),
  );
  const all = await spans();
  const server = all.find((s) => s.kind === SpanKind.SERVER)!;
  const client = all.find((s) => s.kind === SpanKind.CLIENT)!;
  assert.ok(client, 'an upstream span');
  assert.equal(client.name, 'POST');
  assert.equal(client.parentSpanContext?.spanId, server.spanContext().spanId);
  assert.equal(client.spanContext().traceId, server.spanContext().traceId);
  assert.equal(nanos(client.startTime), kt(T0_US + 1100));
  assert.equal(nanos(client.endTime), kt(T0_US + 1900));
  assert.equal(client.attributes['h2o.proxy.bytes_written'], 300);
  assert.equal(client.attributes['h2o.proxy.bytes_read'], 4000);
  assert.equal(client.attributes['h2o.proxy.connect_ms'], 0.2);
  assert.equal(client.attributes['h2o.proxy.first_byte_ms'], 0.4);
  assert.deepEqual(
    client.events.map((e) => e.name),
    ['request_end', 'response_start'],
  );
  assert.equal(client.status.code, SpanStatusCode.UNSET);
  push(
    request({
      connId: 9n,
      proxy: { timingsUs: [T0_US + 1100, T0_US + 1200, 0, 0, 0], written: 0n, read: 0n },
    }),
  );
  const failed = (await spans()).filter((s) => s.kind === SpanKind.CLIENT)[1]!;
  assert.equal(failed.status.code, SpanStatusCode.ERROR, 'no response from the upstream');
  assert.equal(failed.attributes['error.type'], 'no_response');
});

test('a request H2O will not keep alive ends its HTTP/1 connection at once; a late close record is no new one', async () => {
  const { push, spans, session } = setup();
  push(request({ connId: 11n, http1Persistent: false, ktimeNs: kt(T0_US + 4000) }));
  assert.equal(session.openConnections, 0);
  push(request({ connId: 11n, version: 0, status: 0, method: '', path: '', ktimeNs: kt(T0_US + 5000) }));
  const conns = (await spans()).filter((s) => s.name === 'HTTP/1.1 connection');
  assert.equal(conns.length, 1, 'one span for the connection');
  assert.equal(nanos(conns[0]!.endTime), kt(T0_US + 4000), 'ends with its last response');
  assert.equal(conns[0]!.attributes['h2o.request_count'], 1);
});

test('HTTP/1 waits its own, longer idle deadline; HTTP/2 behind it still closes on time', async () => {
  const { push, session, spans } = setup(1000, 100, 60_000);
  push(request({ connId: 1n }), request({ connId: 2n, version: 0x200 }));
  session.tick(T0_US / 1000 + 2000);
  assert.equal(session.openConnections, 1, 'the HTTP/2 connection closed, the HTTP/1 one waits');
  // A close record after an idle close ends nothing more.
  session.tick(T0_US / 1000 + 61_000);
  push(request({ connId: 1n, version: 0, status: 0, method: '', path: '', ktimeNs: kt(T0_US + 62_000_000) }));
  const conns = (await spans()).filter((s) => s.name.endsWith('connection'));
  assert.deepEqual(conns.map((s) => s.name).sort(), ['HTTP/1.1 connection', 'HTTP/2 connection']);
});

test("req_id is H2O's: the stream id on HTTP/2 and HTTP/3, a count on HTTP/1 (or when the build hides streams)", async () => {
  const { push, spans } = setup();
  push(
    request({ connId: 1n, version: 0x200, streamId: 3, path: '/h2' }),
    request({ connId: 2n, version: 0x300, streamId: 8, path: '/h3' }),
    request({ connId: 3n, path: '/h1-a' }),
    request({ connId: 3n, path: '/h1-b' }),
    request({ connId: 4n, version: 0x200, path: '/h2-unknown' }),
  );
  const ids: Record<string, unknown> = {};
  for (const s of await spans()) ids[String(s.attributes['url.path'])] = s.attributes['h2o.req_id'];
  assert.deepEqual(ids, { '/h2': 3, '/h3': 8, '/h1-a': 1, '/h1-b': 2, '/h2-unknown': 1 });
});
