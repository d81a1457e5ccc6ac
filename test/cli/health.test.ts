// --health-port through the real CLI, as the kubelet probes it: /readyz says why it is not ready while H2O's socket
// is absent and turns ready once subscribed, /healthz stays alive throughout; a collector unreachable past
// --ready-export-failure-s makes /readyz name the exporter until it recovers; after SIGTERM /readyz answers
// "shutting down" until the exit; under --pid, ready once the probes are attached; a taken port is an error.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixture, runCli, startAttachedCli, startCli } from '../../harness/cli.js';
import type { CliResult, RunningCli } from '../../harness/cli.js';
import { withReceiver } from '../../harness/otlp-receiver.js';
import { buildUsdtFixture, startUsdtFixture } from '../../harness/usdt-fixture.js';
import { skipBpf } from '../../harness/wait.js';

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function ask(port: number, path: string, method = 'GET'): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Ask until `pred` holds (the server may not listen yet); fail with the last answer and stderr. */
async function askUntil(
  cli: RunningCli,
  port: number,
  path: string,
  pred: (a: Answer) => boolean,
  what: string,
  timeoutMs = 15_000,
): Promise<Answer> {
  const deadline = Date.now() + timeoutMs;
  let last: Answer | string = 'no answer';
  for (;;) {
    try {
      last = await ask(port, path);
      if (pred(last)) return last;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline || cli.child.exitCode !== null)
      throw new Error(`${what}: last answer ${JSON.stringify(last)}\nstderr:\n${cli.stderrSoFar()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface FakeH2olog {
  /** H2O streams these lines to every subscriber, as if they happened now. */
  send(lines: Buffer): void;
  stop(): Promise<void>;
}

/** An h2olog socket that subscribes every client and streams `lines` at once, as H2O does after attaching. */
async function listenH2olog(path: string, lines: Buffer): Promise<FakeH2olog> {
  const subscribers = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      subscribers.add(socket);
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      socket.write(lines);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    send: (more) => subscribers.forEach((s) => s.write(more)),
    stop: async () => {
      for (const s of subscribers) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** SIGTERM unless sent already (a second one would kill the process), then its exit. */
async function terminate(cli: RunningCli): Promise<CliResult> {
  if (!cli.child.killed) cli.child.kill('SIGTERM');
  return cli.result;
}

async function withSocketDir<T>(body: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-health-'));
  try {
    return await body(join(dir, 'h2olog.sock'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const isReady = (a: Answer): boolean => a.status === 200 && a.body.status === 'ready';

void test('socket: /readyz 503 with its reason while the socket is absent, 200 once subscribed; /healthz 200 throughout', () =>
  withSocketDir(async (path) => {
    const port = await freePort();
    const cli = startCli(['--socket', path, '--health-port', String(port), '--exporter', 'none']);
    let h2o: FakeH2olog | undefined;
    try {
      const absent = await askUntil(
        cli,
        port,
        '/readyz',
        (a) => Array.isArray(a.body.reasons) && /no socket at/.test(String(a.body.reasons)),
        'not ready for want of the socket',
      );
      assert.equal(absent.status, 503);
      assert.equal(absent.body.status, 'not ready');
      assert.match(
        String((absent.body.reasons as string[])[0]),
        new RegExp(`^socket ${path} not subscribed: `),
      );
      const alive = await askUntil(cli, port, '/healthz', (a) => a.status === 200, 'alive without H2O');
      assert.equal(alive.body.status, 'alive');

      h2o = await listenH2olog(path, await readFile(fixture('http1.jsonl')));
      const ready = await askUntil(cli, port, '/readyz', isReady, 'ready once subscribed');
      assert.deepEqual(ready.body, { status: 'ready', source: `socket ${path} subscribed`, exporter: 'ok' });
      assert.equal((await ask(port, '/healthz')).status, 200);
      assert.equal((await ask(port, '/readyz', 'HEAD')).status, 200);
      assert.equal((await ask(port, '/readyz', 'POST')).status, 405);
      assert.equal((await ask(port, '/metrics')).status, 404);

      await h2o.stop();
      h2o = undefined;
      const lost = await askUntil(
        cli,
        port,
        '/readyz',
        (a) => a.status === 503,
        'not ready once H2O is gone',
      );
      assert.match(String((lost.body.reasons as string[])[0]), /not subscribed/);
      assert.equal((await ask(port, '/healthz')).status, 200);
    } finally {
      const res = await terminate(cli);
      await h2o?.stop();
      assert.equal(res.code, 0, res.stderr);
    }
  }));

void test('socket: the collector unreachable past --ready-export-failure-s makes /readyz name the exporter, until it recovers; SIGTERM: "shutting down", exit 0', () =>
  withSocketDir((path) =>
    withReceiver(async (receiver) => {
      await receiver.stop();
      const port = await freePort();
      const lines = await readFile(fixture('http1.jsonl'));
      const h2o = await listenH2olog(path, lines);
      const cli = startCli(
        [
          '--socket',
          path,
          '--health-port',
          String(port),
          '--ready-export-failure-s',
          '1',
          '--shutdown-timeout',
          '2000',
        ],
        { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl, OTEL_METRICS_EXPORTER: 'none' },
      );
      try {
        const failing = await askUntil(
          cli,
          port,
          '/readyz',
          (a) => a.status === 503 && /^exporter failing for \d+ s: /.test(String(a.body.reasons)),
          'not ready for the exporter',
        );
        assert.deepEqual(Object.keys(failing.body), ['status', 'reasons']);
        assert.equal((failing.body.reasons as string[]).length, 1, 'subscribed: only the exporter is wrong');
        assert.equal((await ask(port, '/healthz')).status, 200);

        await receiver.restart();
        const recovered = await askUntil(cli, port, '/readyz', isReady, 'ready once exports succeed again');
        assert.equal(recovered.body.exporter, 'ok');
        await receiver.waitForSpans(1);

        // Down again with spans waiting, so that the flush at SIGTERM lasts until its deadline.
        await receiver.stop();
        h2o.send(lines);
        await askUntil(cli, port, '/readyz', (a) => /failing/.test(String(a.body.exporter)), 'failing again');
        cli.child.kill('SIGTERM');
        const during = await askUntil(cli, port, '/readyz', (a) => a.status === 503, 'shutting down', 5_000);
        assert.deepEqual(during.body, { status: 'shutting down' });
        assert.equal((await ask(port, '/healthz')).status, 200, 'alive while flushing');
      } finally {
        const res = await terminate(cli);
        await h2o.stop();
        assert.equal(res.code, 0, res.stderr);
      }
    }),
  ));

void test('a port in use: an error naming the port, exit 1', async () => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  try {
    const res = await runCli([
      '--replay',
      fixture('http1.jsonl'),
      '--exporter',
      'none',
      '--health-host',
      '127.0.0.1',
      '--health-port',
      String(port),
    ]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, new RegExp(`--health-port ${port}: the port is in use on 127\\.0\\.0\\.1`));
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

void test('replay: ready once started', async () => {
  const port = await freePort();
  const cli = startCli(['--replay', '-', '--exporter', 'none', '--health-port', String(port)], {}, 'open');
  try {
    const ready = await askUntil(cli, port, '/readyz', isReady, 'ready');
    assert.equal(ready.body.source, 'replay -');
  } finally {
    assert.equal((await terminate(cli)).code, 0);
  }
});

describe('BPF', { skip: skipBpf }, () => {
  void test('--pid: /readyz 200 once the probes are attached', async () => {
    const fx = await startUsdtFixture(await buildUsdtFixture());
    const port = await freePort();
    try {
      const cli = await startAttachedCli([
        '--pid',
        String(fx.pid),
        '--exporter',
        'none',
        '--health-port',
        String(port),
      ]);
      try {
        const ready = await askUntil(cli, port, '/readyz', isReady, 'ready once attached');
        assert.equal(ready.body.source, `bpf attached to H2O pid ${fx.pid}`);
        assert.equal((await ask(port, '/healthz')).status, 200);
      } finally {
        const res = await terminate(cli);
        assert.equal(res.code, 0, res.stderr);
      }
    } finally {
      await fx.stop();
    }
  });
});
