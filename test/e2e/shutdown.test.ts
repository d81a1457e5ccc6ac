// Exit as a user sees it, through the real CLI: on SIGTERM with the collector down or hung, the flush ends by the
// deadline, everything unsent is counted as dropped, the summary is printed and the exit code is 0; a signal ends
// `--replay -` normally; a collector that comes back gets every span, with one notice for the outage and one for
// the recovery; the end of a session hands its open connections on without overflowing the queue.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fixture, runCli, startCli } from '../../harness/cli.js';
import type { CliResult, RunningCli } from '../../harness/cli.js';
import { withReceiver } from '../../harness/otlp-receiver.js';
import type { OtlpReceiver } from '../../harness/otlp-receiver.js';
import { waitFor } from '../../harness/wait.js';

/** A counter of the exit summary, by its label. */
function summaryCount(stderr: string, label: string): number {
  const summary = /h2o-otel: done: (.*)/.exec(stderr)?.[1];
  assert.ok(summary !== undefined, `no exit summary in:\n${stderr}`);
  const m = new RegExp(`(?:^|, )${label} (\\d+)`).exec(summary);
  assert.ok(m !== null, `no "${label}" in the summary: ${summary}`);
  return Number(m[1]);
}

const spansMade = (stderr: string): number =>
  summaryCount(stderr, 'request spans') + summaryCount(stderr, 'connection spans');

/** --replay - with stdin left open, the capture written to it: h2o-otel waits for more input. */
async function replayOpen(args: string[], env: Record<string, string> = {}): Promise<RunningCli> {
  const cli = startCli(['--replay', '-', '--status-interval', '0', ...args], env, 'open');
  cli.child.stdin?.write(await readFile(fixture('http1.jsonl')));
  return cli;
}

async function terminate(cli: RunningCli, afterMs: number): Promise<{ res: CliResult; exitMs: number }> {
  await new Promise((r) => setTimeout(r, afterMs));
  const t0 = Date.now();
  cli.child.kill('SIGTERM');
  const res = await cli.result;
  return { res, exitMs: Date.now() - t0 };
}

void test('--replay - with stdin still open exits 0 on SIGTERM, with its summary', async () => {
  const cli = await replayOpen(['--exporter', 'none']);
  const { res } = await terminate(cli, 1_000);
  assert.equal(res.code, 0, res.stderr);
  assert.ok(spansMade(res.stderr) > 0, res.stderr);
  assert.doesNotMatch(res.stderr, /unexpected error|PREMATURE_CLOSE/);
});

for (const [what, breakIt] of [
  ['down', (r: OtlpReceiver) => r.stop()],
  ['hung', (r: OtlpReceiver) => r.failWith('hang')],
] as const) {
  for (const protocol of ['grpc', 'http/protobuf'] as const) {
    void test(`collector ${what} (${protocol}): SIGTERM flushes within the deadline, counts every unsent span, exits 0`, () =>
      withReceiver(async (receiver) => {
        await breakIt(receiver);
        const endpoint = protocol === 'grpc' ? receiver.grpcUrl : receiver.httpUrl;
        const cli = await replayOpen(['--shutdown-timeout', '1500'], {
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
        });
        const { res, exitMs } = await terminate(cli, 2_000);
        assert.equal(res.code, 0, res.stderr);
        assert.ok(exitMs < 1_500 + 1_000, `exited ${exitMs} ms after SIGTERM`);
        const made = spansMade(res.stderr);
        assert.ok(made > 0);
        assert.equal(summaryCount(res.stderr, 'exported'), 0);
        assert.equal(summaryCount(res.stderr, 'dropped'), made, res.stderr);
        assert.match(res.stderr, new RegExp(`dropped ${made} \\(at exit ${made}\\)`));
      }));
  }
}

void test('a collector that comes back gets every span, with one notice for the outage and one for the recovery', () =>
  withReceiver(async (receiver) => {
    await receiver.stop();
    // The replay ends at once; its flush waits for the collector as long as the shutdown timeout without progress.
    const args = [
      '--replay',
      fixture('http1.jsonl'),
      '--status-interval',
      '0',
      '--shutdown-timeout',
      '20000',
    ];
    const cli = startCli(args, {
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    });
    await waitFor(
      () => /export failed/.test(cli.stderrSoFar()),
      'the outage notice',
      10_000,
      () => cli.stderrSoFar(),
    );
    await new Promise((r) => setTimeout(r, 3_000));
    await receiver.restart();
    const res = await cli.result;
    assert.equal(res.code, 0, res.stderr);
    const made = spansMade(res.stderr);
    assert.equal(receiver.spans.length, made, res.stderr);
    assert.equal(summaryCount(res.stderr, 'exported'), made);
    assert.equal(summaryCount(res.stderr, 'dropped'), 0);
    assert.equal(res.stderr.match(/export failed/g)?.length, 1, res.stderr);
    assert.match(
      res.stderr,
      new RegExp(`export recovered after \\d+\\.\\d s: ${made} spans delayed, 0 dropped`),
    );
  }));

void test('the end of a session hands every open connection on without overflowing the queue', async () => {
  const n = 5_000;
  const lines: string[] = [];
  for (let i = 1; i <= n; i++)
    lines.push(
      JSON.stringify({
        module: 'h2o',
        type: 'h1_accept',
        tid: 1,
        time: 1_795_333_619_512 + i,
        conn_id: i,
        sock: i,
      }),
    );
  const res = await runCli(
    ['--replay', '-', '--exporter', 'none', '--max-queue-size', '1000', '--status-interval', '0'],
    {},
    Buffer.from(lines.join('\n') + '\n'),
  );
  assert.equal(res.code, 0, res.stderr);
  assert.equal(summaryCount(res.stderr, 'connection spans'), n);
  assert.equal(summaryCount(res.stderr, 'dropped'), 0, res.stderr);
});

void test('a replay to a collector that is down goes on once exports stall, drops and counts, and exits 0', () =>
  withReceiver(async (receiver) => {
    await receiver.stop();
    const lines: string[] = [];
    const t = 1_795_333_619_512;
    for (let i = 1; i <= 20_000; i++) {
      lines.push(
        JSON.stringify({ module: 'h2o', type: 'h1_accept', tid: 1, time: t + i, conn_id: i, sock: i }),
      );
      lines.push(JSON.stringify({ module: 'h2o', type: 'h1_close', tid: 1, time: t + i, conn_id: i }));
    }
    const res = await runCli(
      ['--replay', '-', '--status-interval', '0', '--max-queue-size', '1000', '--shutdown-timeout', '1000'],
      { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.grpcUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      Buffer.from(lines.join('\n') + '\n'),
    );
    assert.equal(res.code, 0, res.stderr);
    assert.equal(summaryCount(res.stderr, 'connection spans'), 20_000);
    assert.equal(summaryCount(res.stderr, 'exported'), 0);
    assert.equal(summaryCount(res.stderr, 'dropped'), 20_000, res.stderr);
  }));
