// The CLI on the real H2O 2.2.5 (Debian's source package, built without DTrace) under --pid with the default
// --bpf auto: the request probe is chosen, and each request arrives at the OTLP receiver as one span, checked span
// by span (HTTP/1.1 keep-alive, HTTP/2 over TLS, a 404, a proxied 502, traceparent, captured and redacted headers).
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { buildDebianH2o } from '../../../harness/debian-h2o.js';
import { startAttachedCli } from '../../../harness/cli.js';
import type { CliResult } from '../../../harness/cli.js';
import { startH2o, type H2oServer } from '../../../harness/h2o-server.js';
import { startOtlpReceiver } from '../../../harness/otlp-receiver.js';
import type { OtlpReceiver, ReceivedSpan } from '../../../harness/otlp-receiver.js';
import { skipBpf } from '../../../harness/wait.js';

const SERVER = 2;
const CLIENT = 3;
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_ID = 'b7ad6b7169203331';

/** GETs on one keep-alive HTTP/1.1 connection, resolving to their statuses. */
async function get1(port: number, paths: readonly [string, Record<string, string>][]): Promise<number[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const statuses: number[] = [];
  for (const [path, headers] of paths) {
    statuses.push(
      await new Promise<number>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      }),
    );
  }
  agent.destroy();
  return statuses;
}

/** GETs on one HTTP/2 connection over TLS, resolving to their statuses. */
async function get2(port: number, paths: readonly string[]): Promise<number[]> {
  const session = http2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  const statuses: number[] = [];
  for (const path of paths) {
    statuses.push(
      await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': path, 'user-agent': 'h2-test' });
        let status = 0;
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
        stream.on('end', () => resolve(status));
      }),
    );
  }
  session.close();
  return statuses;
}

const summaryCount = (stderr: string, name: string): number => {
  const m = new RegExp(`${name} (\\d+)`).exec(stderr);
  assert.ok(m, `"${name}" in the summary:\n${stderr}`);
  return Number(m[1]);
};

describe('request probe (--bpf auto) on the Debian H2O 2.2.5', { skip: skipBpf }, () => {
  let bin: string;
  let h2o: H2oServer;
  let receiver: OtlpReceiver;
  let res: CliResult;
  let spans: ReceivedSpan[];
  const byPath = (path: string): ReceivedSpan[] =>
    spans.filter((s) => s.kind === SERVER && s.attributes['url.path'] === path);

  before(
    async () => {
      bin = await buildDebianH2o();
      h2o = await startH2o(bin);
      receiver = await startOtlpReceiver();
      const cli = await startAttachedCli(
        [
          '--pid',
          String(h2o.pid),
          '--capture-request-headers',
          'x-custom,cookie,authorization',
          '--http2-idle-ms',
          '500',
          '--btf-cache-dir',
          `${h2o.dir}/btf`,
        ],
        { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl },
      );
      assert.deepEqual(
        await get1(h2o.httpPort, [
          [
            '/',
            { traceparent: `00-${TRACE_ID}-${PARENT_ID}-01`, 'x-custom': 'hi', cookie: 'session=s3cr3t' },
          ],
          ['/missing?token=abc&q=1', { authorization: 'Bearer s3cr3t' }],
          ['/proxy', {}],
        ]),
        [200, 404, 502],
      );
      assert.deepEqual(await get2(h2o.httpsPort, ['/index.html', '/index.html?second']), [200, 200]);
      // The HTTP/2 connection has no close event: it ends after --http2-idle-ms without a request.
      await receiver.waitForSpans(7, 10_000);
      cli.child.kill('SIGTERM');
      res = await cli.result;
      spans = receiver.spans;
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    await receiver?.close();
    await h2o?.stop();
  });

  test('auto chooses the request probe: one uprobe, struct layouts from the binary, no DTrace needed', () => {
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /request probe: struct layouts from its own debug info/);
    assert.match(res.stderr, /attached 1 uprobe at h2o_dispose_request/);
    assert.equal(summaryCount(res.stderr, 'probes attached'), 1);
    assert.equal(summaryCount(res.stderr, 'ring lost'), 0);
  });

  test('one span per request, one per connection; probe hits = requests + HTTP/1 connection ends', () => {
    const requests = spans.filter((s) => s.kind === SERVER);
    assert.equal(requests.length, 5, requests.map((s) => s.name).join());
    const conns = spans.filter((s) => s.name.endsWith('connection'));
    assert.deepEqual(conns.map((s) => s.name).sort(), ['HTTP/1.1 connection', 'HTTP/2 connection']);
    // H2O 2.2.5 calls h2o_dispose_request once per request, and once more when the keep-alive HTTP/1 connection
    // closed (its span had ended, so that call was read).
    assert.equal(summaryCount(res.stderr, 'probe hits'), 5 + 1);
  });

  test('HTTP/1.1 keep-alive: method, URL, status, protocol, peer, and a link to the connection span', () => {
    const [span] = byPath('/');
    assert.ok(span);
    const conn = spans.find((s) => s.name === 'HTTP/1.1 connection')!;
    assert.equal(span.name, 'GET');
    assert.equal(span.attributes['http.request.method'], 'GET');
    assert.equal(span.attributes['http.response.status_code'], 200);
    assert.equal(span.attributes['network.protocol.version'], '1.1');
    assert.equal(span.attributes['url.scheme'], 'http');
    assert.equal(span.attributes['server.address'], '127.0.0.1');
    assert.equal(span.attributes['server.port'], h2o.httpPort);
    assert.equal(span.attributes['http.response.body.size'], h2o.indexBody.length);
    // H2O caches the client's address when its access log first asks, after the probe read the connection's first
    // request: from the second request on, the address is there.
    const [second] = byPath('/missing');
    assert.equal(second?.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(span.status.code, 0);
    assert.deepEqual(
      span.links.map((l) => l.spanId),
      [conn.spanId],
    );
    assert.equal(conn.attributes['h2o.request_count'], 3);
    assert.equal(conn.attributes['h2o.conn_id'], span.attributes['h2o.conn_id']);
    for (const s of [...byPath('/missing'), ...byPath('/proxy')])
      assert.deepEqual(s.links[0]?.spanId, conn.spanId);
  });

  test('traceparent continues the caller trace; allow-listed headers captured, secrets redacted', () => {
    const [span] = byPath('/');
    assert.equal(span!.traceId, TRACE_ID);
    assert.equal(span!.parentSpanId, PARENT_ID);
    assert.deepEqual(span!.attributes['http.request.header.x-custom'], ['hi']);
    assert.deepEqual(span!.attributes['http.request.header.cookie'], ['REDACTED']);
    const [missing] = byPath('/missing');
    assert.deepEqual(missing!.attributes['http.request.header.authorization'], ['REDACTED']);
    assert.equal(missing!.attributes['url.query'], 'token=REDACTED&q=1');
    assert.notEqual(missing!.traceId, TRACE_ID, 'a request without traceparent starts its own trace');
    const all = JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v));
    assert.ok(!all.includes('s3cr3t'), 'no secret reaches the collector');
  });

  test('a 404 is not an error; a proxied 502 is, with its error.type', () => {
    const [missing] = byPath('/missing');
    assert.equal(missing!.attributes['http.response.status_code'], 404);
    assert.equal(missing!.status.code, 0);
    const [proxied] = byPath('/proxy');
    assert.equal(proxied!.attributes['http.response.status_code'], 502);
    assert.equal(proxied!.status.code, 2);
    assert.equal(proxied!.attributes['error.type'], '502');
    // 2.2.5 has no proxy_stats: no upstream CLIENT span (the stand-in build with proxy_stats has one).
    assert.equal(spans.filter((s) => s.kind === CLIENT).length, 0);
  });

  test('HTTP/2 over TLS: the span ends at dispose, never before H2O response_end_at', () => {
    const h2 = byPath('/index.html');
    assert.equal(h2.length, 2);
    const conn = spans.find((s) => s.name === 'HTTP/2 connection')!;
    for (const span of h2) {
      assert.equal(span.attributes['network.protocol.version'], '2');
      assert.equal(span.attributes['url.scheme'], 'https');
      assert.equal(span.attributes['server.port'], h2o.httpsPort);
      assert.equal(span.attributes['user_agent.original'], 'h2-test');
      assert.equal(span.attributes['http.response.body.size'], h2o.indexBody.length);
      // The span starts at H2O's request_begin_at; total_ms is H2O's response_end_at − request_begin_at.
      const total = span.attributes['h2o.timings.total_ms'];
      assert.equal(typeof total, 'number');
      const durationNs = span.endTimeUnixNano - span.startTimeUnixNano;
      assert.ok(
        durationNs >= BigInt(Math.round((total as number) * 1e6)),
        `${durationNs} ns vs ${String(total)} ms`,
      );
      assert.ok(durationNs > 0n, 'the dispose comes after H2O stamped the request');
      assert.deepEqual(span.links[0]?.spanId, conn.spanId);
    }
    assert.equal(conn.attributes['h2o.request_count'], 2);
    assert.ok(conn.endTimeUnixNano >= h2[1]!.endTimeUnixNano, 'the connection ends after its last request');
    // req_id is the stream id, read from the stream struct the request is embedded in, as H2O's probes report it.
    assert.deepEqual(h2.map((s) => s.attributes['h2o.req_id']).sort(), [1, 3]);
  });
});
