// QUIC and TLS depth from the real HTTP/3 capture of an H2O master build (socket format): the QUIC connection
// span's sub-events, quicly's statistics, the close reason, TLS facts, the request's stream events, and the cap.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { subscriptionFor } from '../../src/events/catalogue.js';
import { QLOG_EVENT_NAMES } from '../../src/export/qlog.js';
import { fixture, repoRoot, runCli } from '../../harness/cli.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver, ReceivedSpan } from '../../harness/otlp-receiver.js';

const labFixture = (name: string): string => join(repoRoot, 'test', 'fixtures', 'h2olog', 'lab', name);
const SERVER = 2;
const INTERNAL = 1;

async function replayTo(receiver: OtlpReceiver, file: string, extra: string[] = []): Promise<ReceivedSpan[]> {
  const res = await runCli(['--replay', file, '--status-interval', '0', ...extra], {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
  });
  assert.equal(res.code, 0, res.stderr);
  return receiver.spans;
}

const replayHttp3 = (receiver: OtlpReceiver, extra: string[]): Promise<ReceivedSpan[]> =>
  replayTo(receiver, fixture('http3.jsonl'), extra);

describe('the real HTTP/3 capture', () => {
  let receiver: OtlpReceiver;
  let conn: ReceivedSpan;
  let req: ReceivedSpan;

  before(async () => {
    receiver = await startOtlpReceiver();
    const spans = await replayHttp3(receiver, []);
    conn = spans.find((s) => s.kind === INTERNAL)!;
    req = spans.find((s) => s.kind === SERVER)!;
  });
  after(() => receiver.close());

  test('the QUIC connection span has the handshake, its confirmation and the close as events', () => {
    assert.equal(conn.name, 'QUIC connection');
    assert.deepEqual(
      conn.events.map((e) => e.name),
      [
        'quic.ecn_validation',
        'quic.handshake_complete',
        'tls.handshake_complete',
        'quic.handshake_confirmed',
        'quic.close_received',
      ],
    );
    const close = conn.events.at(-1)!;
    assert.deepEqual(close.attributes, {
      'quic.close.kind': 'transport',
      'quic.close.error_code': 0,
      'quic.close.error': 'NO_ERROR',
      'quic.close.frame_type': 0,
    });
    // Events sit inside the connection's time range.
    for (const e of conn.events) {
      assert.ok(e.timeUnixNano >= conn.startTimeUnixNano && e.timeUnixNano <= conn.endTimeUnixNano, e.name);
    }
  });

  test("quicly's statistics, the close reason and TLS facts are attributes; a clean close is not an error", () => {
    const a = conn.attributes;
    assert.equal(a['h2o.quic.original_dcid'], '55237ed37b2e08d0');
    assert.equal(a['h2o.quic.packets_sent'], 5);
    assert.equal(a['h2o.quic.packets_received'], 5);
    assert.equal(a['h2o.quic.packets_lost'], 0);
    assert.equal(a['h2o.quic.bytes_sent'], 2236);
    assert.equal(a['h2o.quic.bytes_received'], 1644);
    assert.equal(a['h2o.quic.cwnd'], 14720);
    assert.equal(a['h2o.quic.rtt_smoothed_ms'], 1);
    assert.equal(a['h2o.quic.close.side'], 'received');
    assert.equal(a['h2o.quic.close.error'], 'NO_ERROR');
    assert.equal(a['h2o.tls.handshake_result'], 0);
    assert.equal(typeof a['h2o.tls.handshake_ms'], 'number');
    assert.equal(a['h2o.h3.num_requests'], 1);
    assert.equal(a['h2o.h3.response_header_bytes'], 92);
    assert.equal(a['h2o.h3.control_stream_bytes_sent'], 18);
    assert.equal(conn.status.code, 0);
    // The connection ends at h3s_destroy, not at the statistics that follow it.
    assert.equal((conn.endTimeUnixNano - conn.startTimeUnixNano) / 1_000_000n, 113n);
  });

  test('the request carries the events of its own stream and links to the connection', () => {
    assert.equal(req.links[0]!.spanId, conn.spanId);
    const names = req.events.map((e) => e.name);
    assert.ok(names.includes('quic.stream_open'));
    assert.ok(names.includes('quic.stream_destroy'));
    assert.equal(req.attributes['h2o.quic.packets_lost'], 0);
    assert.equal(req.attributes['http.response.body.size'], 41);
  });
});

test('a per-span cap keeps the first events, counts the rest as dropped, and keeps totals exact', async () => {
  const receiver = await startOtlpReceiver();
  try {
    const spans = await replayHttp3(receiver, ['--max-span-events', '2']);
    const conn = spans.find((s) => s.kind === INTERNAL)!;
    assert.deepEqual(
      conn.events.map((e) => e.name),
      ['quic.ecn_validation', 'quic.handshake_complete'],
    );
    assert.equal(conn.droppedEventsCount, 3);
    assert.equal(conn.attributes['h2o.quic.events_dropped'], 3);
    assert.equal(
      conn.attributes['h2o.quic.close.error'],
      'NO_ERROR',
      'the close is known even when its event was capped',
    );
  } finally {
    await receiver.close();
  }
});

test('--quic-events chooses the subscription: none, basic (default), detailed', () => {
  const none = subscriptionFor({ responseHeaders: false, quicEvents: 'none' });
  const basic = subscriptionFor({ responseHeaders: false, quicEvents: 'basic' });
  const detailed = subscriptionFor({ responseHeaders: false, quicEvents: 'detailed' });
  assert.ok(!none.some((p) => p.startsWith('picotls:')));
  assert.deepEqual(
    none.filter((p) => p.startsWith('quicly:')),
    ['quicly:new_path'],
  );
  for (const p of [
    'quicly:packet_lost',
    'quicly:pto',
    'quicly:cc_congestion',
    'quicly:transport_close_send',
    'quicly:stream_on_destroy',
    'quicly:conn_stats',
    'picotls:receive_message',
  ])
    assert.ok(basic.includes(p), p);
  assert.ok(!basic.includes('quicly:packet_sent'), 'basic never subscribes to every packet');
  assert.ok(detailed.includes('quicly:packet_sent') && detailed.includes('quicly:stream_send'));
  assert.ok(new Set(basic).size === basic.length, 'no duplicates');
});

/** The capture's connection, repeated with fresh conn ids and CIDs, so each copy is a connection of its own. */
function manyConnections(capture: string, n: number): Buffer {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push(
      capture
        .replace(/"conn_id":19\b/g, `"conn_id":${1000 + i}`)
        .replace(/"dcid":"55237ed37b2e08d0"/g, `"dcid":"${(0x55237ed37b2e0000 + i).toString(16)}"`),
    );
  }
  return Buffer.from(out.join(''));
}

function readQlog(path: string): { header: Record<string, unknown>; events: Record<string, unknown>[] } {
  const text = readFileSync(path, 'utf8');
  assert.ok(text.startsWith('\u001e'), 'JSON text sequence: every record starts with RS');
  const records = text
    .split('\u001e')
    .slice(1)
    .map((r) => {
      assert.ok(r.endsWith('\n'));
      return JSON.parse(r) as Record<string, unknown>;
    });
  return { header: records[0]!, events: records.slice(1) };
}

describe('--qlog-dir', () => {
  test('one .sqlog per QUIC connection, in the qlog QUIC event schema, group_id = original DCID', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-qlog-'));
    const res = await runCli([
      '--replay',
      fixture('http3.jsonl'),
      '--exporter',
      'none',
      '--status-interval',
      '0',
      '--qlog-dir',
      dir,
    ]);
    assert.equal(res.code, 0, res.stderr);
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.match(files[0]!, /-19-55237ed37b2e08d0\.sqlog$/);
    const { header, events } = readQlog(join(dir, files[0]!));
    assert.equal(header.file_schema, 'urn:ietf:params:qlog:file:sequential');
    const trace = header.trace as {
      common_fields: Record<string, unknown>;
      vantage_point: Record<string, unknown>;
    };
    assert.equal(trace.common_fields.group_id, '55237ed37b2e08d0');
    assert.equal(trace.vantage_point.type, 'server');
    for (const e of events) {
      assert.equal(typeof e.time, 'number');
      assert.ok(QLOG_EVENT_NAMES.has(e.name as string), `draft event name: ${String(e.name)}`);
      assert.equal(typeof e.data, 'object');
    }
    const sent = events.filter((e) => e.name === 'quic:packet_sent');
    assert.equal(sent.length, 5, 'with --qlog-dir every packet is subscribed (detailed)');
    assert.deepEqual((sent[0]!.data as { header: unknown }).header, {
      packet_type: 'initial',
      packet_number: 0,
    });
    const closed = events.find((e) => e.name === 'quic:connection_closed')!;
    assert.deepEqual(closed.data, { owner: 'remote', connection_code: 0, reason: '' });
    assert.equal(events[0]!.name, 'quic:path_assigned');
    assert.equal(events[1]!.name, 'quic:connection_started');
    assert.match(res.stderr, /qlog: 1 files/);
  });

  test('the directory stays under its size bound: the oldest files are rotated out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-qlog-'));
    const input = manyConnections(readFileSync(fixture('http3.jsonl'), 'utf8'), 30);
    const maxMb = 0.05;
    const res = await runCli(
      [
        '--replay',
        '-',
        '--exporter',
        'none',
        '--status-interval',
        '0',
        '--qlog-dir',
        dir,
        '--qlog-max-mb',
        String(maxMb),
      ],
      {},
      input,
    );
    assert.equal(res.code, 0, res.stderr);
    const files = readdirSync(dir).sort();
    let total = 0;
    for (const f of files) total += statSync(join(dir, f)).size;
    assert.ok(total <= maxMb * 1024 * 1024, `${total} bytes`);
    assert.ok(files.length > 3 && files.length < 30, `${files.length} files kept`);
    const rotated = Number(/(\d+) rotated out/.exec(res.stderr)![1]);
    assert.equal(rotated + files.length, 30);
    // The newest connections are the ones kept.
    assert.ok(files.some((f) => f.includes('-1029-')));
    assert.ok(!files.some((f) => f.includes('-1000-')));
    for (const f of files) readQlog(join(dir, f)); // each kept file is complete and parses
  });
});

describe('TLS over TCP and socket writes (real captures)', () => {
  test('an HTTP/1.1 TLS connection gets its handshake facts and the bytes written', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const spans = await replayTo(receiver, labFixture('http1-tls.jsonl'));
      const conn = spans.find((s) => s.kind === INTERNAL)!;
      assert.equal(conn.attributes['h2o.tls.handshake_result'], 0);
      assert.equal(conn.attributes['h2o.tls.handshake_ms'], 5);
      assert.equal(conn.attributes['h2o.socket.bytes_written'], 331);
      assert.deepEqual(
        conn.events.map((e) => e.name),
        ['tls.handshake_complete'],
      );
      // The connection span starts with the handshake (picotls:new), before h1_accept.
      const req = spans.find((s) => s.kind === SERVER)!;
      assert.ok(conn.startTimeUnixNano < req.startTimeUnixNano - 2_000_000n);
    } finally {
      await receiver.close();
    }
  });

  test('an HTTP/2 TLS connection (no h1_accept) is tied to its handshake by worker thread', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const spans = await replayTo(receiver, labFixture('http2-tls.jsonl'));
      const conn = spans.find((s) => s.kind === INTERNAL)!;
      assert.equal(conn.name, 'HTTP/2 connection');
      assert.equal(conn.attributes['h2o.tls.handshake_result'], 0);
      assert.equal(typeof conn.attributes['h2o.tls.handshake_ms'], 'number');
    } finally {
      await receiver.close();
    }
  });
});
