// A unix-socket server that speaks H2O's h2olog handshake and streams real capture lines, including a restart.
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { H2oStatusPoller, statusJsonUrl } from '../../src/sources/h2o-status.js';
import { fixture, runCli, startCli } from '../../harness/cli.js';
import { startOtlpReceiver } from '../../harness/otlp-receiver.js';
import { waitFor } from '../../harness/wait.js';

interface FakeH2o {
  path: string;
  requests: string[];
  close(): Promise<void>;
}

/** Each accepted connection is answered by the next script entry (the last one repeats). */
type Script = (socket: net.Socket, request: string) => void;

async function fakeH2o(scripts: Script[]): Promise<FakeH2o> {
  const path = join(tmpdir(), `h2olog-test-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  let n = 0;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buf = '';
    socket.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (!buf.includes('\r\n\r\n')) return;
      const request = buf.slice(0, buf.indexOf('\r\n'));
      buf = '';
      if (request.includes('h2o-otel-probe')) return void socket.end();
      requests.push(request);
      scripts[Math.min(n++, scripts.length - 1)]!(socket, request);
    });
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    requests,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(path, { force: true });
    },
  };
}

const stream =
  (lines: Buffer, thenClose: boolean): Script =>
  (socket) => {
    socket.write('HTTP/1.1 200 OK\r\n\r\n');
    // Split mid-line to exercise reassembly across reads.
    const cut = Math.floor(lines.length / 2) + 7;
    socket.write(lines.subarray(0, cut));
    setTimeout(() => {
      socket.write(lines.subarray(cut));
      if (thenClose) setTimeout(() => socket.end(), 50);
    }, 30);
  };

test('subscribes to exactly the needed points, survives an H2O restart, and exits 0 on SIGTERM', async () => {
  const http1 = await readFile(fixture('http1.jsonl'));
  const http3 = await readFile(fixture('http3.jsonl'));
  // First H2O process streams conn 15 then exits; the restarted one starts its ids again and serves HTTP/3.
  const h2o = await fakeH2o([stream(http1, true), stream(Buffer.concat([http1, http3]), false)]);
  const receiver = await startOtlpReceiver();
  try {
    const cli = startCli(
      [
        '--socket',
        h2o.path,
        '--status-interval',
        '1',
        '--sample-ratio',
        '0.5',
        '--sni',
        'a.example',
        '--quic-events',
        'none',
      ],
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      },
    );
    // 2 sessions: HTTP/1 (request + conn), then HTTP/1 again + HTTP/3 (request) — conn spans of the live
    // session come at shutdown.
    await receiver.waitForSpans(5, 20_000);
    const started = Date.now();
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    assert.ok(Date.now() - started < 5_000, 'flushes and exits within 5 s');

    assert.ok(h2o.requests.length >= 2, 'reconnected after the stream ended');
    const query = h2o.requests[0]!;
    assert.match(query, /^GET \/\.well-known\/h2olog\?.* HTTP\/1\.0$/);
    const points = [...query.matchAll(/trace=([^& ]+)/g)].map((m) => decodeURIComponent(m[1]!)).sort();
    assert.deepEqual(points, [
      'h2o:h1_accept',
      'h2o:h1_close',
      'h2o:h3s_accept',
      'h2o:h3s_destroy',
      'h2o:h3s_stream_stats',
      'h2o:receive_request',
      'h2o:receive_request_header',
      'h2o:send_response',
      'h2o:write_complete',
      'h2o:writev',
      'quicly:new_path',
    ]);
    assert.match(query, /sample-ratio=0\.5/);
    assert.match(query, /sni=a\.example/);
    assert.match(query, /application-data=1/);

    const spans = await receiver.waitForSpans(6);
    const requests = spans.filter((s) => s.kind === 2);
    // conn 15 appears in both sessions: two different requests, each linked to its own connection span.
    const conn15 = requests.filter((s) => s.attributes['h2o.conn_id'] === 15);
    assert.equal(conn15.length, 2);
    assert.notEqual(conn15[0]!.links[0]!.spanId, conn15[1]!.links[0]!.spanId);
    assert.equal(requests.filter((s) => s.attributes['network.protocol.version'] === '3').length, 1);
    assert.equal(spans.filter((s) => s.name === 'HTTP/1.1 connection').length, 2);
    assert.equal(spans.filter((s) => s.name === 'QUIC connection').length, 1);
    assert.match(res.stderr, /H2O closed the h2olog stream/);
    assert.match(res.stderr, /subscribed to .*, \d+ ms after the last stream ended/);
    assert.match(res.stderr, /, reconnects 1, time without a subscription \d+ ms,/);
    assert.match(res.stderr, /h2o-otel: \d+ events\/s/, 'periodic status line');
    assert.match(res.stderr, /SIGTERM: flushing/);
  } finally {
    await receiver.close();
    await h2o.close();
  }
});

test('a missing socket is explained, and --no-reconnect exits 1', async () => {
  const res = await runCli(['--socket', '/nonexistent/h2olog.sock', '--no-reconnect']);
  assert.equal(res.code, 1);
  assert.match(res.stderr, /no socket at \/nonexistent\/h2olog\.sock: is H2O running/);
  assert.match(res.stderr, /h2olog: appdata/);
});

test('a refused subscription (no h2olog handler, bad sample ratio) is a clear fatal error', async () => {
  const h2o = await fakeH2o([
    (s) => s.end('HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\n\r\nnot found'),
    (s) =>
      s.end(
        'HTTP/1.1 400 Bad Request\r\nContent-Length: 44\r\n\r\nsample-rate must be a number between 0 and 1',
      ),
  ]);
  try {
    const notFound = await runCli(['--socket', h2o.path]);
    assert.equal(notFound.code, 1);
    assert.match(notFound.stderr, /has no h2olog handler .*404.*set `h2olog: appdata`/);
    const bad = await runCli(['--socket', h2o.path]);
    assert.equal(bad.code, 1);
    assert.match(
      bad.stderr,
      /refused the h2olog subscription \(HTTP\/1\.1 400 Bad Request\): sample-rate must be/,
    );
  } finally {
    await h2o.close();
  }
});

test('an invalid --sample-ratio is rejected before connecting', async () => {
  const res = await runCli(['--socket', '/tmp/x.sock', '--sample-ratio', '2']);
  assert.equal(res.code, 2);
  assert.match(res.stderr, /sample-ratio.*between 0 and 1/);
});

test('H2O without appdata: lengths only → the user is told to set `h2olog: appdata`', async () => {
  const lines = await readFile(fixture('lab/appdata-misconfig-no-appdata.jsonl'));
  const h2o = await fakeH2o([stream(lines, true)]);
  try {
    const res = await runCli(['--socket', h2o.path, '--no-reconnect', '--status-interval', '0']);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stderr, /without names and values.*Set `h2olog: appdata`/);
  } finally {
    await h2o.close();
  }
});

test('H2O set to `h2olog: ON` sends nothing to an application-data client: detected by a probe request', async () => {
  const h2o = await fakeH2o([(s) => s.write('HTTP/1.1 200 OK\r\n\r\n')]);
  try {
    const cli = startCli(['--socket', h2o.path, '--status-interval', '0']);
    const deadline = Date.now() + 8_000;
    while (!/sends no events/.test(cli.stderrSoFar()) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    cli.child.kill('SIGINT');
    const res = await cli.result;
    assert.equal(res.code, 0);
    assert.match(res.stderr, /probably configured `h2olog: ON`.*Set `h2olog: appdata`/s);
  } finally {
    await h2o.close();
  }
});

/** An HTTP server answering as H2O's status handler does at `/server-status/json`, with `h2olog.lost` set by the test. */
async function fakeStatus(
  body: () => string,
): Promise<{ url: string; paths: string[]; close(): Promise<void> }> {
  const paths: string[] = [];
  const server = http.createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/server-status`,
    paths,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

test('--h2o-status: events H2O dropped for h2olog clients are read from its status handler, said and counted', async () => {
  const http1 = await readFile(fixture('http1.jsonl'));
  const h2o = await fakeH2o([stream(http1, false)]);
  let lost = 100;
  const status = await fakeStatus(() => `{\n "connections.active": 3,\n "h2olog.lost": ${lost}\n}`);
  try {
    const cli = startCli(['--socket', h2o.path, '--status-interval', '0', '--h2o-status', status.url]);
    await waitFor(
      () => status.paths.length >= 1 && /subscribed/.test(cli.stderrSoFar()),
      'a first status reading',
      10_000,
      () => cli.stderrSoFar(),
    );
    // H2O's counter is global and since its start: only what it gains while h2o-otel watches is reported.
    lost = 130;
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    assert.deepEqual(new Set(status.paths), new Set(['/server-status/json?show=events']));
    assert.match(res.stderr, /H2O dropped 30 trace events so far .*Set `sndbuf: 4194304`/);
    assert.match(res.stderr, /H2O dropped 30, H2O status reads failed 0,/);
  } finally {
    await status.close();
    await h2o.close();
  }
});

test('--h2o-status that cannot be read is said once and counted; the tracing goes on', async () => {
  const http1 = await readFile(fixture('http1.jsonl'));
  const h2o = await fakeH2o([stream(http1, true)]);
  const notH2o = await fakeStatus(() => '{"status": "ok"}');
  try {
    const args = [
      '--socket',
      h2o.path,
      '--no-reconnect',
      '--status-interval',
      '0',
      '--h2o-status',
      notH2o.url,
    ];
    const wrong = await runCli(args);
    assert.equal(wrong.code, 0, wrong.stderr);
    assert.match(
      wrong.stderr,
      /--h2o-status could not be read \(.*has no "h2olog\.lost".*Point it at .*`status: ON`/,
    );
    assert.match(wrong.stderr, /request spans 1, /);
    assert.doesNotMatch(wrong.stderr, /H2O status reads failed 0,/);
    await notH2o.close();
    // Nothing listens there any more.
    const refused = await runCli(args);
    assert.equal(refused.code, 0, refused.stderr);
    assert.match(refused.stderr, /--h2o-status could not be read \(.*ECONNREFUSED/);
    assert.equal(refused.stderr.match(/could not be read/g)?.length, 1);
  } finally {
    await h2o.close();
  }
});

test('--h2o-status is for the socket source and must be an http(s) URL', async () => {
  const replay = await runCli(['--replay', fixture('http1.jsonl'), '--h2o-status', 'http://127.0.0.1:1/s']);
  assert.equal(replay.code, 2);
  assert.match(
    replay.stderr,
    /--h2o-status counts the events H2O drops on the h2olog socket: use it with --socket/,
  );
  const bad = await runCli(['--socket', '/tmp/x.sock', '--h2o-status', 'localhost:8080']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--h2o-status must be an http:\/\/ or https:\/\/ URL/);
});

test("H2O's dropped-event counter: growth is summed across H2O restarts, and the first reading is the baseline", async () => {
  const values = [10, 15, 3, 7];
  let i = 0;
  const status = await fakeStatus(() => `{"h2olog.lost": ${values[Math.min(i++, values.length - 1)]}}`);
  try {
    const poller = new H2oStatusPoller(`${status.url}/`, 60_000);
    for (let n = 0; n < values.length; n++) await poller.read();
    assert.deepEqual(poller.stats, { reads: 4, failures: 0, lost: 5 + 3 + 4, lastError: undefined });
    assert.equal(
      statusJsonUrl('http://h:8080/server-status/json'),
      'http://h:8080/server-status/json?show=events',
    );
  } finally {
    await status.close();
  }
});
