// The request probe's lifecycle on the real H2O 2.2.5, through the CLI: no debug info (a clear error, or the
// fallback to USDT), --debug-file, --binary across H2O restarts, the target's exit, sampling in BPF, a full ring
// counted, and missing privileges named.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { buildDebianH2o } from '../../../harness/debian-h2o.js';
import { runCli, startAttachedCli } from '../../../harness/cli.js';
import type { CliResult } from '../../../harness/cli.js';
import { startH2o } from '../../../harness/h2o-server.js';
import { startOtlpReceiver } from '../../../harness/otlp-receiver.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const SERVER = 2;

/** `n` GETs of `/` over `parallel` keep-alive connections. */
async function load(port: number, n: number, parallel = 1): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: parallel });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
  const worker = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) await one();
  };
  await Promise.all(
    Array.from({ length: parallel }, (_, i) => worker(Math.floor(n / parallel) + (i < n % parallel ? 1 : 0))),
  );
  agent.destroy();
}

const count = (res: CliResult, name: string): number => {
  const m = new RegExp(`${name} (\\d+)`).exec(res.stderr);
  assert.ok(m, `"${name}" in:\n${res.stderr}`);
  return Number(m[1]);
};

describe('request probe lifecycle on the Debian H2O 2.2.5', { skip: skipBpf }, () => {
  let bin: string;
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-request-'));
  const btfArgs = ['--btf-cache-dir', join(dir, 'btf')];

  before(async () => void (bin = await buildDebianH2o()), { timeout: 15 * 60_000 });

  test('a stripped binary: --bpf request says how to get debug info; auto falls back to USDT and says why', async () => {
    const stripped = join(dir, 'h2o-stripped');
    execFileSync('strip', ['--strip-debug', '-o', stripped, bin]);
    const h2o = await startH2o(stripped);
    try {
      const request = await runCli([
        '--pid',
        String(h2o.pid),
        '--bpf',
        'request',
        '--exporter',
        'none',
        ...btfArgs,
      ]);
      assert.equal(request.code, 1, request.stderr);
      assert.match(request.stderr, /has no debug info.*--debug-file PATH/s);
      const auto = await runCli(['--pid', String(h2o.pid), '--exporter', 'none', ...btfArgs]);
      assert.equal(auto.code, 1, auto.stderr);
      assert.match(
        auto.stderr,
        /the request probe cannot be used \(.*has no debug info.*\); using H2O's USDT probes/s,
      );
      assert.match(auto.stderr, /has no h2o USDT probes: this H2O was built without DTrace/);
    } finally {
      await h2o.stop();
    }
  });

  test('--debug-file: a stripped binary is traced with its separate debug file', async () => {
    const stripped = join(dir, 'h2o-stripped-2');
    const debug = join(dir, 'h2o.debug');
    execFileSync('objcopy', ['--only-keep-debug', bin, debug]);
    execFileSync('strip', ['--strip-debug', '-o', stripped, bin]);
    const h2o = await startH2o(stripped);
    const receiver = await startOtlpReceiver();
    try {
      const cli = await startAttachedCli(
        ['--pid', String(h2o.pid), '--bpf', 'request', '--debug-file', debug, ...btfArgs],
        { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl },
      );
      await load(h2o.httpPort, 3);
      await receiver.waitForSpans(3);
      cli.child.kill('SIGTERM');
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /struct layouts from debug info in .*h2o\.debug/);
      assert.equal(receiver.spans.filter((s) => s.kind === SERVER).length, 3);
    } finally {
      await receiver.close();
      await h2o.stop();
    }
  });

  test('--binary: H2O started later, restarted, and replaced by a new file is traced; its exit does not end the run', async () => {
    const own = join(dir, 'h2o-binary');
    copyFileSync(bin, own);
    execFileSync('chmod', ['755', own]);
    const receiver = await startOtlpReceiver();
    try {
      const cli = await startAttachedCli(['--binary', own, ...btfArgs], {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
      });
      const first = await startH2o(own);
      await load(first.httpPort, 2);
      await receiver.waitForSpans(2);
      await first.stop();
      const second = await startH2o(own);
      await load(second.httpPort, 2);
      await first.stop();
      // An upgrade replaces the file (a new inode): its uprobe is the old file's, so the new one is attached too.
      copyFileSync(bin, `${own}.new`);
      execFileSync('mv', [`${own}.new`, own]);
      await waitFor(
        () => /was replaced .*attached the request probe to the new file too/.test(cli.stderrSoFar()),
        'the new file attached',
      );
      await second.stop();
      const third = await startH2o(own);
      await load(third.httpPort, 2);
      const requests = (): number => receiver.spans.filter((s) => s.kind === SERVER).length;
      await waitFor(() => requests() >= 6, 'six request spans');
      await third.stop();
      assert.equal(cli.child.exitCode, null, '--binary keeps running when H2O exits');
      cli.child.kill('SIGTERM');
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.equal(requests(), 6);
      assert.equal(count(res, 'probes attached'), 2);
    } finally {
      await receiver.close();
    }
  });

  test('--pid: the target exiting flushes every span and ends the run with 0', async () => {
    const h2o = await startH2o(bin);
    const receiver = await startOtlpReceiver();
    try {
      const cli = await startAttachedCli(['--pid', String(h2o.pid), ...btfArgs], {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.httpUrl,
      });
      await load(h2o.httpPort, 4, 2);
      await h2o.stop();
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stderr, /H2O pid \d+ exited; flushing and stopping/);
      assert.equal(receiver.spans.filter((s) => s.kind === SERVER).length, 4);
      assert.equal(receiver.spans.filter((s) => s.name === 'HTTP/1.1 connection').length, 2);
    } finally {
      await receiver.close();
    }
  });

  test('--sample-ratio 0: BPF keeps no connection, and counts what it left out', async () => {
    const h2o = await startH2o(bin);
    try {
      const cli = await startAttachedCli([
        '--pid',
        String(h2o.pid),
        '--sample-ratio',
        '0',
        '--exporter',
        'none',
        ...btfArgs,
      ]);
      await load(h2o.httpPort, 5);
      await new Promise((r) => setTimeout(r, 300));
      cli.child.kill('SIGTERM');
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      assert.equal(count(res, 'request spans'), 0);
      assert.ok(count(res, 'sampled out') >= 5);
      assert.equal(count(res, 'sampled out'), count(res, 'probe hits'));
    } finally {
      await h2o.stop();
    }
  });

  test('a full ring: every record it refused is counted, and spans + lost = requests', async () => {
    const h2o = await startH2o(bin);
    try {
      const cli = await startAttachedCli([
        '--pid',
        String(h2o.pid),
        '--ring-size',
        '1',
        '--poll-ms',
        '5000',
        '--exporter',
        'none',
        ...btfArgs,
      ]);
      const n = 4000;
      await load(h2o.httpPort, n, 8);
      cli.child.kill('SIGTERM');
      const res = await cli.result;
      assert.equal(res.code, 0, res.stderr);
      const lost = count(res, 'ring lost');
      const spans = count(res, 'request spans');
      assert.ok(lost > 0, `a 1 MiB ring read every 5 s overflows (${res.stderr})`);
      assert.match(res.stderr, /the BPF ring buffer was full/);
      // The 8 connection ends (version-0 calls) may be among the lost records.
      assert.ok(spans + lost >= n && spans + lost <= n + 8, `spans ${spans} + lost ${lost} vs ${n}`);
    } finally {
      await h2o.stop();
    }
  });

  test('--record needs events: --bpf request refuses it, saying to use --bpf usdt', async () => {
    const h2o = await startH2o(bin);
    try {
      const res = await runCli([
        '--pid',
        String(h2o.pid),
        '--bpf',
        'request',
        '--record',
        join(dir, 'rec.jsonl'),
        ...btfArgs,
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(
        res.stderr,
        /--record writes probe events, which --bpf request does not read: use --bpf usdt/,
      );
    } finally {
      await h2o.stop();
    }
  });

  test('without privileges, the capabilities to grant are named', async () => {
    const h2o = await startH2o(bin);
    try {
      // Still root, but with an empty capability set (as in a container that dropped them).
      const res = await runCli(['--pid', String(h2o.pid), '--exporter', 'none', ...btfArgs], {}, undefined, [
        'setpriv',
        '--bounding-set=-all',
        '--inh-caps=-all',
      ]);
      assert.equal(res.code, 1, res.stderr);
      assert.match(res.stderr, /needs CAP_BPF and CAP_PERFMON/);
    } finally {
      await h2o.stop();
    }
  });
});
