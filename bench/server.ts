/**
 * server: an HTTP/1.1 server under a bounded load from autocannon (another process, loopback): requests/s with no
 * tracer and with h2o-otel attached over USDT, and spans exported (at a receiver in a third process) vs requests
 * served. The fixture's server always; a real H2O too when H2O_BIN points at one built with DTrace.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAttachedCli, startCli } from '../harness/cli.js';
import type { RunningCli } from '../harness/cli.js';
import { waitFor } from '../harness/wait.js';
import { buildUsdtFixture, startUsdtFixture } from '../harness/usdt-fixture.js';
import { startCountReceiver } from './otlp.js';
import type { CountReceiver } from './otlp.js';
import { stopForSummary, summaryCount } from './usdt.js';
import { repoRoot } from './stream.js';

export type TracerSource = 'usdt' | 'socket';

export interface ServerResult {
  target: string;
  /** How h2o-otel was attached: USDT probes, or H2O's h2olog socket. */
  source: TracerSource;
  requests_served: number;
  spans_exported: number;
  req_per_s_plain: number;
  req_per_s_traced: number;
  ratio: number;
  /** Why spans can be fewer than requests, from the tracer's own exit summary: records the ring had no room for,
   * spans the exporter dropped or could not deliver. */
  ring_lost: number | null;
  /** Socket: events H2O dropped because its socket buffer was full (`--h2o-status`). */
  h2o_dropped: number | null;
  spans_dropped_or_failed: number;
  /** Probe hits per request, as the BPF program counted them: with the cost of a bare hit, the trap-cost floor. */
  probe_hits_per_request: number;
}

interface Load {
  requests: number;
  ok: number;
  perSecond: number;
}

function autocannon(url: string, seconds: number, connections: number): Promise<Load> {
  const bin = join(repoRoot, 'node_modules', 'autocannon', 'autocannon.js');
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [bin, '-j', '-c', String(connections), '-d', String(seconds), url],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => {
      try {
        const r = JSON.parse(out) as { requests: { total: number; average: number }; '2xx': number };
        resolve({ requests: r.requests.total, ok: r['2xx'], perSecond: r.requests.average });
      } catch {
        reject(new Error(`autocannon exited ${code}: ${out.slice(0, 300)}`));
      }
    });
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const PARTIAL_BATCH_MS = 200;

/**
 * SERVER spans at the receiver once at least `requests` have arrived and no more for longer than the tracer's
 * batch processor holds a partial batch: the requests autocannon counted, plus the few it had in flight when it
 * stopped, which the server still answered.
 */
async function spansArrived(rx: CountReceiver, requests: number): Promise<number> {
  const settled = PARTIAL_BATCH_MS + 200;
  const deadline = Date.now() + 15_000;
  let last = -1;
  let changed = Date.now();
  for (;;) {
    const n = (await rx.counts()).serverSpans;
    if (n !== last) changed = Date.now();
    last = n;
    if ((n >= requests && Date.now() - changed >= settled) || Date.now() > deadline) return n;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** How the tracer under test is started: it resolves once the tracer is ready to see requests. */
type StartTracer = (env: Record<string, string>) => Promise<RunningCli>;

interface TracedRun {
  traced: Load;
  spans: number;
  stderr: string;
  /** Requests of the warm-up and the measured run: what the tracer's counters are over. */
  allRequests: number;
}

/**
 * A tracer started by `start` and warmed up, then the measured load, with the spans the receiver got for it. A tracer
 * runs for days: its first second (V8 compiling the hot path, on the CPUs the server and the load generator need) is
 * warm-up, as the plain server's is, and its spans are counted apart once all have arrived.
 */
async function tracedRun(url: string, seconds: number, start: StartTracer): Promise<TracedRun> {
  const rx = await startCountReceiver();
  try {
    const cli = await start({
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_METRICS_EXPORTER: 'none',
      // A partial batch goes after 200 ms, so the warm-up's last spans are in soon; under load, batches fill first.
      OTEL_BSP_SCHEDULE_DELAY: String(PARTIAL_BATCH_MS),
    });
    const warm = await autocannon(url, 1, 8);
    const warmSpans = await spansArrived(rx, warm.requests);
    const traced = await autocannon(url, seconds, 8);
    // autocannon closed its connections; a moment for the server to see it (h1_close). Stopping the tracer then
    // reads what is left and flushes every span before its exit summary.
    await new Promise((r) => setTimeout(r, 300));
    const stderr = await stopForSummary(cli);
    const counts = await rx.counts();
    return {
      traced,
      spans: counts.serverSpans - warmSpans,
      stderr,
      allRequests: warm.requests + traced.requests,
    };
  } finally {
    rx.close();
  }
}

async function plainRun(url: string, seconds: number): Promise<Load> {
  await autocannon(url, 1, 4); // warm-up
  return autocannon(url, seconds, 8);
}

function result(target: string, source: TracerSource, plain: Load, t: TracedRun): ServerResult {
  const usdt = source === 'usdt';
  return {
    target,
    source,
    requests_served: t.traced.requests,
    spans_exported: t.spans,
    req_per_s_plain: Math.round(plain.perSecond),
    req_per_s_traced: Math.round(t.traced.perSecond),
    ratio: Math.round((t.traced.perSecond / plain.perSecond) * 100) / 100,
    ring_lost: usdt ? summaryCount(t.stderr, 'ring lost') : null,
    h2o_dropped: usdt ? null : summaryCount(t.stderr, 'H2O dropped'),
    spans_dropped_or_failed: summaryCount(t.stderr, 'dropped') + summaryCount(t.stderr, 'failed'),
    probe_hits_per_request: usdt
      ? Math.round((summaryCount(t.stderr, 'probe hits') / t.allRequests) * 100) / 100
      : 0,
  };
}

const usdtTracer =
  (pid: number): StartTracer =>
  (env) =>
    startAttachedCli(['--bpf', 'usdt', '--pid', String(pid)], env);

export async function serverBench(seconds: number): Promise<ServerResult[]> {
  const results: ServerResult[] = [];
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    const url = `http://127.0.0.1:${fx.port}/`;
    const plain = await plainRun(url, seconds);
    results.push(result('fixture', 'usdt', plain, await tracedRun(url, seconds, usdtTracer(fx.pid))));
  } finally {
    await fx.stop();
  }
  const h2oBin = process.env.H2O_BIN;
  if (h2oBin !== undefined && h2oBin !== '') results.push(...(await measureH2o(h2oBin, seconds)));
  return results;
}

/**
 * A real H2O (H2O_BIN, built with DTrace) serving a small file on loopback, traced over its h2olog socket (as
 * README's configuration sets it up, with `--h2o-status` counting what H2O drops), then over USDT. The socket
 * comes first: the USDT session's probes go on trapping for seconds while the kernel detaches them.
 */
async function measureH2o(bin: string, seconds: number): Promise<ServerResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-bench-'));
  const port = await freePort();
  const statusPort = await freePort();
  const socket = join(dir, 'h2olog.sock');
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  writeFileSync(
    join(dir, 'h2o.conf'),
    [
      'num-threads: 1',
      'hosts:',
      '  default:',
      `    listen: { host: 127.0.0.1, port: ${port} }`,
      `    paths: { /: { file.dir: ${dir} } }`,
      '  h2olog:',
      '    h2olog: appdata',
      `    listen: { type: unix, port: ${socket}, sndbuf: 4194304 }`,
      '    paths: {}',
      '  status:',
      `    listen: { host: 127.0.0.1, port: ${statusPort} }`,
      '    paths: { /server-status: { status: ON } }',
      '',
    ].join('\n'),
  );
  const h2o = spawn(bin, ['-c', join(dir, 'h2o.conf')], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    if (h2o.exitCode !== null) throw new Error(`H2O_BIN ${bin} exited with ${h2o.exitCode}`);
    const url = `http://127.0.0.1:${port}/index.html`;
    const plain = await plainRun(url, seconds);
    const overSocket = await tracedRun(url, seconds, async (env) => {
      const args = ['--socket', socket, '--status-interval', '0'];
      const cli = startCli([...args, '--h2o-status', `http://127.0.0.1:${statusPort}/server-status`], env);
      await waitFor(
        () => /subscribed/.test(cli.stderrSoFar()),
        'the h2olog subscription',
        10_000,
        () => cli.stderrSoFar(),
      );
      return cli;
    });
    const overUsdt = await tracedRun(url, seconds, usdtTracer(h2o.pid!));
    return [result('h2o', 'socket', plain, overSocket), result('h2o', 'usdt', plain, overUsdt)];
  } finally {
    h2o.kill('SIGTERM');
  }
}
