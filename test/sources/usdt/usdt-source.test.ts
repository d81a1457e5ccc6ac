// The real BPF program attached through the kernel to the USDT probes of a fixture process that declares H2O's
// probes (test/fixtures/usdt), its real HTTP/1.1 traffic and synthetic HTTP/2, HTTP/3 and CONNECT sequences →
// the real CLI → OTLP → a receiver that decodes the wire bytes.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, renameSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import { repoRoot, runCli, startAttachedCli } from '../../../harness/cli.js';
import type { CliResult } from '../../../harness/cli.js';
import { startOtlpReceiver } from '../../../harness/otlp-receiver.js';
import type { OtlpReceiver, ReceivedSpan } from '../../../harness/otlp-receiver.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../../harness/usdt-fixture.js';
import type { UsdtFixture } from '../../../harness/usdt-fixture.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const SERVER = 2;
const CLIENT = 3;
const INTERNAL = 1;
const STATUS_ERROR = 2;

function find(spans: ReceivedSpan[], pred: (s: ReceivedSpan) => boolean, what: string): ReceivedSpan {
  const found = spans.filter(pred);
  assert.equal(found.length, 1, `expected exactly one ${what}, got ${found.length}`);
  return found[0]!;
}

const request = (spans: ReceivedSpan[], path: string): ReceivedSpan =>
  find(spans, (s) => s.kind === SERVER && s.attributes['url.path'] === path, `request span for ${path}`);

const connection = (spans: ReceivedSpan[], connId: number): ReceivedSpan =>
  find(
    spans,
    (s) => s.kind === INTERNAL && s.attributes['h2o.conn_id'] === connId,
    `connection span ${connId}`,
  );

/** The live run and the replay of its recording use the same output options, so their spans must be equal. */
const OUTPUT_ARGS = [
  '--capture-request-headers',
  'user-agent,x-long,cookie',
  '--capture-response-headers',
  'content-type',
  '--max-header-length',
  '1000',
];

const connIdOf = (body: string): number => Number(/C=(\d+)/.exec(body)![1]);

describe('USDT source on the fixture, exported over OTLP', { skip: skipBpf }, () => {
  let receiver: OtlpReceiver;
  let fx: UsdtFixture;
  let result: CliResult;
  let spans: ReceivedSpan[];
  let recordPath: string;
  const ids: Record<string, number> = {};

  before(async () => {
    const bin = await buildUsdtFixture();
    fx = await startUsdtFixture(bin);
    receiver = await startOtlpReceiver();
    recordPath = join(await mkdtemp(join(tmpdir(), 'h2o-otel-usdt-')), 'record.jsonl');
    const cli = await startAttachedCli(
      ['--bpf', 'usdt', '--pid', String(fx.pid), '--record', recordPath, ...OUTPUT_ARGS],
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      },
    );
    assert.equal((await get(fx.port, '/', { 'user-agent': 'h2o-otel-test/1' })).status, 200);
    assert.equal((await get(fx.port, '/status/404')).status, 404);
    assert.equal((await get(fx.port, '/sleep/30')).status, 200);
    await get(fx.port, '/long?long=1', { 'x-long': 'v'.repeat(3000), cookie: 'session=secret' });
    ids.h2 = connIdOf((await get(fx.port, '/fire/h2')).body);
    ids.h3 = connIdOf((await get(fx.port, '/fire/h3')).body);
    ids.connect = connIdOf((await get(fx.port, '/fire/connect')).body);
    ids.connectError = connIdOf((await get(fx.port, '/fire/connect-error')).body);
    // Let the HTTP/2 grace period pass with the target alive, then make it exit: h2o-otel must notice by itself.
    await new Promise((r) => setTimeout(r, 400));
    await get(fx.port, '/exit').catch(() => undefined);
    result = await cli.result;
    spans = receiver.spans;
  });

  after(async () => {
    await fx?.stop();
    await receiver?.close();
  });

  test('notices the target exiting, flushes and exits 0 on its own', () => {
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`H2O pid ${fx.pid} exited`));
    assert.match(result.stderr, /ring lost 0,/);
    assert.match(result.stderr, /dropped 0 \(at exit 0\), failed 0/);
  });

  test('skips the probe libbpf 1.1 cannot attach (scale-index-base argument), naming it, and keeps the rest', () => {
    assert.match(result.stderr, /cannot attach h2o:connect_success \(its argument spec `[^`]*\(%r\w+,%r\w+/);
    assert.match(result.stderr, /attached \d+ probes to H2O pid \d+ \(1 skipped\)/);
  });

  test('HTTP/1.1 requests become SERVER spans with nanosecond timestamps and their connection', () => {
    const root = request(spans, '/');
    const attrs = root.attributes;
    assert.equal(attrs['http.request.method'], 'GET');
    assert.equal(attrs['http.response.status_code'], 200);
    assert.equal(attrs['network.protocol.version'], '1.1');
    assert.equal(attrs['server.port'], fx.port);
    assert.equal(attrs['user_agent.original'], 'h2o-otel-test/1');
    const conn = connection(spans, attrs['h2o.conn_id'] as number);
    assert.match(conn.attributes['h2o.conn_uuid'] as string, /^[0-9a-f-]{36}$/);
    assert.equal(root.links[0]!.spanId, conn.spanId);
    // Kernel clock: sub-millisecond parts are present (the socket source has whole milliseconds only).
    const subMs = spans.filter((s) => s.startTimeUnixNano % 1_000_000n !== 0n);
    assert.ok(
      subMs.length >= spans.length - 1,
      `only ${subMs.length} of ${spans.length} spans have ns precision`,
    );
    const notFound = request(spans, '/status/404');
    assert.equal(notFound.attributes['http.response.status_code'], 404);
    // Epoch time, not boot time: within a minute of now.
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    assert.ok(nowNs - root.startTimeUnixNano < 60_000_000_000n && root.startTimeUnixNano < nowNs);
  });

  test('durations are measured by the kernel clock', () => {
    const slow = request(spans, '/sleep/30');
    const ns = slow.endTimeUnixNano - slow.startTimeUnixNano;
    assert.ok(ns >= 30_000_000n && ns < 1_000_000_000n, `duration ${ns} ns`);
    const fast = request(spans, '/');
    assert.ok(fast.endTimeUnixNano - fast.startTimeUnixNano < 30_000_000n);
    assert.ok(fast.endTimeUnixNano > fast.startTimeUnixNano);
  });

  test('header values are copied up to the cap, flagged when cut, and secrets stay redacted', () => {
    const s = find(spans, (x) => x.attributes['url.query'] === 'long=1', 'the long-header request');
    const long = s.attributes['http.request.header.x-long'] as string[];
    assert.equal(long.length, 1);
    assert.equal(long[0], 'v'.repeat(1000));
    assert.deepEqual(s.attributes['h2o.truncated_headers'], ['x-long']);
    assert.deepEqual(s.attributes['http.request.header.cookie'], ['REDACTED']);
    assert.ok(
      !JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes('secret'),
    );
  });

  test('HTTP/2 streams of one connection become two spans on it', () => {
    const one = request(spans, '/h2-one');
    const two = request(spans, '/h2-two');
    for (const s of [one, two]) {
      assert.equal(s.attributes['h2o.conn_id'], ids.h2);
      assert.equal(s.attributes['network.protocol.version'], '2');
    }
    assert.equal(one.attributes['h2o.req_id'], 1);
    assert.equal(two.attributes['h2o.req_id'], 3);
    assert.equal(two.attributes['http.response.status_code'], 404);
    assert.equal(one.attributes['http.response.status_code'], 200);
    assert.equal(connection(spans, ids.h2!).name, 'HTTP/2 connection');
  });

  test('HTTP/3: quicly events are tied to the conn id through h3s_accept (client address from new_path)', () => {
    const h3 = request(spans, '/h3');
    assert.equal(h3.attributes['h2o.conn_id'], ids.h3);
    assert.equal(h3.attributes['network.transport'], 'quic');
    assert.equal(h3.attributes['network.protocol.version'], '3');
    assert.equal(h3.attributes['client.address'], '127.0.0.1');
    assert.equal(h3.attributes['client.port'], 54321);
    assert.equal(h3.attributes['http.response.body.size'], 24650);
    const conn = connection(spans, ids.h3!);
    assert.equal(conn.name, 'QUIC connection');
    assert.equal(conn.attributes['h2o.h3.num_requests'], 1);
    assert.equal(conn.attributes['network.peer.port'], 54321);
    assert.ok(conn.endTimeUnixNano >= h3.endTimeUnixNano);
  });

  test('HTTP/3: the QUIC connection span shows the loss, PTO and congestion; the request those in its flight', () => {
    const conn = connection(spans, ids.h3!);
    const events = conn.events.map((e) => e.name);
    assert.deepEqual(
      events.filter((n) => n !== 'quic.ecn_validation'),
      [
        'quic.handshake_complete',
        'quic.handshake_confirmed',
        'quic.packet_lost',
        'quic.congestion',
        'quic.pto',
        'quic.close_received',
      ],
    );
    const lost = conn.events.find((e) => e.name === 'quic.packet_lost')!;
    assert.deepEqual(lost.attributes, { 'quic.packet.number': 2, 'quic.packet.type': '1rtt' });
    const pto = conn.events.find((e) => e.name === 'quic.pto')!;
    assert.deepEqual(pto.attributes, {
      'quic.bytes_in_flight': 1200,
      'quic.cwnd': 12000,
      'quic.pto_count': 1,
    });
    assert.equal(conn.attributes['h2o.quic.packets_lost'], 1);
    assert.equal(conn.attributes['h2o.quic.ptos'], 1);
    assert.equal(conn.attributes['h2o.quic.congestion_events'], 1);
    assert.equal(conn.attributes['h2o.quic.close.side'], 'received');
    assert.equal(conn.attributes['h2o.quic.close.error'], 'NO_ERROR');
    assert.match(conn.attributes['h2o.quic.original_dcid'] as string, /^[0-9a-f]{16}$/);
    assert.notEqual(conn.status.code, STATUS_ERROR);

    const h3 = request(spans, '/h3');
    assert.deepEqual(
      h3.events.map((e) => e.name),
      ['response_start', 'quic.stream_open', 'quic.packet_lost', 'quic.pto', 'quic.stream_destroy'],
    );
    // The stream opens (quicly) before H2O's receive_request: the span starts there, not after its own event.
    const open = h3.events.find((e) => e.name === 'quic.stream_open')!;
    assert.equal(h3.startTimeUnixNano, open.timeUnixNano);
    for (const e of h3.events) assert.ok(e.timeUnixNano >= h3.startTimeUnixNano, e.name);
    assert.equal(h3.attributes['h2o.quic.packets_lost'], 1);
    assert.equal(h3.attributes['h2o.quic.ptos'], 1);
  });

  test('CONNECT: each upstream attempt is a CLIENT child span; the connected one carries the bytes', () => {
    const tunnel = find(
      spans,
      (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === ids.connect,
      'CONNECT span',
    );
    assert.equal(tunnel.name, 'CONNECT');
    assert.equal(tunnel.attributes['server.address'], 'example.test');
    const children = spans
      .filter((s) => s.parentSpanId === tunnel.spanId)
      .sort((a, b) => Number(a.startTimeUnixNano - b.startTimeUnixNano));
    assert.equal(children.length, 2);
    const [failed, ok] = children as [ReceivedSpan, ReceivedSpan];
    assert.equal(failed.kind, CLIENT);
    assert.equal(failed.status.code, STATUS_ERROR);
    assert.equal(failed.attributes['network.peer.address'], '::1');
    assert.equal(failed.attributes['network.peer.port'], 9);
    assert.equal(ok.status.code, 0);
    assert.equal(ok.attributes['network.peer.address'], '127.0.0.1');
    assert.equal(ok.attributes['network.peer.port'], 8443);
    assert.equal(ok.attributes['h2o.tunnel.bytes_sent'], 517);
    assert.equal(ok.attributes['h2o.tunnel.bytes_received'], 5096);
    assert.deepEqual(
      ok.events.map((e) => [e.name, e.attributes.message]),
      [['read_error', 'connection closed by peer']],
    );
    assert.ok(tunnel.endTimeUnixNano >= ok.endTimeUnixNano, 'the request lasts as long as its tunnel');

    const refused = find(
      spans,
      (s) => s.kind === SERVER && s.attributes['h2o.conn_id'] === ids.connectError,
      'failed CONNECT span',
    );
    assert.equal(refused.attributes['http.response.status_code'], 502);
    assert.equal(refused.attributes['h2o.tunnel.error'], 'connection_refused');
    const attempt = find(spans, (s) => s.parentSpanId === refused.spanId, 'refused attempt');
    assert.equal(attempt.status.code, STATUS_ERROR);
    assert.equal(attempt.status.message, 'connection refused');
    assert.equal(attempt.attributes['error.type'], 'connection_refused');
  });

  test('--record writes JSON lines that --replay turns into the same spans', async () => {
    const text = await readFile(recordPath, 'utf8');
    assert.match(text, /"time_sub_ns":\d+/);
    const replayReceiver = await startOtlpReceiver();
    try {
      const res = await runCli(['--replay', recordPath, '--status-interval', '0', ...OUTPUT_ARGS], {
        OTEL_EXPORTER_OTLP_ENDPOINT: replayReceiver.httpUrl,
      });
      assert.equal(res.code, 0, res.stderr);
      const key = (s: ReceivedSpan): string =>
        JSON.stringify([
          s.name,
          s.kind,
          String(s.startTimeUnixNano),
          String(s.endTimeUnixNano),
          s.attributes['h2o.conn_id'],
          s.attributes['h2o.req_id'],
          s.attributes['http.response.status_code'],
          s.attributes['h2o.truncated_headers'],
        ]);
      assert.deepEqual(replayReceiver.spans.map(key).sort(), spans.map(key).sort());
    } finally {
      await replayReceiver.close();
    }
  });
});

/**
 * A fresh fixture traced by h2o-otel (`args`, exporting to a fresh receiver): `drive` sends the traffic, then
 * h2o-otel is stopped and `check` sees its result while the receiver is still open.
 */
async function tracedRun(
  args: string[],
  env: Record<string, string>,
  drive: (fx: UsdtFixture) => Promise<void>,
  check: (res: CliResult, receiver: OtlpReceiver) => Promise<void> | void,
): Promise<void> {
  const fx = await startUsdtFixture(await buildUsdtFixture());
  const receiver = await startOtlpReceiver();
  try {
    const cli = await startAttachedCli(['--bpf', 'usdt', '--pid', String(fx.pid), ...args], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
      ...env,
    });
    await drive(fx);
    await new Promise((r) => setTimeout(r, 300));
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    await check(res, receiver);
  } finally {
    await receiver.close();
    await fx.stop();
  }
}

describe('USDT source limits and lifecycle', { skip: skipBpf }, () => {
  test('a full ring buffer: every lost record is counted, reported and exported as a metric', () =>
    tracedRun(
      // The burst's header is captured, so BPF's header filter lets every record through to the ring.
      ['--ring-size', '1', '--poll-ms', '2000', '--capture-request-headers', 'x-burst'],
      { OTEL_METRIC_EXPORT_INTERVAL: '60000' },
      async (fx) => {
        const fired = (await get(fx.port, '/fire/burst/100000')).body;
        assert.match(fired, /^fired=100000 ns=\d+\n$/);
      },
      async (res, receiver) => {
        const count = (name: string): number => Number(new RegExp(`${name} (\\d+)`).exec(res.stderr)![1]);
        const lost = count('ring lost');
        assert.ok(lost > 50_000, res.stderr);
        // Every hit is accounted for: written to the ring, refused by it, sampled out, or an unused header.
        assert.equal(
          count('probe hits'),
          count('ring records') + lost + count('sampled out') + count('headers skipped in BPF'),
        );
        assert.ok(count('probe hits') >= 100_000);
        assert.match(res.stderr, /ring buffer was full: \d+ events lost/);
        // The final metric export at exit carries the same count.
        const metric = await receiver.waitForMetric('h2o_otel.usdt.lost', (p) => p.value === lost);
        assert.equal(metric.kind, 'sum');
        assert.equal(metric.monotonic, true);
        assert.equal(metric.resource['service.name'], 'h2o');
        const records = await receiver.waitForMetric('h2o_otel.usdt.records');
        assert.equal(records.value, count('ring records'));
      },
    ));

  test('--sample-ratio decides once per connection: a kept connection keeps all its events', () =>
    tracedRun(
      ['--sample-ratio', '0.5'],
      {},
      async (fx) => {
        for (let i = 0; i < 40; i++) await get(fx.port, `/n/${i}`);
      },
      (res, receiver) => {
        const reqs = receiver.spans.filter((s) => s.kind === SERVER);
        assert.ok(reqs.length > 5 && reqs.length < 35, `kept ${reqs.length} of 40 connections`);
        for (const r of reqs) {
          assert.equal(r.attributes['http.request.method'], 'GET', 'request events all kept');
          assert.equal(r.attributes['http.response.status_code'], 404, 'response events kept too');
          const conn = connection(receiver.spans, r.attributes['h2o.conn_id'] as number);
          assert.equal(
            conn.attributes['h2o.incomplete'],
            undefined,
            'accept and close kept with the requests',
          );
        }
        assert.equal(receiver.spans.filter((s) => s.kind === INTERNAL).length, reqs.length);
        assert.match(res.stderr, /sampled out [1-9]\d*/);
      },
    ));

  const LONG_WANTED = 'x-wanted-header-with-a-name-over-32-bytes';
  const LONG_UNUSED = 'x-unused-header-with-a-name-over-32-bytes';
  const browserRequest = async (fx: UsdtFixture, traceId: string): Promise<void> => {
    await get(fx.port, '/browser', {
      'user-agent': 'browser/1',
      accept: 'text/html',
      'accept-language': 'en',
      'sec-fetch-mode': 'navigate',
      cookie: 'session=secret',
      'x-wanted': 'yes',
      [LONG_WANTED]: 'long-yes',
      [LONG_UNUSED]: 'long-no',
      traceparent: `00-${traceId}-b7ad6b7169203331-01`,
    });
  };

  test('header records of names no span uses are dropped in BPF and counted; the spans keep what they need', () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    return tracedRun(
      ['--capture-request-headers', `x-wanted,${LONG_WANTED}`],
      {},
      (fx) => browserRequest(fx, traceId),
      async (res, receiver) => {
        const req = request(receiver.spans, '/browser');
        assert.equal(req.attributes['http.request.method'], 'GET');
        assert.equal(req.attributes['user_agent.original'], 'browser/1');
        assert.deepEqual(req.attributes['http.request.header.x-wanted'], ['yes']);
        // Longer than BPF's 32-byte key: sent on, and user space keeps it when captured.
        assert.deepEqual(req.attributes[`http.request.header.${LONG_WANTED}`], ['long-yes']);
        assert.equal(req.attributes[`http.request.header.${LONG_UNUSED}`], undefined);
        assert.equal(req.traceId, traceId);
        assert.equal(req.parentSpanId, 'b7ad6b7169203331');
        const count = (name: string): number => Number(new RegExp(`${name} (\\d+)`).exec(res.stderr)![1]);
        // accept, accept-language, sec-fetch-mode, cookie and Node's connection header, in BPF; the long unused
        // name in user space.
        assert.ok(count('headers skipped in BPF') >= 5, res.stderr);
        assert.equal(count('unused headers'), count('headers skipped in BPF') + 1, res.stderr);
        // Counted as events all the same: every hit is an event, delivered or skipped.
        assert.equal(count('events'), count('ring records') + count('headers skipped in BPF'));
        assert.equal(count('probe hits'), count('events'));
        await receiver.waitForMetric(
          'h2o_otel.usdt.headers_skipped',
          (p) => p.value === count('headers skipped in BPF'),
        );
      },
    );
  });

  test('--record keeps every header: BPF filters none', () =>
    tracedRun(
      ['--record', join(mkdtempSync(join(tmpdir(), 'h2o-otel-rec-')), 'rec.jsonl')],
      {},
      (fx) => browserRequest(fx, '0af7651916cd43dd8448eb211c80319c'),
      (res) => {
        const count = (name: string): number => Number(new RegExp(`${name} (\\d+)`).exec(res.stderr)![1]);
        assert.equal(count('headers skipped in BPF'), 0, res.stderr);
        assert.equal(count('unused headers'), 0, res.stderr);
        assert.equal(count('events'), count('ring records'));
      },
    ));

  test('--binary follows every process of the executable, including ones started later', async () => {
    const bin = await buildUsdtFixture();
    const receiver = await startOtlpReceiver();
    const cli = await startAttachedCli(['--bpf', 'usdt', '--binary', bin], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
    });
    try {
      for (let round = 0; round < 3; round++) {
        if (round === 2) {
          // An upgrade replaces the file (new inode): new processes run the new file and must be traced too.
          copyFileSync(bin, `${bin}.new`);
          renameSync(`${bin}.new`, bin);
          await waitFor(
            () => /was replaced/.test(cli.stderrSoFar()),
            'the replacement',
            5000,
            () => cli.stderrSoFar(),
          );
        }
        const fx = await startUsdtFixture(bin);
        await get(fx.port, `/round/${round}`);
        await waitFor(
          () => new RegExp(`tracing H2O pid ${fx.pid}`).test(cli.stderrSoFar()),
          'the new process',
        );
        await get(fx.port, '/exit').catch(() => undefined);
        await waitFor(
          () => new RegExp(`H2O pid ${fx.pid} exited`).test(cli.stderrSoFar()),
          'the exit',
          5000,
          () => cli.stderrSoFar(),
        );
      }
      assert.equal(cli.child.exitCode, null, '--binary keeps running when a process exits');
    } finally {
      cli.child.kill('SIGTERM');
    }
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    for (const round of [0, 1, 2]) {
      const s = request(receiver.spans, `/round/${round}`);
      // conn ids restart with each process: both first connections are conn 1, in separate sessions.
      assert.equal(s.attributes['h2o.conn_id'], 1);
    }
    await receiver.close();
  });
});

describe('the BPF program builds from source', { skip: skipBpf }, () => {
  test('npm run build:bpf rebuilds an object that loads, attaches and traces', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'h2o-otel-bpf-')), 'rebuilt.bpf.o');
    const build = execFileSync('sh', [join(repoRoot, 'scripts', 'build-bpf.sh'), out]).toString();
    assert.match(build, /wrote .*rebuilt\.bpf\.o/);
    const fx = await startUsdtFixture(await buildUsdtFixture());
    try {
      const cli = await startAttachedCli(
        ['--bpf', 'usdt', '--pid', String(fx.pid), '--bpf-object', out, '--exporter', 'console'],
        {},
      );
      await get(fx.port, '/rebuilt');
      await new Promise((r) => setTimeout(r, 200));
      cli.child.kill('SIGTERM');
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /GET \/rebuilt → 404 {2}HTTP\/1\.1 over tcp/);
    } finally {
      await fx.stop();
    }
  });
});

describe('USDT source errors say what to do', () => {
  test('a pid that does not exist', async () => {
    const res = await runCli(['--pid', '999999999', '--exporter', 'none']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /no process with pid 999999999/);
  });

  test('an executable without H2O probes (built without DTrace)', async () => {
    const res = await runCli(['--binary', process.execPath, '--exporter', 'none']);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /has no h2o USDT probes: this H2O was built without DTrace/);
    assert.match(res.stderr, /-DWITH_DTRACE=ON/);
  });

  test('without privileges, the capabilities to grant are named', { skip: skipBpf }, async () => {
    // Still root, but with an empty capability set (as in a container that dropped them).
    const res = await runCli(['--binary', await buildUsdtFixture(), '--exporter', 'none'], {}, undefined, [
      'setpriv',
      '--bounding-set=-all',
      '--inh-caps=-all',
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /needs CAP_BPF and CAP_PERFMON/);
    assert.match(res.stderr, /CAP_SYS_PTRACE/);
  });
});
