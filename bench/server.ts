/**
 * server: an HTTP/1.1 server under a bounded load from autocannon (another process, loopback): requests/s with no
 * tracer and with h2o-otel attached, spans exported (at a receiver in a third process) vs requests served, and the
 * tracer's CPU per request. Always the fixture's server over USDT and Debian's H2O 2.2.5 (built without DTrace) over
 * the request probe; with H2O_BIN (built with DTrace), that H2O over its h2olog socket, the request probe and USDT.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAttachedCli, startCli } from '../harness/cli.js';
import type { RunningCli } from '../harness/cli.js';
import { waitFor } from '../harness/wait.js';
import { buildDebianH2o } from '../harness/debian-h2o.js';
import { buildUsdtFixture, startUsdtFixture } from '../harness/usdt-fixture.js';
import { startCountReceiver } from './otlp.js';
import type { CountReceiver } from './otlp.js';
import { cpuSeconds, stopForSummary, summaryCount } from './usdt.js';
import { repoRoot } from './stream.js';

/** How h2o-otel was attached: USDT probes, H2O's h2olog socket, or the one uprobe at `h2o_dispose_request`. */
export type TracerSource = 'usdt' | 'socket' | 'request';

export interface ServerResult {
  target: string;
  source: TracerSource;
  /** `none` (`--exporter none`): the tracer builds spans and drops them, so its CPU is without the export's. */
  exporter: 'otlp-grpc' | 'none';
  requests_served: number;
  /** SERVER spans at the receiver for the measured load; null when nothing is exported. */
  spans_exported: number | null;
  /** The tracer's own count of request spans over warm-up and load (`allRequests`), from its exit summary. */
  spans_built: number;
  /** Requests of the warm-up and the measured run: what the tracer's counters are over. */
  all_requests: number;
  /** The mean of the untraced runs before and after the traced ones (`req_per_s_plain_runs`): the ratio's base. */
  req_per_s_plain: number;
  req_per_s_plain_runs: [number, number];
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
  /** The tracer's own CPU (user + system, all its threads) over the measured load, per request served. */
  tracer_us_per_request: number;
  /** The same CPU as a share of one core over the measured load's wall time. */
  tracer_cpu: number;
  /** The bench's OTLP receiver's CPU per request: it shares the machine's CPUs with H2O too. Null without export. */
  receiver_us_per_request: number | null;
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

/** How the tracer under test is started, with `args` added: it resolves once the tracer is ready to see requests. */
type StartTracer = (env: Record<string, string>, args: string[]) => Promise<RunningCli>;

interface TracedRun {
  exporting: boolean;
  traced: Load;
  spans: number | null;
  stderr: string;
  /** The tracer's and the receiver's CPU seconds from the measured load's start until its spans had all arrived. */
  cpuSeconds: number;
  receiverCpuSeconds: number;
  /** Requests of the warm-up and the measured run: what the tracer's counters are over. */
  allRequests: number;
}

/**
 * A tracer started by `start` and warmed up, then the measured load, with the spans the receiver got for it. A tracer
 * runs for days: its first second (V8 compiling the hot path, on the CPUs the server and the load generator need) is
 * warm-up, as the plain server's is, and its spans are counted apart once all have arrived.
 */
async function tracedRun(
  url: string,
  seconds: number,
  start: StartTracer,
  exporting: boolean,
): Promise<TracedRun> {
  const rx = await startCountReceiver();
  try {
    const cli = await start(
      exporting
        ? {
            OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
            OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
            OTEL_METRICS_EXPORTER: 'none',
            // A partial batch goes after 200 ms, so the warm-up's last spans are in soon; under load, batches fill
            // first.
            OTEL_BSP_SCHEDULE_DELAY: String(PARTIAL_BATCH_MS),
          }
        : {},
      exporting ? [] : ['--exporter', 'none'],
    );
    // The tracer's work for a load ends when its spans are in (autocannon closed its connections, and the server
    // has seen it by then); with nothing exported, a second after the load, long after the ring is read.
    const done = (requests: number): Promise<number> =>
      exporting ? spansArrived(rx, requests) : new Promise((r) => setTimeout(() => r(0), 1000));
    const warm = await autocannon(url, 1, 8);
    const warmSpans = await done(warm.requests);
    const cpu0 = cpuSeconds(cli.child.pid!);
    const rxCpu0 = cpuSeconds(rx.child.pid!);
    const traced = await autocannon(url, seconds, 8);
    await done(warmSpans + traced.requests);
    const cpu = cpuSeconds(cli.child.pid!) - cpu0;
    const rxCpu = cpuSeconds(rx.child.pid!) - rxCpu0;
    const stderr = await stopForSummary(cli);
    // Gone before the next run starts: its probes trap until detached (USDT: seconds).
    await waitFor(() => cli.child.exitCode !== null || cli.child.signalCode !== null, 'exit', 30_000);
    const counts = await rx.counts();
    return {
      exporting,
      traced,
      spans: exporting ? counts.serverSpans - warmSpans : null,
      stderr,
      cpuSeconds: cpu,
      receiverCpuSeconds: rxCpu,
      allRequests: warm.requests + traced.requests,
    };
  } finally {
    rx.close();
  }
}

async function plainRun(url: string, seconds: number): Promise<number> {
  await autocannon(url, 1, 4); // warm-up
  return (await autocannon(url, seconds, 8)).perSecond;
}

/**
 * The untraced server's req/s before the traced runs and after them: this machine has slow and fast phases lasting
 * minutes, and the two show how far the baseline moved while the traced runs went on.
 */
type Plain = [number, number];

/**
 * Spans the exporter dropped or could not deliver, from the summary's `exported N, dropped N (at exit N), failed N`:
 * taken from there, not by name alone, since `H2O dropped N` and `H2O status reads failed N` name other things.
 */
function exportLosses(stderr: string): number {
  const m = /\bexported \d+, dropped (\d+) \(at exit \d+\), failed (\d+)/.exec(stderr);
  if (m === null) throw new Error(`no export counts in h2o-otel's summary:\n${stderr}`);
  return Number(m[1]) + Number(m[2]);
}

function result(
  target: string,
  source: TracerSource,
  plain: Plain,
  t: TracedRun,
  seconds: number,
): ServerResult {
  const bpf = source !== 'socket';
  const plainPerSecond = (plain[0] + plain[1]) / 2;
  const usPerRequest = (cpu: number): number => Math.round((cpu / t.traced.requests) * 1e7) / 10;
  return {
    target,
    source,
    exporter: t.exporting ? 'otlp-grpc' : 'none',
    requests_served: t.traced.requests,
    spans_exported: t.spans,
    spans_built: summaryCount(t.stderr, 'request spans'),
    all_requests: t.allRequests,
    req_per_s_plain: Math.round(plainPerSecond),
    req_per_s_plain_runs: [Math.round(plain[0]), Math.round(plain[1])],
    req_per_s_traced: Math.round(t.traced.perSecond),
    ratio: Math.round((t.traced.perSecond / plainPerSecond) * 100) / 100,
    ring_lost: bpf ? summaryCount(t.stderr, 'ring lost') : null,
    h2o_dropped: bpf ? null : summaryCount(t.stderr, 'H2O dropped'),
    spans_dropped_or_failed: exportLosses(t.stderr),
    probe_hits_per_request: bpf
      ? Math.round((summaryCount(t.stderr, 'probe hits') / t.allRequests) * 100) / 100
      : 0,
    tracer_us_per_request: usPerRequest(t.cpuSeconds),
    receiver_us_per_request: t.exporting ? usPerRequest(t.receiverCpuSeconds) : null,
    tracer_cpu: Math.round((t.cpuSeconds / seconds) * 100) / 100,
  };
}

const usdtTracer =
  (pid: number): StartTracer =>
  (env, args) =>
    startAttachedCli(['--bpf', 'usdt', '--pid', String(pid), ...args], env);

/**
 * On a binary with quicly's probes the request probe comes with them (hybrid), and those are announced first: ready
 * once the uprobe itself is attached.
 */
const requestTracer =
  (pid: number): StartTracer =>
  async (env, args) => {
    const cli = await startAttachedCli(['--bpf', 'request', '--pid', String(pid), ...args], env);
    await waitFor(
      () => /attached 1 uprobe at h2o_dispose_request/.test(cli.stderrSoFar()),
      'the request probe',
      20_000,
      () => cli.stderrSoFar(),
    );
    return cli;
  };

export async function serverBench(seconds: number): Promise<ServerResult[]> {
  const results: ServerResult[] = [];
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    const url = `http://127.0.0.1:${fx.port}/`;
    const before = await plainRun(url, seconds);
    const traced = await tracedRun(url, seconds, usdtTracer(fx.pid), true);
    const plain: Plain = [before, await plainRun(url, seconds)];
    results.push(result('fixture', 'usdt', plain, traced, seconds));
  } finally {
    await fx.stop();
  }
  results.push(...(await measureDebianH2o(seconds)));
  const h2oBin = process.env.H2O_BIN;
  if (h2oBin !== undefined && h2oBin !== '') results.push(...(await measureH2o(h2oBin, seconds)));
  return results;
}

/** A small file and H2O's config for it: one thread, no access log, plain HTTP/1.1 on loopback. */
function h2oSite(dir: string, port: number, extraHosts: string[] = []): string {
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  const conf = join(dir, 'h2o.conf');
  writeFileSync(
    conf,
    [
      'num-threads: 1',
      'hosts:',
      '  default:',
      `    listen: { host: 127.0.0.1, port: ${port} }`,
      `    paths: { /: { file.dir: ${dir} } }`,
      ...extraHosts,
      '',
    ].join('\n'),
  );
  return conf;
}

/** H2O started on `conf`, running `measure` on it, stopped after. */
async function withH2o<T>(bin: string, conf: string, measure: (pid: number) => Promise<T>): Promise<T> {
  const h2o = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    if (h2o.exitCode !== null) throw new Error(`${bin} exited with ${h2o.exitCode}`);
    return await measure(h2o.pid!);
  } finally {
    h2o.kill('SIGTERM');
  }
}

/**
 * Debian's own H2O 2.2.5, built from its source package without DTrace (as users run it), traced by the request
 * probe: the path for an H2O that has no USDT probes. 2.2.5 knows no `h2olog:` directive, hence its own config.
 * Exporting, then with `--exporter none`: the tracer's CPU split between building spans and exporting them.
 */
async function measureDebianH2o(seconds: number): Promise<ServerResult[]> {
  const bin = await buildDebianH2o();
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-bench-'));
  const port = await freePort();
  return withH2o(bin, h2oSite(dir, port), async (pid) => {
    const url = `http://127.0.0.1:${port}/index.html`;
    const before = await plainRun(url, seconds);
    const exported = await tracedRun(url, seconds, requestTracer(pid), true);
    const built = await tracedRun(url, seconds, requestTracer(pid), false);
    const plain: Plain = [before, await plainRun(url, seconds)];
    return [
      result('h2o-2.2.5', 'request', plain, exported, seconds),
      result('h2o-2.2.5', 'request', plain, built, seconds),
    ];
  });
}

/**
 * A real H2O (H2O_BIN, built with DTrace) serving a small file on loopback, against one plain baseline taken before
 * and after: traced over its h2olog socket (as README's configuration sets it up, with `--h2o-status` counting what
 * H2O drops), then by the request probe, then over USDT.
 */
async function measureH2o(bin: string, seconds: number): Promise<ServerResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-bench-'));
  const port = await freePort();
  const statusPort = await freePort();
  const socket = join(dir, 'h2olog.sock');
  const conf = h2oSite(dir, port, [
    '  h2olog:',
    '    h2olog: appdata',
    `    listen: { type: unix, port: ${socket}, sndbuf: 4194304 }`,
    '    paths: {}',
    '  status:',
    `    listen: { host: 127.0.0.1, port: ${statusPort} }`,
    '    paths: { /server-status: { status: ON } }',
  ]);
  return withH2o(bin, conf, async (pid) => {
    const url = `http://127.0.0.1:${port}/index.html`;
    const before = await plainRun(url, seconds);
    const overSocket = await tracedRun(
      url,
      seconds,
      async (env, args) => {
        const status = ['--h2o-status', `http://127.0.0.1:${statusPort}/server-status`];
        const cli = startCli(['--socket', socket, '--status-interval', '0', ...status, ...args], env);
        await waitFor(
          () => /subscribed/.test(cli.stderrSoFar()),
          'the h2olog subscription',
          10_000,
          () => cli.stderrSoFar(),
        );
        return cli;
      },
      true,
    );
    const overRequest = await tracedRun(url, seconds, requestTracer(pid), true);
    const overUsdt = await tracedRun(url, seconds, usdtTracer(pid), true);
    const plain: Plain = [before, await plainRun(url, seconds)];
    return [
      result('h2o', 'socket', plain, overSocket, seconds),
      result('h2o', 'request', plain, overRequest, seconds),
      result('h2o', 'usdt', plain, overUsdt, seconds),
    ];
  });
}
