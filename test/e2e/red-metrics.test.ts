// RED metrics end to end: the real captures through the real CLI, the metrics decoded from what its OTLP exporter
// sent (buckets, counts, exemplars that name exported spans), unskewed by sampling; and the Prometheus endpoint
// scraped while the CLI runs, parsed by a Prometheus text-format parser.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { fixture, runCli, startCli } from '../../harness/cli.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver, ReceivedHistogramPoint, ReceivedSpan } from '../../harness/otlp-receiver.js';
import { REQUEST_DURATION_BUCKETS } from '../../src/otel/red-metrics.js';

const SERVER = 2;
const INTERNAL = 1;
const CAPTURES = ['http1.jsonl', 'h2c.jsonl', 'http2.jsonl', 'http3.jsonl'];
const REQUEST_METRIC_KEYS = new Set([
  'http.request.method',
  'http.response.status_code',
  'error.type',
  'network.protocol.name',
  'network.protocol.version',
  'url.scheme',
  'server.address',
  'server.port',
]);

const captures = async (): Promise<Buffer> =>
  Buffer.concat(await Promise.all(CAPTURES.map((f) => readFile(fixture(f)))));
const seconds = (s: ReceivedSpan): number => Number(s.endTimeUnixNano - s.startTimeUnixNano) / 1e9;
const total = (points: ReceivedHistogramPoint[]): number => points.reduce((n, p) => n + p.count, 0);

/** The last export's points of `name`: cumulative, so they hold everything. */
function lastPoints(rx: OtlpReceiver, name: string): ReceivedHistogramPoint[] {
  const all = rx.histograms.filter((p) => p.name === name);
  const last = all.at(-1)?.timeUnixNano;
  return all.filter((p) => p.timeUnixNano === last);
}

async function replayToReceiver(rx: OtlpReceiver, env: Record<string, string> = {}, args: string[] = []) {
  const res = await runCli(
    ['--replay', '-', '--status-interval', '0', ...args],
    { OTEL_EXPORTER_OTLP_ENDPOINT: rx.httpUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', ...env },
    await captures(),
  );
  assert.equal(res.code, 0, res.stderr);
  return res;
}

describe('RED metrics over OTLP', () => {
  let rx: OtlpReceiver;
  let spans: ReceivedSpan[];
  before(async () => {
    rx = await startOtlpReceiver();
    await replayToReceiver(rx);
    spans = await rx.waitForSpans(8);
    await rx.waitForHistogram('http.server.request.duration');
  });
  after(() => rx.close());

  test('every request is counted once, in the conventions’ buckets, with only low-cardinality attributes', () => {
    const points = lastPoints(rx, 'http.server.request.duration');
    const requests = spans.filter((s) => s.kind === SERVER);
    assert.equal(total(points), requests.length);
    for (const p of points) {
      assert.equal(p.unit, 's');
      assert.equal(p.temporality, 2);
      assert.deepEqual(p.explicitBounds, REQUEST_DURATION_BUCKETS);
      assert.equal(
        p.bucketCounts.reduce((a, b) => a + b, 0),
        p.count,
      );
      for (const k of Object.keys(p.attributes)) assert.ok(REQUEST_METRIC_KEYS.has(k), `attribute ${k}`);
      assert.equal(p.attributes['network.protocol.name'], 'http');
    }
    // Each request's own attributes and duration are in exactly one point.
    for (const s of requests) {
      const mine = points.filter((p) =>
        Object.entries(p.attributes).every(([k, v]) => s.attributes[k] === v),
      );
      assert.ok(
        mine.length >= 1,
        `a point for ${s.name} ${String(s.attributes['network.protocol.version'])}`,
      );
    }
    const sum = points.reduce((n, p) => n + p.sum, 0);
    const expected = requests.reduce((n, s) => n + seconds(s), 0);
    assert.ok(Math.abs(sum - expected) < 1e-6, `sum ${sum} = ${expected}`);
  });

  test('exemplars name exported request spans and sit in the bucket of their duration', () => {
    const points = lastPoints(rx, 'http.server.request.duration');
    const all = rx.histograms
      .filter((p) => p.name === 'http.server.request.duration')
      .flatMap((p) => p.exemplars);
    assert.ok(all.length > 0, 'some exemplar');
    for (const e of all) {
      const span = spans.find((s) => s.spanId === e.spanId && s.traceId === e.traceId);
      assert.ok(
        span !== undefined && span.kind === SERVER,
        `exemplar ${e.spanId} is an exported request span`,
      );
      assert.equal(e.value, seconds(span));
      assert.equal(e.timeUnixNano, span.endTimeUnixNano);
    }
    for (const p of points)
      for (const e of p.exemplars) {
        const bucket = REQUEST_DURATION_BUCKETS.findIndex((b) => e.value <= b);
        assert.ok(p.bucketCounts[bucket === -1 ? REQUEST_DURATION_BUCKETS.length : bucket]! > 0);
      }
  });

  test('connections: their duration, and RTT and loss of the QUIC one', async () => {
    const conns = spans.filter((s) => s.kind === INTERNAL);
    assert.equal(total(lastPoints(rx, 'h2o.connection.duration')), conns.length);
    const quic = conns.filter((s) => s.attributes['h2o.quic.rtt_smoothed_ms'] !== undefined);
    assert.ok(quic.length > 0, 'the HTTP/3 capture has a QUIC connection with stats');
    const rtt = lastPoints(rx, 'h2o.quic.connection.rtt');
    assert.equal(total(rtt), quic.length);
    assert.equal(
      rtt.reduce((n, p) => n + p.sum, 0),
      Number(quic[0]!.attributes['h2o.quic.rtt_smoothed_ms']) / 1000,
    );
    assert.equal(total(lastPoints(rx, 'h2o.quic.connection.loss_ratio')), quic.length);
    const active = await rx.waitForMetric('http.server.active_requests');
    assert.equal(active.value, 0);
    assert.equal(active.monotonic, false);
  });

  test("h2o-otel's own counters go with them", async () => {
    const events = await rx.waitForMetric('h2o_otel.spans', (p) => p.value === 8);
    assert.equal(events.monotonic, true);
  });
});

test('sampling does not skew the RED metrics, and exemplars point only at exported spans', async () => {
  const rx = await startOtlpReceiver();
  try {
    await replayToReceiver(rx, { OTEL_TRACES_SAMPLER: 'always_off' });
    await rx.waitForHistogram('http.server.request.duration');
    assert.equal(total(lastPoints(rx, 'http.server.request.duration')), 4);
    assert.deepEqual(rx.spans, []);
    assert.deepEqual(
      rx.histograms.flatMap((p) => p.exemplars),
      [],
    );
  } finally {
    await rx.close();
  }
});

test('--no-metrics: no metrics at all', async () => {
  const rx = await startOtlpReceiver();
  try {
    await replayToReceiver(rx, {}, ['--no-metrics']);
    await rx.waitForSpans(8);
    assert.equal(rx.requests.filter((r) => r.kind === 'metrics').length, 0);
  } finally {
    await rx.close();
  }
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('Prometheus endpoint', () => {
  test('serves the RED metrics and the own counters while running, without any OTLP export', async () => {
    const port = await freePort();
    const cli = startCli(
      [
        '--replay',
        '-',
        '--exporter',
        'none',
        '--prometheus-port',
        String(port),
        '--prometheus-host',
        '127.0.0.1',
      ],
      {},
      'open',
    );
    try {
      cli.child.stdin!.write(await captures());
      // The replay holds the last lines until input ends; every request is done once its connection closed.
      let text = '';
      for (let i = 0; i < 100; i++) {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`).catch(() => undefined);
        text = res?.ok ? await res.text() : '';
        if (/http_server_request_duration_count\{[^}]*\} [1-9]/.test(text)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // The parser assembles a histogram only when its buckets come first; the SDK writes _count and _sum first,
      // which Prometheus reads as well. So the histogram's series are parsed one by one, as untyped samples.
      assert.match(text, /^# TYPE http_server_request_duration histogram$/m);
      const families = parsePrometheusTextFormat(text.replace(/^# TYPE \S+ histogram\n/gm, ''));
      const samples = (name: string) => families.find((f) => f.name === name)?.metrics ?? [];
      const counts = samples('http_server_request_duration_count');
      const count = counts.reduce((n, m) => n + Number(m.value), 0);
      assert.ok(count >= 1 && count <= 4, `count ${count} in:\n${text}`);
      for (const c of counts) {
        assert.equal(c.labels?.network_protocol_name, 'http');
        const { http_request_method: method, network_protocol_version: version } = c.labels ?? {};
        const buckets = samples('http_server_request_duration_bucket').filter(
          (b) => b.labels?.http_request_method === method && b.labels?.network_protocol_version === version,
        );
        assert.deepEqual(
          buckets.map((b) => (b.labels?.le === '+Inf' ? Infinity : Number(b.labels?.le))),
          [...REQUEST_DURATION_BUCKETS, Infinity],
        );
        assert.equal(buckets.at(-1)!.value, c.value, 'the +Inf bucket holds the count');
      }
      const events = families.find((f) => f.name === 'h2o_otel_events_total');
      assert.ok(
        events && events.type === 'COUNTER' && Number(events.metrics[0]!.value) > 0,
        `own counters in:\n${text}`,
      );
    } finally {
      cli.child.stdin!.end();
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
    }
  });

  test('a port that cannot be served stops h2o-otel with what to do', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const { port } = blocker.address() as { port: number };
    try {
      const res = await runCli([
        '--replay',
        fixture('http1.jsonl'),
        '--prometheus-port',
        String(port),
        '--prometheus-host',
        '127.0.0.1',
      ]);
      assert.equal(res.code, 1);
      assert.match(
        res.stderr,
        /cannot serve Prometheus metrics on 127\.0\.0\.1:\d+ .*choose another --prometheus-port/,
      );
    } finally {
      blocker.close();
    }
  });

  test('--no-metrics with --prometheus-port is refused', async () => {
    const res = await runCli([
      '--replay',
      fixture('http1.jsonl'),
      '--no-metrics',
      '--prometheus-port',
      '9999',
    ]);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /--no-metrics turns off/);
  });
});
