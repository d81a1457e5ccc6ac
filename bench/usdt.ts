/**
 * usdt: the fixture fires whole HTTP/1.1 request sequences (13 probe sites each, like H2O) as fast as it can, with no
 * tracer, with the bare BPF program (count the hit, return), with h2o-otel stopped (the BPF program alone), with
 * h2o-otel, and with h2o-otel tracing one connection in ten: delivered vs fired, lost, ns per hit in the fixture,
 * and the tracer's CPU relative to the time the fixture took to produce the events.
 */
import { readFileSync } from 'node:fs';
import { startAttachedCli } from '../harness/cli.js';
import type { RunningCli } from '../harness/cli.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../harness/usdt-fixture.js';
import type { UsdtFixture } from '../harness/usdt-fixture.js';

export interface UsdtResult {
  hits: number;
  /** Ring records, plus header hits BPF counted and dropped (names no span uses). */
  delivered: number;
  headers_skipped_in_bpf: number;
  lost: number;
  events_per_s: number;
  ns_per_hit_detached: number;
  ns_per_hit_bare_uprobe: number;
  ns_per_hit_attached: number;
  ratio_to_bare: number;
  /** The full program with the tracer stopped (SIGSTOP) while the fixture fires: BPF alone, no consumer. */
  ns_per_hit_bpf_only: number;
  ratio_bpf_only_to_bare: number;
  /** The median of three runs of a warm tracer (`tracer_cpu_runs`, ascending). */
  tracer_cpu: number;
  tracer_cpu_runs: number[];
  tracer_us_per_event: number;
  /** Requests with Chrome's header set (24 probe hits each): µs per request without and with the tracer. */
  browser_us_per_request_detached: number;
  browser_us_per_request_attached: number;
  browser_tracer_cpu: number;
  /** `--sample-ratio 0.1` (full mode only): tracer CPU and cost per hit when one connection in ten is traced. */
  tracer_cpu_sampled_10pct: number | null;
  ns_per_hit_sampled_10pct: number | null;
}

/** `browser`: requests with Chrome's header set (26 probe sites each; 15 headers, most of which no span uses). */
type Route = 'requests' | 'browser';

async function fire(
  fx: UsdtFixture,
  requests: number,
  route: Route = 'requests',
): Promise<{ hits: number; ns: number }> {
  const body = (await get(fx.port, `/fire/${route}/${requests}`)).body;
  const m = /fired=(\d+) ns=(\d+)/.exec(body);
  if (m === null) throw new Error(`fixture answered ${body}`);
  return { hits: Number(m[1]), ns: Number(m[2]) };
}

const attached = (args: string[]): Promise<RunningCli> => startAttachedCli(['--exporter', 'none', ...args]);

export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
}

/**
 * SIGTERM, then h2o-otel's stderr once its exit summary is out, without waiting for the exit: the counters are
 * final before it detaches, and detaching takes the kernel about 0.1–0.2 s per probe (9 s), of which h2o-otel
 * spends its shutdown deadline before the summary and the process the rest on its own as it exits. Only for the
 * last session on a process: until it is gone its probes still trap.
 */
export async function stopForSummary(cli: RunningCli): Promise<string> {
  cli.child.kill('SIGTERM');
  const deadline = Date.now() + 30_000;
  while (!/h2o-otel: done: .*\n/.test(cli.stderrSoFar())) {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) return (await cli.result).stderr;
    if (Date.now() > deadline) throw new Error(`h2o-otel gave no exit summary:\n${cli.stderrSoFar()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // It writes nothing more: let it detach on its own, without holding this process open.
  cli.child.stdout?.destroy();
  cli.child.stderr?.destroy();
  cli.child.unref();
  return cli.stderrSoFar();
}

/** A count from h2o-otel's exit summary (`…, name N, …`), 0 when absent. */
export function summaryCount(stderr: string, name: string): number {
  return Number(new RegExp(`\\b${name} (\\d+)`).exec(stderr)?.[1] ?? 0);
}

/** Tracer CPU (cores) and µs per record over a run of `requests`, from a warm, already attached tracer. */
async function measuredRun(
  fx: UsdtFixture,
  cli: RunningCli,
  requests: number,
  route: Route = 'requests',
): Promise<{ run: { hits: number; ns: number }; cpu: number }> {
  const cpu0 = cpuSeconds(cli.child.pid!);
  const run = await fire(fx, requests, route);
  await new Promise((r) => setTimeout(r, 700)); // let it drain
  return { run, cpu: cpuSeconds(cli.child.pid!) - cpu0 };
}

/**
 * Detaching takes the kernel about 190 ms per probe (RCU grace periods, serialized), so each tracer session costs
 * ~9 s to end: the quick run uses two sessions (bare; then full, running, then stopped), and does not wait for
 * the last one to finish detaching.
 */
export async function usdtBench(requests: number, withSampling: boolean): Promise<UsdtResult> {
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    await fire(fx, 1000); // warm up the fixture
    const detached = await fire(fx, requests);
    const browserRequests = Math.ceil(requests / 4);
    const browserDetached = await fire(fx, browserRequests, 'browser');

    // Probe hits are what the tracer counted: sites of probes it does not attach (response headers) do not trap.
    const bare = await attached(['--pid', String(fx.pid), '--usdt-count-only']);
    const bareRun = await fire(fx, requests);
    bare.child.kill('SIGTERM');
    const bareHits = summaryCount((await bare.result).stderr, 'probe hits');
    bareRun.hits = bareHits;
    detached.hits = bareHits;

    const cli = await attached(['--bpf', 'usdt', '--pid', String(fx.pid), '--ring-size', '256']);
    // A whole run to warm up: the first runs after attaching cost up to 1.6× the later ones (JIT, V8 sizing its
    // young generation), and a tracer runs for days.
    await fire(fx, requests);
    await new Promise((r) => setTimeout(r, 500));
    // The tracer at work, measured before the stopped run below leaves it a burst of records to catch up with:
    // three runs, the median counts (by tracer CPU), the others are reported next to it.
    const runs: Awaited<ReturnType<typeof measuredRun>>[] = [];
    for (let i = 0; i < 3; i++) runs.push(await measuredRun(fx, cli, requests));
    for (const r of runs) r.run.hits = bareHits;
    const cpuOf = (m: (typeof runs)[number]): number => m.cpu / (m.run.ns / 1e9);
    runs.sort((a, b) => cpuOf(a) - cpuOf(b));
    const full = runs[1]!;
    // Browser-like requests: what one costs H2O with the tracer attached (most of its headers end in BPF).
    const browser = await measuredRun(fx, cli, browserRequests, 'browser');
    // The ring holds a whole run, so nothing is lost while the tracer is stopped: the BPF program alone.
    process.kill(cli.child.pid!, 'SIGSTOP');
    const bpfRun = await fire(fx, requests);
    bpfRun.hits = bareHits;
    process.kill(cli.child.pid!, 'SIGCONT');
    await new Promise((r) => setTimeout(r, 1500)); // drains the stopped run's records
    // The sampled session below traces the same process: it must not start before this one has detached.
    const stderr = withSampling
      ? (cli.child.kill('SIGTERM'), (await cli.result).stderr)
      : await stopForSummary(cli);
    // Every hit of this session (warm-up and both runs), as counted by the BPF program, against what reached us.
    const hits = summaryCount(stderr, 'probe hits');
    // Header hits of names no span uses end in BPF, counted: delivered as counts, not as records.
    const skippedHeaders = summaryCount(stderr, 'headers skipped in BPF');
    const delivered = summaryCount(stderr, 'ring records') + skippedHeaders;
    const lost = summaryCount(stderr, 'ring lost');

    let sampled: { cpu: number; nsPerHit: number } | undefined;
    if (withSampling) {
      const sampledCli = await attached(['--bpf', 'usdt', '--pid', String(fx.pid), '--sample-ratio', '0.1']);
      await fire(fx, requests); // warm up, as above
      const m = await measuredRun(fx, sampledCli, requests);
      sampledCli.child.kill('SIGTERM');
      await sampledCli.result;
      sampled = { cpu: m.cpu / (m.run.ns / 1e9), nsPerHit: m.run.ns / bareHits };
    }

    const hitNs = (r: { hits: number; ns: number }): number => r.ns / r.hits;
    return {
      hits,
      delivered,
      headers_skipped_in_bpf: skippedHeaders,
      lost,
      events_per_s: Math.round(full.run.hits / (full.run.ns / 1e9)),
      ns_per_hit_detached: round(hitNs(detached)),
      ns_per_hit_bare_uprobe: round(hitNs(bareRun)),
      ns_per_hit_attached: round(hitNs(full.run)),
      ratio_to_bare: round(hitNs(full.run) / hitNs(bareRun)),
      ns_per_hit_bpf_only: round(hitNs(bpfRun)),
      ratio_bpf_only_to_bare: round(hitNs(bpfRun) / hitNs(bareRun)),
      tracer_cpu: round(cpuOf(full)),
      tracer_cpu_runs: runs.map((m) => round(cpuOf(m))),
      tracer_us_per_event: round((full.cpu * 1e6) / bareHits),
      browser_us_per_request_detached: round(browserDetached.ns / browserRequests / 1000),
      browser_us_per_request_attached: round(browser.run.ns / browserRequests / 1000),
      browser_tracer_cpu: round(browser.cpu / (browser.run.ns / 1e9)),
      tracer_cpu_sampled_10pct: sampled === undefined ? null : round(sampled.cpu),
      ns_per_hit_sampled_10pct: sampled === undefined ? null : round(sampled.nsPerHit),
    };
  } finally {
    await fx.stop();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
