// Real captures → the real CLI → the real OTLP exporters → an OTLP receiver that decodes the wire bytes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture, runCli } from '../../harness/cli.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver, ReceivedSpan } from '../../harness/otlp-receiver.js';

const SERVER = 2;
const INTERNAL = 1;
const STATUS_UNSET = 0;
const STATUS_ERROR = 2;
const ms = (t: number): bigint => BigInt(t) * 1_000_000n;

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan[] {
  return spans.filter((s) => s.name === name);
}

function one(spans: ReceivedSpan[], pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(pred);
  assert.equal(found.length, 1, `expected exactly one ${what}, got ${found.length}`);
  return found[0]!;
}

function connSpan(spans: ReceivedSpan[], connId: number): ReceivedSpan {
  return one(
    spans,
    (s) => s.kind === INTERNAL && s.attributes['h2o.conn_id'] === connId,
    `connection span ${connId}`,
  );
}

function assertLinkedTo(req: ReceivedSpan, conn: ReceivedSpan): void {
  assert.equal(req.links.length, 1);
  assert.equal(req.links[0]!.traceId, conn.traceId);
  assert.equal(req.links[0]!.spanId, conn.spanId);
}

for (const protocol of ['http/protobuf', 'grpc'] as const) {
  describe(`replaying the real captures over OTLP ${protocol}`, () => {
    let receiver: OtlpReceiver;
    let spans: ReceivedSpan[];
    let stderr: string;

    before(async () => {
      receiver = await startOtlpReceiver();
      const endpoint = protocol === 'grpc' ? receiver.grpcUrl : receiver.httpUrl;
      const files = ['http1.jsonl', 'h2c.jsonl', 'http2.jsonl', 'http3.jsonl'].map(fixture);
      const input = Buffer.concat(
        await Promise.all(files.map(async (f) => (await import('node:fs/promises')).readFile(f))),
      );
      const res = await runCli(
        ['--replay', '-', '--status-interval', '0'],
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
          OTEL_SERVICE_NAME: 'h2o-test',
          OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci',
          OTEL_EXPORTER_OTLP_HEADERS: 'x-tenant=t1',
          OTEL_INSTRUMENTATION_HTTP_SERVER_CAPTURE_REQUEST_HEADERS: 'Accept',
        },
        input,
      );
      assert.equal(res.code, 0, res.stderr);
      stderr = res.stderr;
      spans = await receiver.waitForSpans(8);
    });
    after(() => receiver.close());

    test('exports exactly one span per request and per connection', () => {
      assert.equal(spans.length, 8);
      assert.equal(spans.filter((s) => s.kind === SERVER).length, 4);
      assert.equal(spans.filter((s) => s.kind === INTERNAL).length, 4);
      assert.match(stderr, /request spans 4, connection spans 4/);
      assert.match(stderr, /exported 8, dropped 0 \(at exit 0\), failed 0/);
    });

    test('resource, scope and export headers come from the standard variables', () => {
      for (const s of spans) {
        assert.equal(s.resource['service.name'], 'h2o-test');
        assert.equal(s.resource['deployment.environment.name'], 'ci');
        assert.equal(s.scope.name, 'h2o-otel');
      }
      assert.ok(receiver.requests.every((r) => r.headers['x-tenant'] === 't1'));
      assert.ok(receiver.requests.every((r) => r.transport === (protocol === 'grpc' ? 'grpc' : 'http')));
    });

    test('HTTP/1.1 request span carries the stable HTTP server attributes', () => {
      const req = one(
        spans,
        (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === 15,
        'HTTP/1.1 request',
      );
      assert.equal(req.name, 'GET');
      assert.deepEqual(req.attributes, {
        'http.request.method': 'GET',
        'url.path': '/index.html',
        'url.scheme': 'http',
        'server.address': '127.0.0.1',
        'server.port': 18080,
        'http.response.status_code': 200,
        'http.response.body.size': 41,
        'network.protocol.name': 'http',
        'network.protocol.version': '1.1',
        'network.transport': 'tcp',
        'user_agent.original': 'curl/7.88.1',
        'http.request.header.accept': ['*/*'],
        'h2o.conn_id': 15,
        'h2o.req_id': 1,
      });
      assert.equal(req.status.code, STATUS_UNSET);
      assert.equal(req.parentSpanId, '');
      assert.equal(req.startTimeUnixNano, ms(1795333619512));
      // Ends at the last socket write of the response.
      assert.equal(req.endTimeUnixNano, ms(1795333619512));
      assert.deepEqual(
        req.events.map((e) => [e.name, e.timeUnixNano]),
        [['response_start', ms(1795333619512)]],
      );
      const conn = connSpan(spans, 15);
      assert.equal(conn.name, 'HTTP/1.1 connection');
      assert.deepEqual(conn.attributes, {
        'h2o.conn_id': 15,
        'h2o.conn_uuid': '9b6fbd05-2efe-44bc-8c77-f7b76ad8874c',
        'h2o.request_count': 1,
        'h2o.socket.bytes_written': 237,
        'h2o.socket.writes': 1,
        'network.protocol.name': 'http',
        'network.transport': 'tcp',
      });
      assert.equal(conn.startTimeUnixNano, ms(1795333619512));
      assert.equal(conn.endTimeUnixNano, ms(1795333619513));
      assertLinkedTo(req, conn);
      assert.notEqual(req.traceId, conn.traceId, 'a connection is not part of any one request trace');
    });

    test('cleartext HTTP/2 by prior knowledge is one HTTP/2 connection, not a dangling HTTP/1 one', () => {
      const req = one(spans, (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === 22, 'h2c request');
      assert.equal(req.attributes['network.protocol.version'], '2');
      assert.equal(req.attributes['url.path'], '/small.txt');
      assert.equal(req.attributes['http.response.body.size'], 100);
      assert.equal(byName(spans, 'HTTP/1.1 connection').length, 1, 'only conn 15 is HTTP/1.1');
      const conn = connSpan(spans, 22);
      assert.equal(conn.name, 'HTTP/2 connection');
      assert.equal(conn.attributes['h2o.http1_conn_id'], 21);
      assert.equal(conn.attributes['h2o.conn_uuid'], '4204f849-f4df-4ffd-9a9e-73de5c9e013a');
      assert.equal(conn.startTimeUnixNano, ms(1795333633218));
      assertLinkedTo(req, conn);
    });

    test('HTTP/2 over TLS: version 2, https, ends at the response start', () => {
      const req = one(spans, (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === 17, 'h2 request');
      assert.equal(req.attributes['url.scheme'], 'https');
      assert.equal(req.attributes['server.port'], 18443);
      assert.equal(req.attributes['network.protocol.version'], '2');
      assert.equal(req.endTimeUnixNano, ms(1795333624045));
      assertLinkedTo(req, connSpan(spans, 17));
    });

    test('HTTP/3: quic transport, client address from the QUIC path, body sizes from stream stats', () => {
      const req = one(spans, (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === 19, 'h3 request');
      assert.equal(req.attributes['network.protocol.version'], '3');
      assert.equal(req.attributes['network.transport'], 'quic');
      assert.equal(req.attributes['h2o.req_id'], 0);
      assert.equal(req.attributes['client.address'], '127.0.0.1');
      assert.equal(req.attributes['client.port'], 46700);
      assert.equal(req.attributes['http.request.body.size'], 0);
      assert.equal(req.attributes['http.response.body.size'], 41);
      const conn = connSpan(spans, 19);
      assert.equal(conn.name, 'QUIC connection');
      assert.equal(conn.attributes['network.transport'], 'quic');
      assert.equal(conn.attributes['h2o.conn_uuid'], '14182d5f-f717-40c6-9ba6-0c640739c690');
      assert.equal(conn.attributes['h2o.h3.response_body_bytes'], 41);
      // Opened by the first QUIC event of the connection (picotls:new at ...571 precedes h3s_accept).
      assert.equal(conn.startTimeUnixNano, ms(1795333628571));
      assert.equal(conn.endTimeUnixNano, ms(1795333628684));
      assertLinkedTo(req, conn);
    });
  });
}

describe('traceparent, secrets and error statuses', () => {
  let receiver: OtlpReceiver;
  let spans: ReceivedSpan[];

  before(async () => {
    receiver = await startOtlpReceiver();
    const res = await runCli(
      [
        '--replay',
        fixture('constructed-secrets-errors.jsonl'),
        '--endpoint',
        receiver.httpUrl,
        '--capture-request-headers',
        'authorization,cookie,x-api-key,x-request-id,x-bin',
        '--capture-response-headers',
        'set-cookie,content-type',
        '--status-interval',
        '0',
      ],
      {},
    );
    assert.equal(res.code, 0, res.stderr);
    spans = await receiver.waitForSpans(13);
  });
  after(() => receiver.close());

  test('an incoming traceparent makes the request a child in the caller trace', () => {
    const req = one(spans, (s) => s.attributes['url.path'] === '/cart', '/cart');
    assert.equal(req.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.equal(req.parentSpanId, '00f067aa0ba902b7');
    assert.equal(req.traceState, 'congo=t61rcWkgMzE');
    const img = one(spans, (s) => s.attributes['url.path'] === '/img.png', '/img.png');
    assert.equal(img.traceId, '0af7651916cd43dd8448eb211c80319c');
    assert.equal(img.parentSpanId, 'b7ad6b7169203331');
  });

  test('no secret value leaves the process, even for allowed headers', () => {
    const wire = JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    for (const secret of [
      'secret-token-value',
      'abc-cookie-secret',
      'xyz-bearer-secret',
      'k-api-secret',
      'set-cookie-secret',
      'dXNlcjpwYXNz',
    ]) {
      assert.ok(!wire.includes(secret), `${secret} was exported`);
    }
    const req = one(spans, (s) => s.attributes['url.path'] === '/cart', '/cart');
    assert.deepEqual(req.attributes['http.request.header.authorization'], ['REDACTED']);
    assert.deepEqual(req.attributes['http.request.header.cookie'], ['REDACTED']);
    assert.deepEqual(req.attributes['http.request.header.x-api-key'], ['REDACTED']);
    assert.deepEqual(req.attributes['http.response.header.set-cookie'], ['REDACTED']);
    assert.deepEqual(req.attributes['http.request.header.x-request-id'], ['r-1']);
    assert.deepEqual(req.attributes['http.response.header.content-type'], ['text/plain']);
    assert.equal(req.attributes['url.query'], 'a=1&token=REDACTED');
    assert.equal(req.attributes['client.address'], '203.0.113.7');
    assert.equal(req.attributes['server.address'], 'shop.example');
    assert.equal(req.attributes['server.port'], 8080);
    assert.equal(req.attributes['http.request.header.traceparent'], undefined, 'not in the allow list');
  });

  test('5xx is an error with error.type; 4xx stays unset', () => {
    const e500 = one(spans, (s) => s.attributes['url.path'] === '/cart', '/cart');
    assert.equal(e500.status.code, STATUS_ERROR);
    assert.equal(e500.attributes['error.type'], '500');
    const e503 = one(spans, (s) => s.attributes['url.path'] === '/api', '/api');
    assert.equal(e503.status.code, STATUS_ERROR);
    assert.equal(e503.attributes['error.type'], '503');
    const e404 = one(spans, (s) => s.attributes['url.path'] === '/missing', '/missing');
    assert.equal(e404.status.code, STATUS_UNSET);
    assert.equal(e404.attributes['error.type'], undefined);
    assert.equal(e404.attributes['http.response.status_code'], 404);
  });

  test('HTTP/1 keep-alive: each request ends at its last write, all link to one connection', () => {
    const conn = connSpan(spans, 40);
    assert.equal(conn.attributes['h2o.request_count'], 3);
    const reqs = spans.filter((s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === 40);
    assert.deepEqual(reqs.map((r) => r.attributes['h2o.req_id']).sort(), [1, 2, 3]);
    for (const r of reqs) assertLinkedTo(r, conn);
    const first = reqs.find((r) => r.attributes['h2o.req_id'] === 1)!;
    assert.equal(first.endTimeUnixNano - first.startTimeUnixNano, 3_000_000n);
  });

  test('unknown methods become _OTHER with the original kept; HTTP/1.0 is version 1.0', () => {
    const purge = one(spans, (s) => s.attributes['url.path'] === '/cache/item', 'PURGE');
    assert.equal(purge.name, 'HTTP');
    assert.equal(purge.attributes['http.request.method'], '_OTHER');
    assert.equal(purge.attributes['http.request.method_original'], 'PURGE');
    const old = one(spans, (s) => s.attributes['url.path'] === '/old', '/old');
    assert.equal(old.attributes['network.protocol.version'], '1.0');
    assert.equal(old.attributes['server.address'], undefined, 'no Host, no server.address');
    // Raw non-UTF-8 bytes stay visible as \xNN; valid UTF-8 stays as is.
    assert.deepEqual(old.attributes['http.request.header.x-bin'], ['ok\\xff\\xfeé']);
  });

  test('a 400 without receive_request still yields a flagged span', () => {
    const bad = one(spans, (s) => s.attributes['h2o.conn_id'] === 42 && s.kind === SERVER, 'the 400');
    assert.equal(bad.attributes['http.response.status_code'], 400);
    assert.equal(bad.attributes['h2o.incomplete'], 'no_request_event');
    assert.equal(bad.status.code, STATUS_UNSET);
  });

  test('an Upgrade: h2c request is one span: HTTP/1.1 request, HTTP/2 response', () => {
    const up = one(spans, (s) => s.attributes['url.path'] === '/upgrade', '/upgrade');
    assert.equal(up.attributes['http.response.status_code'], 200);
    assert.equal(up.attributes['network.protocol.version'], '2');
    assert.equal(up.attributes['h2o.upgrade'], 'h2c');
    assert.equal(up.attributes['h2o.conn_id'], 45);
    const conn = connSpan(spans, 45);
    assert.equal(conn.attributes['h2o.http1_conn_id'], 44);
    assertLinkedTo(up, conn);
    assert.equal(spans.filter((s) => s.attributes['h2o.conn_id'] === 44).length, 0);
  });
});

test('OTEL_TRACES_SAMPLER=always_off exports nothing; an unknown sampler is a clear error', async () => {
  const receiver = await startOtlpReceiver();
  try {
    const res = await runCli(['--replay', fixture('http1.jsonl'), '--endpoint', receiver.httpUrl], {
      OTEL_TRACES_SAMPLER: 'always_off',
    });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(receiver.spans.length, 0);
    const bad = await runCli(['--replay', fixture('http1.jsonl')], { OTEL_TRACES_SAMPLER: 'sometimes' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /OTEL_TRACES_SAMPLER="sometimes" is not supported/);
  } finally {
    await receiver.close();
  }
});

test("h2o-otel's own probe request (socket source, real H2O) yields no span, not even its connection's", async () => {
  const receiver = await startOtlpReceiver();
  try {
    const res = await runCli(
      ['--replay', fixture('real-own-probe.jsonl'), '--endpoint', receiver.httpUrl],
      {},
    );
    assert.equal(res.code, 0, res.stderr);
    const spans = await receiver.waitForSpans(2);
    // Conn 2 is the probe (GET /.well-known/h2o-otel-probe over the h2olog socket); conn 3 is curl's request.
    assert.deepEqual(spans.map((s) => s.attributes['h2o.conn_id']).sort(), [3, 3]);
    assert.match(res.stderr, /request spans 1, connection spans 1, continued traces 0, tracer requests 1,/);
  } finally {
    await receiver.close();
  }
});

test("another h2olog client's handshake (real H2O) yields no span; a served request to its path does", async () => {
  const receiver = await startOtlpReceiver();
  try {
    const res = await runCli([
      '--replay',
      fixture('real-other-h2olog-client.jsonl'),
      '--endpoint',
      receiver.httpUrl,
    ]);
    assert.equal(res.code, 0, res.stderr);
    // Conn 2 is a second h2olog client subscribing: H2O takes its socket over, so the request ends unanswered.
    // Conn 3 is curl's request; conn 4 asks for /.well-known/h2olog over TCP, where H2O answers 404.
    const spans = await receiver.waitForSpans(4);
    assert.deepEqual(spans.map((s) => s.attributes['h2o.conn_id']).sort(), [3, 3, 4, 4]);
    const notFound = spans.find((s) => s.attributes['http.response.status_code'] === 404);
    assert.equal(notFound?.attributes['url.path'], '/.well-known/h2olog');
    assert.match(res.stderr, /request spans 2, connection spans 2, continued traces 0, tracer requests 1,/);
  } finally {
    await receiver.close();
  }
});

test('--record writes the decoded events; replaying the recording gives the same spans', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-record-'));
  const recording = join(dir, 'rec.jsonl');
  const a = await runCli([
    '--replay',
    fixture('lab/secrets-traceparent.jsonl'),
    '--exporter',
    'none',
    '--record',
    recording,
  ]);
  assert.equal(a.code, 0, a.stderr);
  const lines = (await readFile(recording, 'utf8')).trim().split('\n');
  assert.equal(lines.length, 86);
  const shape = (s: ReceivedSpan) => [
    s.name,
    s.kind,
    s.startTimeUnixNano,
    s.endTimeUnixNano,
    s.parentSpanId,
    JSON.stringify(s.attributes),
  ];
  const receiver = await startOtlpReceiver();
  try {
    for (const file of [fixture('lab/secrets-traceparent.jsonl'), recording]) {
      const res = await runCli(['--replay', file, '--endpoint', receiver.httpUrl]);
      assert.equal(res.code, 0, res.stderr);
    }
    const spans = await receiver.waitForSpans(16);
    const first = spans.slice(0, 8).map(shape).sort();
    const second = spans.slice(8).map(shape).sort();
    assert.deepEqual(second, first);
  } finally {
    await receiver.close();
  }
});
