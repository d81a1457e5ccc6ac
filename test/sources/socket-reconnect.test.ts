// An h2olog unix socket that goes away and comes back (an H2O restart): the source connects again as soon as the
// path reappears, not at its next backoff step, and measures how long it had no subscription.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { performance } from 'node:perf_hooks';
import {
  backoffMs,
  H2ologSocketSource,
  SETTLE_WINDOW_MS,
  SubscriptionError,
} from '../../src/sources/socket.js';
import { PathWatch } from '../../src/sources/path-watch.js';
import { fixture } from '../../harness/cli.js';
import { sessionsFor } from '../../harness/probe-events.js';
import { waitFor } from '../../harness/wait.js';

/** Large enough that a reconnect seen in the test cannot have come from the backoff. */
const BACKOFF_MS = 120_000;

interface FakeH2o {
  /** The subscriptions accepted so far. */
  readonly subscribers: net.Socket[];
  /** H2O exits: ends every stream and closes the listener, which removes the socket file. */
  stop(): Promise<void>;
}

/** Answers every subscription with 200 and `lines` at once, as H2O streams what happens after a client attaches. */
async function listenH2o(path: string, lines: Buffer): Promise<FakeH2o> {
  const subscribers: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      subscribers.push(socket);
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      socket.write(lines);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    subscribers,
    stop: async () => {
      for (const s of subscribers) s.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sourceAt(path: string, events: number[], said: string[]): H2ologSocketSource {
  return new H2ologSocketSource(
    {
      path,
      trace: ['h2o:h1_accept'],
      sampleRatio: undefined,
      sni: [],
      addresses: [],
      applicationData: false,
      reconnect: true,
      minBackoffMs: BACKOFF_MS,
      maxBackoffMs: BACKOFF_MS,
    },
    {
      sessions: sessionsFor(() => {
        const session = events.push(0) - 1;
        return {
          pushEvents: (batch) => void (events[session]! += batch.length),
          pushRecords: () => assert.fail('the socket source pushes events'),
          end: () => undefined,
        };
      }),
      info: (m) => said.push(m),
      warn: (m) => said.push(m),
    },
  );
}

test('after H2O restarts, the socket is subscribed to again as soon as it reappears, and the gap is measured', async () => {
  const lines = await readFile(fixture('http1.jsonl'));
  const dir = await mkdtemp(join(tmpdir(), 'h2olog-reconnect-'));
  const path = join(dir, 'h2olog.sock');
  const events: number[] = [];
  const said: string[] = [];
  const seen = (): string => said.join('\n');
  const source = sourceAt(path, events, said);
  let h2o = await listenH2o(path, lines);
  const running = source.run();
  try {
    await waitFor(() => (events[0] ?? 0) > 0, 'the first stream', 10_000, seen);
    const lostAt = performance.now();
    await h2o.stop();
    // The stream ended; the attempt made at once finds no socket, and the next one is a backoff away.
    await waitFor(() => said.some((m) => m.startsWith('no socket at')), 'a failed attempt', 10_000, seen);
    // Past the settling window of the removal, only the directory watch can bring the next attempt forward.
    await new Promise((r) => setTimeout(r, SETTLE_WINDOW_MS + 200));
    assert.equal(events.length, 1, 'not subscribed while the socket was gone');

    h2o = await listenH2o(path, lines);
    await waitFor(() => events.length === 2 && events[1] === events[0], 'the second stream', 10_000, seen);
    const gapBound = performance.now() - lostAt;
    assert.equal(h2o.subscribers.length, 1);

    const stats = source.stats;
    assert.equal(stats.reconnects, 1);
    assert.ok(stats.lastGapMs !== undefined && stats.lastGapMs >= SETTLE_WINDOW_MS, `gap ${stats.lastGapMs}`);
    assert.ok(stats.lastGapMs <= gapBound, `gap ${stats.lastGapMs} within the ${gapBound} ms measured here`);
    assert.equal(stats.totalGapMs, stats.lastGapMs);
    assert.ok(
      said.some((m) =>
        new RegExp(`^subscribed to .*, ${stats.lastGapMs} ms after the last stream ended$`).test(m),
      ),
      seen(),
    );
  } finally {
    source.stop();
    await running;
    await h2o.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a restart that keeps the socket file (the listener handed to a new H2O) is subscribed to again at once', async () => {
  const lines = await readFile(fixture('http1.jsonl'));
  const dir = await mkdtemp(join(tmpdir(), 'h2olog-reconnect-'));
  const path = join(dir, 'h2olog.sock');
  const events: number[] = [];
  const said: string[] = [];
  const source = sourceAt(path, events, said);
  const h2o = await listenH2o(path, lines);
  const running = source.run();
  try {
    await waitFor(
      () => (events[0] ?? 0) > 0,
      'the first stream',
      10_000,
      () => said.join('\n'),
    );
    // Only the stream ends; the listener stays, as when H2O's workers are replaced.
    h2o.subscribers[0]!.end();
    await waitFor(() => events.length === 2 && events[1] === events[0], 'the second stream', 10_000);
    assert.equal(source.stats.reconnects, 1);
    assert.equal(h2o.subscribers.length, 2);
  } finally {
    source.stop();
    await running;
    await h2o.stop();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a refused subscription still ends the source, whatever the backoff', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2olog-reconnect-'));
  const path = join(dir, 'h2olog.sock');
  const server = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 404 Not Found\r\n\r\n')));
  await new Promise<void>((resolve) => server.listen(path, resolve));
  try {
    await assert.rejects(sourceAt(path, [], []).run(), SubscriptionError);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
});

test('the backoff doubles from the minimum with up to as much again of jitter, and stops at the maximum', () => {
  assert.equal(
    backoffMs(0, 250, 10_000, () => 0),
    250,
  );
  assert.equal(
    backoffMs(0, 250, 10_000, () => 0.5),
    375,
  );
  assert.equal(
    backoffMs(3, 250, 10_000, () => 0),
    2_000,
  );
  assert.equal(
    backoffMs(10, 250, 10_000, () => 0.99),
    10_000,
  );
});

test('a path watch wakes on the name appearing, not on its neighbours; the timer ends every wait', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'h2olog-watch-'));
  const watch = new PathWatch(join(dir, 'h2olog.sock'));
  const abort = new AbortController();
  try {
    assert.ok(watch.watching);
    const neighbour = watch.wait(300, abort.signal);
    await writeFile(join(dir, 'other'), '');
    assert.equal(await neighbour, false, 'another name is not ours');
    const appeared = watch.wait(BACKOFF_MS, abort.signal);
    await writeFile(join(dir, 'h2olog.sock'), '');
    assert.equal(await appeared, true);
    const aborted = watch.wait(BACKOFF_MS, abort.signal);
    abort.abort();
    assert.equal(await aborted, false);
  } finally {
    watch.close();
    await rm(dir, { recursive: true, force: true });
  }
  const missing = new PathWatch(join(dir, 'gone', 'h2olog.sock'));
  assert.equal(missing.watching, false, 'a directory that does not exist cannot be watched');
  assert.equal(await missing.wait(10, new AbortController().signal), false);
  missing.close();
});
