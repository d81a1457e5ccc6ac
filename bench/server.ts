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
import { startAttachedCli } from '../test/helpers/cli.js';
import { buildUsdtFixture, startUsdtFixture } from '../test/helpers/usdt-fixture.js';
import { startCountReceiver } from './otlp.js';
import type { CountReceiver } from './otlp.js';
import { stopForSummary, summaryCount } from './usdt.js';
import { repoRoot } from './stream.js';

export interface ServerResult {
  target: string;
  requests_served: number;
  spans_exported: number;
  req_per_s_plain: number;
  req_per_s_traced: number;
  ratio: number;
  /** Why spans can be fewer than requests, from the tracer's own exit summary: records the ring had no room for,
   * spans the exporter dropped or could not deliver. */
  ring_lost: number;
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

/** Measure one server (its pid and URL): plain, then traced (after a warm-up) with spans counted at the receiver. */
async function measure(target: string, pid: number, url: string, seconds: number): Promise<ServerResult> {
  await autocannon(url, 1, 4); // warm-up
  const plain = await autocannon(url, seconds, 8);
  const rx = await startCountReceiver();
  try {
    const cli = await startAttachedCli(['--pid', String(pid)], {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_METRICS_EXPORTER: 'none',
      // A partial batch goes after 200 ms, so the warm-up's last spans are in soon; under load, batches fill first.
      OTEL_BSP_SCHEDULE_DELAY: String(PARTIAL_BATCH_MS),
    });
    // A tracer runs for days: its first second (V8 compiling the hot path, on the CPUs the server and the load
    // generator need) is warm-up, as the plain server's is. Its spans are counted apart once all have arrived.
    const warm = await autocannon(url, 1, 8);
    const warmSpans = await spansArrived(rx, warm.requests);
    const traced = await autocannon(url, seconds, 8);
    // autocannon closed its connections; a moment for the server to see it (h1_close). Stopping the tracer then
    // drains the ring and flushes every span before its exit summary.
    await new Promise((r) => setTimeout(r, 300));
    const stderr = await stopForSummary(cli);
    const counts = await rx.counts();
    return {
      target,
      requests_served: traced.requests,
      spans_exported: counts.serverSpans - warmSpans,
      req_per_s_plain: Math.round(plain.perSecond),
      req_per_s_traced: Math.round(traced.perSecond),
      ratio: Math.round((traced.perSecond / plain.perSecond) * 100) / 100,
      ring_lost: summaryCount(stderr, 'ring lost'),
      spans_dropped_or_failed: summaryCount(stderr, 'dropped') + summaryCount(stderr, 'failed'),
      probe_hits_per_request:
        Math.round((summaryCount(stderr, 'probe hits') / (warm.requests + traced.requests)) * 100) / 100,
    };
  } finally {
    rx.close();
  }
}

export async function serverBench(seconds: number): Promise<ServerResult[]> {
  const results: ServerResult[] = [];
  const fx = await startUsdtFixture(await buildUsdtFixture());
  try {
    results.push(await measure('fixture', fx.pid, `http://127.0.0.1:${fx.port}/`, seconds));
  } finally {
    await fx.stop();
  }
  const h2oBin = process.env.H2O_BIN;
  if (h2oBin !== undefined && h2oBin !== '') results.push(await measureH2o(h2oBin, seconds));
  return results;
}

/** A real H2O (H2O_BIN, built with DTrace) serving a small file on loopback. */
async function measureH2o(bin: string, seconds: number): Promise<ServerResult> {
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-bench-'));
  const port = await freePort();
  writeFileSync(join(dir, 'index.html'), 'hello\n');
  writeFileSync(
    join(dir, 'h2o.conf'),
    `listen:\n  host: 127.0.0.1\n  port: ${port}\nnum-threads: 1\nhosts:\n  default:\n    paths:\n      /:\n        file.dir: ${dir}\n`,
  );
  const h2o = spawn(bin, ['-c', join(dir, 'h2o.conf')], { stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    if (h2o.exitCode !== null) throw new Error(`H2O_BIN ${bin} exited with ${h2o.exitCode}`);
    return await measure('h2o', h2o.pid!, `http://127.0.0.1:${port}/index.html`, seconds);
  } finally {
    h2o.kill('SIGTERM');
  }
}
