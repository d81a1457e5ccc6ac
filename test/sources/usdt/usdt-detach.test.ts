// Detaching the probes of a real attachment (the fixture, every probe the CLI attaches) within a budget: the kernel
// takes about 0.1 s per probe site, so the event loop must go on meanwhile (spans still flush) and the wait must
// end at the budget, saying how many probes are left for the kernel to detach at exit.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { usdtPointsFor } from '../../../src/events/catalogue.js';
import type { UsdtSource } from '../../../src/sources/usdt/usdt-source.js';
import { startAttachedCli } from '../../../harness/cli.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../../harness/usdt-fixture.js';
import type { UsdtFixture } from '../../../harness/usdt-fixture.js';
import { attachUsdt } from '../../../harness/usdt-attach.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const BUDGET_MS = 1_000;

describe('detaching the probes within a budget', { skip: skipBpf }, () => {
  let fx: UsdtFixture;
  let source: UsdtSource;
  let attached = 0;

  before(async () => {
    fx = await startUsdtFixture(await buildUsdtFixture());
    const attachment = await attachUsdt(
      fx.pid,
      usdtPointsFor({ responseHeaders: true, quicEvents: 'detailed' }),
      10,
    );
    source = attachment.source;
    const running = attachment.running;
    source.stop();
    assert.equal(await running, 'stopped');
    attached = source.attachedLinks;
  });

  after(async () => {
    source?.close();
    await fx?.stop();
  });

  test('the event loop runs while probes are detached, the budget ends the wait, the rest are counted', async () => {
    assert.ok(attached > 10, `the CLI's probes are attached (${attached})`);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const first = await source.closeWithin(BUDGET_MS);
    clearInterval(ticker);
    assert.ok(first.detached > 0, 'some probes detached');
    assert.equal(first.detached + first.remaining, attached);
    assert.equal(source.attachedLinks, first.remaining);
    assert.ok(ticks > 0, 'timers fired while the kernel detached probes');
    // The budget may be overrun by one probe slower than all before it; never by the whole of the rest.
    if (first.remaining > 0) assert.ok(first.ms < BUDGET_MS + 5_000, `${first.ms} ms`);

    const rest = await source.closeWithin(120_000);
    assert.equal(rest.detached, first.remaining);
    assert.equal(rest.remaining, 0);
    assert.equal(source.attachedLinks, 0);
    assert.deepEqual(await source.closeWithin(BUDGET_MS), { detached: 0, remaining: 0, ms: 0 }, 'closed');
  });
});

describe('SIGTERM under --binary', { skip: skipBpf }, () => {
  test('the summary is out by the shutdown deadline, probes detached meanwhile, and the exit code is 0', async () => {
    const bin = await buildUsdtFixture();
    const fx = await startUsdtFixture(bin);
    try {
      const cli = await startAttachedCli([
        '--bpf',
        'usdt',
        '--binary',
        bin,
        '--exporter',
        'none',
        '--shutdown-timeout',
        '1500',
      ]);
      await get(fx.port, '/before-exit');
      const t0 = Date.now();
      cli.child.kill('SIGTERM');
      await waitFor(() => /h2o-otel: done: /.test(cli.stderrSoFar()), 'the exit summary', 15_000);
      const summaryMs = Date.now() - t0;
      // The flush and the detaching share the deadline; one probe may overrun it by its own detach time.
      assert.ok(summaryMs < 1_500 + 1_500, `the summary came ${summaryMs} ms after SIGTERM`);
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /request spans 1\b/);
      assert.match(
        res.stderr,
        /probes detached in \d+ ms; the kernel detaches the other \d+ as the process exits/,
      );
    } finally {
      await fx.stop();
    }
  });
});
