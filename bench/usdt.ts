/**
 * usdt: the fixture fires whole HTTP/1.1 request sequences (13 probe sites each, like H2O) as fast as it can, with no
 * tracer, with the bare BPF program (count the hit, return), and with h2o-otel: delivered vs fired, lost, ns per hit
 * in the fixture, and the tracer's CPU relative to the time the fixture took to produce the events.
 */
import { readFileSync } from 'node:fs';
import { startAttachedCli } from '../test/helpers/cli.js';
import type { RunningCli } from '../test/helpers/cli.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../test/helpers/usdt-fixture.js';
import type { UsdtFixture } from '../test/helpers/usdt-fixture.js';

export interface UsdtResult {
  hits: number;
  delivered: number;
  lost: number;
  events_per_s: number;
  ns_per_hit_detached: number;
  ns_per_hit_bare_uprobe: number;
  ns_per_hit_attached: number;
  ratio_to_bare: number;
  tracer_cpu: number;
  tracer_us_per_event: number;
}

async function fire(fx: UsdtFixture, requests: number): Promise<{ hits: number; ns: number }> {
  const body = (await get(fx.port, `/fire/requests/${requests}`)).body;
  const m = /fired=(\d+) ns=(\d+)/.exec(body);
  if (m === null) throw new Error(`fixture answered ${body}`);
  return { hits: Number(m[1]), ns: Number(m[2]) };
}

const attached = (args: string[]): Promise<RunningCli> => startAttachedCli(['--exporter', 'none', ...args]);

function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
}

function counter(stderr: string, name: string): number {
  const m = new RegExp(`${name} (\\d+)`).exec(stderr);
  return m === null ? 0 : Number(m[1]);
}

export async function usdtBench(requests: number): Promise<UsdtResult> {
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    await fire(fx, 1000); // warm up the fixture
    const detached = await fire(fx, requests);

    // Probe hits are what the tracer counted: sites of probes it does not attach (response headers) do not trap.
    const bare = await attached(['--pid', String(fx.pid), '--usdt-count-only']);
    const bareRun = await fire(fx, requests);
    bare.child.kill('SIGTERM');
    bareRun.hits = counter((await bare.result).stderr, 'probe hits');

    const cli = await attached(['--pid', String(fx.pid)]);
    const cpu0 = cpuSeconds(cli.child.pid!);
    const run = await fire(fx, requests);
    await new Promise((r) => setTimeout(r, 1000)); // let it drain
    const cpu = cpuSeconds(cli.child.pid!) - cpu0;
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    run.hits = counter(res.stderr, 'probe hits');
    detached.hits = run.hits;
    const delivered = counter(res.stderr, 'ring records');
    const lost = counter(res.stderr, 'ring lost');
    const hitNs = (r: { hits: number; ns: number }): number => r.ns / r.hits;
    return {
      hits: run.hits,
      delivered,
      lost,
      events_per_s: Math.round(run.hits / (run.ns / 1e9)),
      ns_per_hit_detached: round(hitNs(detached)),
      ns_per_hit_bare_uprobe: round(hitNs(bareRun)),
      ns_per_hit_attached: round(hitNs(run)),
      ratio_to_bare: round(hitNs(run) / hitNs(bareRun)),
      tracer_cpu: round(cpu / (run.ns / 1e9)),
      tracer_us_per_event: round((cpu * 1e6) / Math.max(1, delivered)),
    };
  } finally {
    await fx.stop();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
