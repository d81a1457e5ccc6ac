// Hybrid tracing through the CLI: on a binary with both h2o_dispose_request and H2O's QUIC probes (the DTrace
// fixture), --bpf auto attaches the request probe and the QUIC probes; the HTTP/3 request's span links to the QUIC
// connection span the QUIC probes made, which looks as it does over USDT alone.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startAttachedCli } from '../../../harness/cli.js';
import type { CliResult } from '../../../harness/cli.js';
import { startOtlpReceiver } from '../../../harness/otlp-receiver.js';
import type { ReceivedSpan } from '../../../harness/otlp-receiver.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../../harness/usdt-fixture.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const SERVER = 2;

async function traceH3(args: string[]): Promise<{ res: CliResult; spans: ReceivedSpan[] }> {
  const fx = await startUsdtFixture(await buildUsdtFixture());
  const receiver = await startOtlpReceiver();
  try {
    const cli = await startAttachedCli(['--pid', String(fx.pid), ...args], {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
    });
    // Both rings are attached once the second message is out.
    if (!args.includes('usdt'))
      await waitFor(() => /attached 1 uprobe/.test(cli.stderrSoFar()), 'the request probe attached');
    assert.match((await get(fx.port, '/fire/h3')).body, /^C=\d+/);
    // The /fire/h3 request itself, the HTTP/3 one, and the QUIC connection (its HTTP/1 connection ends at exit).
    await waitFor(() => receiver.spans.length >= 3, 'spans', 15_000);
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    return { res, spans: receiver.spans };
  } finally {
    await receiver.close();
    await fx.stop();
  }
}

/** What h2o-otel said attaching to the fixture with `args`, once attached. */
async function attachedWith(args: string[]): Promise<string> {
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    const cli = await startAttachedCli(['--pid', String(fx.pid), '--exporter', 'none', ...args]);
    await new Promise((r) => setTimeout(r, 300));
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    return res.stderr;
  } finally {
    await fx.stop();
  }
}

describe('hybrid: the request probe with H2O QUIC probes', { skip: skipBpf }, () => {
  test('the HTTP/3 request links to the QUIC connection span, which has its QUIC detail', async () => {
    const { res, spans } = await traceH3([]);
    assert.match(res.stderr, /this H2O has QUIC probes: attaching them too/);
    const h3 = spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === '/h3');
    assert.ok(h3, spans.map((s) => s.name).join());
    assert.equal(h3.attributes['network.protocol.version'], '3');
    const quic = spans.filter((s) => s.name === 'QUIC connection');
    assert.equal(quic.length, 1, 'one QUIC connection span, not a second from the request probe');
    const conn = quic[0]!;
    assert.deepEqual(
      h3.links.map((l) => l.spanId),
      [conn.spanId],
    );
    assert.equal(conn.attributes['h2o.request_count'], 1);
    // What only the QUIC probes tell (the fixture loses one packet, fires a PTO, and the client closes).
    assert.equal(conn.attributes['h2o.quic.packets_lost'], 1);
    assert.equal(conn.attributes['h2o.quic.ptos'], 1);
    assert.equal(conn.attributes['h2o.quic.close.side'], 'received');
    assert.ok(conn.events.some((e) => e.name === 'quic.handshake_complete'));
    assert.equal(conn.attributes['network.peer.address'], '127.0.0.1');
  });

  test("the HTTP/3 request's span has the QUIC detail USDT gives it: its stream's events, losses and PTOs", async () => {
    const h3Of = (spans: ReceivedSpan[]): ReceivedSpan =>
      spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === '/h3')!;
    const hybrid = h3Of((await traceH3([])).spans);
    const usdt = h3Of((await traceH3(['--bpf', 'usdt'])).spans);
    for (const key of ['h2o.quic.packets_lost', 'h2o.quic.ptos', 'h2o.req_id'])
      assert.equal(hybrid.attributes[key], usdt.attributes[key], key);
    assert.equal(hybrid.attributes['h2o.quic.packets_lost'], 1);
    // The stream's own events (held by the QUIC side for it) and the losses while it was in flight. The USDT path
    // also has those after the request's dispose (stream_on_destroy), which the request probe has already ended.
    const names = (span: ReceivedSpan): string[] => span.events.map((e) => e.name);
    const usdtNames = names(usdt);
    assert.deepEqual(names(hybrid), usdtNames.slice(0, names(hybrid).length));
    assert.ok(
      names(hybrid).includes('quic.packet_lost') && names(hybrid).includes('quic.pto'),
      names(hybrid).join(),
    );
  });

  test('--quic-events none: the request probe alone, the HTTP/3 request on a connection span of its own', async () => {
    const { res, spans } = await traceH3(['--quic-events', 'none']);
    assert.doesNotMatch(res.stderr, /attaching them too/);
    assert.match(res.stderr, /probes attached 1,/);
    const h3 = spans.find((s) => s.kind === SERVER && s.attributes['url.path'] === '/h3')!;
    const conn = spans.find((s) => s.name === 'QUIC connection')!;
    assert.ok(h3 && conn);
    assert.deepEqual(
      h3.links.map((l) => l.spanId),
      [conn.spanId],
    );
    assert.equal(conn.attributes['h2o.quic.packets_lost'], undefined);
  });

  test('--sample-ratio: the request probe alone, since the two programs would sample different connections', async () => {
    const stderr = await attachedWith(['--sample-ratio', '0.5']);
    assert.match(stderr, /--sample-ratio: no QUIC connection detail beside the request probe/);
    assert.match(stderr, /probes attached 1,/);
  });

  test('captured response headers: auto uses the USDT probes, which carry them; --bpf request says it cannot', async () => {
    const auto = await attachedWith(['--capture-response-headers', 'content-type']);
    assert.match(auto, /--capture-response-headers: using H2O's USDT probes, which carry response headers/);
    assert.doesNotMatch(auto, /h2o_dispose_request/);
    const request = await attachedWith(['--bpf', 'request', '--capture-response-headers', 'content-type']);
    assert.match(request, /--bpf request reads no response headers/);
    assert.match(request, /attached 1 uprobe at h2o_dispose_request/);
  });
});
