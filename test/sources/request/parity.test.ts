// Parity: the same HTTP/1.1 traffic to the DTrace-enabled fixture (which also calls h2o_dispose_request, as H2O
// does) traced once with --bpf usdt and once with --bpf request gives the same spans, except for what only one
// path can know (listed below, with why).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startAttachedCli } from '../../../harness/cli.js';
import { startOtlpReceiver } from '../../../harness/otlp-receiver.js';
import type { OtlpAttributes, ReceivedSpan } from '../../../harness/otlp-receiver.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../../harness/usdt-fixture.js';
import type { UsdtFixture } from '../../../harness/usdt-fixture.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const TRAFFIC: readonly [string, Record<string, string>][] = [
  ['/', { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'x-custom': 'a' }],
  ['/status/404', { cookie: 'session=1' }],
  ['/status/503', { 'user-agent': 'parity/1' }],
  ['/big/5000?token=secret&page=2', {}],
];
const CAPTURE = ['--capture-request-headers', 'x-custom,cookie'];

/**
 * Request spans only: H2O's own timestamps (no probe carries them); the client's address (H2O's USDT probes for
 * HTTP/1 do not pass it; the request probe reads the address H2O cached on the socket); the body size (H2O's
 * bytes_sent; over USDT only a content-length response header tells it, and those probes are attached only when
 * some response header is captured).
 */
const ONLY_REQUEST_MODE = [
  'http.response.body.size',
  'h2o.timings.connect_ms',
  'h2o.timings.process_ms',
  'h2o.timings.response_ms',
  'h2o.timings.total_ms',
  'network.peer.address',
  'network.peer.port',
  'client.address',
  'client.port',
];
/**
 * Connection spans, USDT only: socket writes (h2o:socket_writev), which no struct at dispose time holds; the
 * connection's uuid, which H2O makes only when something asks for it (its USDT probes do).
 */
const ONLY_USDT_MODE = ['h2o.socket.bytes_written', 'h2o.socket.writes', 'h2o.conn_uuid'];
/** Differ between two runs whatever the mode: each run makes new connections. */
const PER_RUN = ['h2o.conn_id'];

const SERVER = 2;

function without(a: OtlpAttributes, keys: readonly string[]): OtlpAttributes {
  return Object.fromEntries(Object.entries(a).filter(([k]) => !keys.includes(k)));
}

async function traced(fx: UsdtFixture, mode: 'usdt' | 'request'): Promise<ReceivedSpan[]> {
  const receiver = await startOtlpReceiver();
  try {
    const cli = await startAttachedCli(['--bpf', mode, '--pid', String(fx.pid), ...CAPTURE], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
    });
    for (const [path, headers] of TRAFFIC) await get(fx.port, path, headers);
    await waitFor(() => receiver.spans.length >= 2 * TRAFFIC.length, `${mode}: spans`, 15_000);
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    if (mode === 'request') assert.match(res.stderr, /attached 1 uprobe at h2o_dispose_request/);
    return receiver.spans;
  } finally {
    await receiver.close();
  }
}

describe('request and usdt modes on the same traffic', { skip: skipBpf }, () => {
  test('the same spans, attribute by attribute, but for the listed differences', async () => {
    const fx = await startUsdtFixture(await buildUsdtFixture());
    try {
      const usdt = await traced(fx, 'usdt');
      const request = await traced(fx, 'request');
      for (const spans of [usdt, request]) assert.equal(spans.length, 2 * TRAFFIC.length);
      const requestSpans = (spans: ReceivedSpan[]): Map<string, ReceivedSpan> =>
        new Map(spans.filter((s) => s.kind === SERVER).map((s) => [String(s.attributes['url.path']), s]));
      const u = requestSpans(usdt);
      const r = requestSpans(request);
      assert.deepEqual([...r.keys()].sort(), [...u.keys()].sort());
      for (const [path, us] of u) {
        const rs = r.get(path)!;
        assert.equal(rs.name, us.name, path);
        assert.deepEqual(rs.status, us.status, path);
        assert.equal(rs.parentSpanId, us.parentSpanId, path);
        if (us.parentSpanId !== '') assert.equal(rs.traceId, us.traceId, path);
        assert.deepEqual(
          without(rs.attributes, [...ONLY_REQUEST_MODE, ...PER_RUN]),
          without(us.attributes, PER_RUN),
          path,
        );
        for (const k of ONLY_REQUEST_MODE.filter((k) => !k.startsWith('h2o.timings.connect')))
          assert.ok(k in rs.attributes, `${path}: request mode has ${k}`);
        // Both end after the response: USDT at the last socket write + H2O's quiet time, request mode at dispose.
        assert.ok(rs.endTimeUnixNano > rs.startTimeUnixNano, path);
      }
      const conns = (spans: ReceivedSpan[]): OtlpAttributes[] =>
        spans
          .filter((s) => s.name === 'HTTP/1.1 connection')
          .map((s) => without(s.attributes, [...ONLY_USDT_MODE, ...ONLY_REQUEST_MODE, ...PER_RUN]));
      assert.deepEqual(conns(request), conns(usdt));
    } finally {
      await fx.stop();
    }
  });
});
