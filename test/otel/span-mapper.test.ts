// Records built by hand → spans: names, kinds, times, links to the connection span, trace context, error status,
// connection attributes at close, CONNECT tunnel spans.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { newTlsFacts } from '../../src/correlate/quic.js';
import { at, collectingMapper, connection, request } from '../../harness/records.js';

function only(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  assert.equal(found.length, 1, `${found.length} spans named ${name}`);
  return found[0]!;
}

test('requests of one connection link to its one connection span, which ends when it closes', () => {
  const { mapper, spans } = collectingMapper();
  const conn = connection({
    protocol: 'http/2',
    connId: 9,
    uuid: 'u-1',
    requestCount: 2,
    end: at(2000, 500),
  });
  mapper.requestCompleted(request(conn, { ':method': 'GET' }, { reqId: 1 }));
  mapper.requestCompleted(request(conn, { ':method': 'HEAD' }, { reqId: 3 }));
  assert.deepEqual(
    spans.map((s) => s.name),
    ['GET', 'HEAD'],
  );
  mapper.connectionClosed(conn);
  const c = only(spans, 'HTTP/2 connection');
  assert.equal(c.kind, SpanKind.INTERNAL);
  assert.equal(c.parentSpanContext, undefined);
  for (const r of spans.slice(0, 2)) {
    assert.equal(r.kind, SpanKind.SERVER);
    assert.deepEqual(r.links, [{ context: c.spanContext() }]);
    assert.notEqual(r.spanContext().traceId, c.spanContext().traceId);
  }
  assert.deepEqual(c.startTime, [1, 0]);
  assert.deepEqual(c.endTime, [2, 500]);
  assert.deepEqual(c.attributes, {
    'h2o.conn_id': 9,
    'network.protocol.name': 'http',
    'h2o.conn_uuid': 'u-1',
    'network.protocol.version': '2',
    'network.transport': 'tcp',
    'h2o.request_count': 2,
  });
  assert.deepEqual(mapper.stats, {
    requestSpans: 2,
    connectionSpans: 1,
    tunnelSpans: 0,
    upstreamSpans: 0,
    continuedTraces: 0,
    invalidTraceparents: 0,
  });
});

test('a request span runs from its start to its end, with the response start as an event', () => {
  const { mapper, spans } = collectingMapper();
  mapper.requestCompleted(
    request(
      connection(),
      { ':method': 'GET' },
      { start: at(1010.25), responseStart: at(1020, 7), end: at(1030) },
    ),
  );
  const s = only(spans, 'GET');
  assert.deepEqual(s.startTime, [1, 10_250_000]);
  assert.deepEqual(s.endTime, [1, 30_000_000]);
  assert.deepEqual(s.events, [{ name: 'response_start', time: [1, 20_000_007] }]);
  assert.deepEqual(s.status, { code: SpanStatusCode.UNSET });
});

test('a method outside the known set names the span HTTP', () => {
  const { mapper, spans } = collectingMapper();
  mapper.requestCompleted(request(connection(), { ':method': 'BREW' }));
  assert.equal(only(spans, 'HTTP').attributes['http.request.method'], '_OTHER');
});

test('5xx is an error with the status as error.type; 4xx is not', () => {
  const { mapper, spans } = collectingMapper();
  const conn = connection();
  mapper.requestCompleted(request(conn, { ':method': 'GET' }, { status: 503 }));
  mapper.requestCompleted(request(conn, { ':method': 'PUT' }, { status: 404 }));
  const failed = only(spans, 'GET');
  assert.equal(failed.attributes['error.type'], '503');
  assert.deepEqual(failed.status, { code: SpanStatusCode.ERROR });
  const missing = only(spans, 'PUT');
  assert.equal(missing.attributes['error.type'], undefined);
  assert.deepEqual(missing.status, { code: SpanStatusCode.UNSET });
});

test('no response before the connection closed or the deadline is an error; attached mid-flight is not', () => {
  const { mapper, spans } = collectingMapper();
  const conn = connection();
  const none = { status: undefined, responseStart: undefined };
  mapper.requestCompleted(request(conn, { ':method': 'GET' }, { ...none, incomplete: 'connection_closed' }));
  mapper.requestCompleted(request(conn, { ':method': 'POST' }, { ...none, incomplete: 'timeout' }));
  mapper.requestCompleted(
    request(conn, { ':method': 'PUT' }, { ...none, incomplete: 'attached_mid_flight' }),
  );
  const closed = only(spans, 'GET');
  assert.equal(closed.attributes['error.type'], 'no_response');
  assert.deepEqual(closed.status, { code: SpanStatusCode.ERROR, message: 'no response was sent' });
  assert.equal(only(spans, 'POST').attributes['error.type'], 'timeout');
  assert.equal(only(spans, 'PUT').attributes['error.type'], undefined);
  assert.equal(only(spans, 'PUT').attributes['h2o.incomplete'], 'attached_mid_flight');
});

test("a valid traceparent continues the caller's trace; an invalid one starts a new trace and is counted", () => {
  const { mapper, spans } = collectingMapper();
  const conn = connection();
  mapper.requestCompleted(
    request(conn, {
      ':method': 'GET',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=1',
    }),
  );
  mapper.requestCompleted(request(conn, { ':method': 'POST', traceparent: '00-zz-not-valid' }));
  const child = only(spans, 'GET');
  assert.equal(child.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(child.parentSpanContext?.spanId, 'b7ad6b7169203331');
  assert.equal(child.parentSpanContext?.isRemote, true);
  assert.equal(child.spanContext().traceState?.serialize(), 'vendor=1');
  const root = only(spans, 'POST');
  assert.equal(root.parentSpanContext, undefined);
  assert.notEqual(root.spanContext().traceId, '0af7651916cd43dd8448eb211c80319c');
  assert.equal(mapper.stats.continuedTraces, 1);
  assert.equal(mapper.stats.invalidTraceparents, 1);
});

test('a connection closed without requests still gets its span, with socket, TLS and H2O counters', () => {
  const { mapper, spans } = collectingMapper();
  const tls = { ...newTlsFacts(), start: at(1000), done: at(1002, 250_000), lastResult: 0, ech: false };
  mapper.connectionClosed(
    connection({
      protocol: undefined,
      requestCount: 0,
      http1ConnId: 4,
      tls,
      bytesWritten: 300,
      writes: 2,
      writeFailures: 1,
      incomplete: 'timeout',
      end: undefined,
      last: at(1500),
    }),
  );
  const c = only(spans, 'HTTP connection');
  assert.deepEqual(c.endTime, [1, 500_000_000]);
  assert.deepEqual(c.attributes, {
    'h2o.conn_id': 7,
    'network.protocol.name': 'http',
    'network.transport': 'tcp',
    'h2o.http1_conn_id': 4,
    'h2o.request_count': 0,
    'h2o.tls.handshake_ms': 2.25,
    'h2o.tls.handshake_result': 0,
    'h2o.tls.ech': false,
    'h2o.socket.bytes_written': 300,
    'h2o.socket.writes': 2,
    'h2o.socket.write_failures': 1,
    'h2o.incomplete': 'timeout',
  });
  assert.deepEqual(c.events, [{ name: 'tls.handshake_complete', time: [1, 2_250_000] }]);
});

test("HTTP/3 connection: h3s_destroy's counters become h2o.h3.* (not the conn id or common keys)", () => {
  const { mapper, spans } = collectingMapper();
  mapper.connectionClosed(
    connection({
      protocol: 'http/3',
      remote: '10.1.2.3:9999',
      closeStats: { conn_id: 7, time: 5, num_requests: 3, recv_bytes: 100, label: 'x' },
    }),
  );
  const a = only(spans, 'QUIC connection').attributes;
  assert.equal(a['h2o.h3.num_requests'], 3);
  assert.equal(a['h2o.h3.recv_bytes'], 100);
  assert.equal(a['h2o.h3.conn_id'], undefined);
  assert.equal(a['h2o.h3.time'], undefined);
  assert.equal(a['h2o.h3.label'], undefined);
  assert.equal(a['network.transport'], 'quic');
  assert.equal(a['network.peer.address'], '10.1.2.3');
  assert.equal(a['client.port'], 9999);
});

test('CONNECT: one CLIENT span per upstream attempt under the request, the failed one an error', () => {
  const { mapper, spans } = collectingMapper();
  const req = request(
    connection(),
    { ':method': 'CONNECT', ':authority': 'upstream.example:443' },
    {
      end: at(1090),
      tunnel: {
        attempts: [
          {
            transport: 'tcp',
            start: at(1011),
            end: at(1012),
            dest: '[2001:db8::5]:443',
            connected: false,
            error: 'refused',
          },
          {
            transport: 'tcp',
            start: at(1012),
            end: at(1080),
            dest: '192.0.2.5:443',
            connected: true,
            error: undefined,
          },
        ],
        bytesSent: 10,
        bytesReceived: 20,
        error: undefined,
        problems: [{ at: at(1050), kind: 'io_timeout', message: 'idle' }],
        last: at(1080),
        disposed: at(1080),
      },
    },
  );
  mapper.requestCompleted(req);
  const parent = only(spans, 'CONNECT');
  const attempts = spans.filter((s) => s.name === 'tcp connect');
  assert.equal(attempts.length, 2);
  assert.equal(mapper.stats.tunnelSpans, 2);
  for (const s of attempts) {
    assert.equal(s.kind, SpanKind.CLIENT);
    assert.equal(s.parentSpanContext?.spanId, parent.spanContext().spanId);
    assert.equal(s.spanContext().traceId, parent.spanContext().traceId);
  }
  const [failed, ok] = attempts as [ReadableSpan, ReadableSpan];
  assert.deepEqual(failed.attributes, {
    'network.transport': 'tcp',
    'server.address': 'upstream.example',
    'server.port': 443,
    'network.peer.address': '2001:db8::5',
    'network.peer.port': 443,
    'error.type': 'connect_failed',
  });
  assert.deepEqual(failed.status, { code: SpanStatusCode.ERROR, message: 'refused' });
  assert.equal(ok.attributes['h2o.tunnel.bytes_sent'], 10);
  assert.equal(ok.attributes['h2o.tunnel.bytes_received'], 20);
  assert.deepEqual(ok.events, [
    { name: 'io_timeout', attributes: { message: 'idle' }, time: [1, 50_000_000] },
  ]);
  assert.deepEqual(ok.endTime, [1, 80_000_000]);
});
