/**
 * outage: the real CLI on a live h2olog socket (a stand-in H2O writing the bench stream at a steady rate), exporting
 * OTLP gRPC to the counting receiver, which goes away for a while and comes back on its port. Live sources cannot
 * wait, so this is what a collector outage costs: spans delivered against spans made, how long the backlog takes
 * to drain once the collector is back, and the tracer's peak RSS while it holds the backlog.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli } from '../harness/cli.js';
import { startCountReceiver } from './otlp.js';
import type { CountReceiver } from './otlp.js';
import { benchStream } from './stream.js';

export interface OutageResult {
  events_per_s: number;
  up_s: number;
  down_s: number;
  after_s: number;
  spans_made: number;
  spans_received: number;
  exported: number;
  dropped: number;
  failed: number;
  delayed: number;
  /** From the collector's return until the spans that waited through the outage had all arrived. */
  drain_s: number;
  peak_rss_mb: number;
}

const TICK_MS = 50;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A stand-in H2O that answers the subscription and then writes `lines` at `perSecond`, each tick's lines stamped
 * with the current time (the correlator's deadlines run on the wall clock while live).
 */
async function steadyH2o(lines: readonly string[], perSecond: number) {
  const path = join(tmpdir(), `h2o-otel-bench-outage-${process.pid}.sock`);
  await rm(path, { force: true });
  let next = 0;
  let timer: NodeJS.Timeout | undefined;
  const server = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.once('data', () => {
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      const perTick = Math.round((perSecond * TICK_MS) / 1000);
      timer = setInterval(() => {
        const end = Math.min(next + perTick, lines.length);
        const time = `"time":${Date.now()}`;
        socket.write(
          lines
            .slice(next, end)
            .join('')
            .replace(/"time":\d+/g, time),
        );
        next = end;
      }, TICK_MS);
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    close: async () => {
      clearInterval(timer);
      server.close();
      await rm(path, { force: true });
    },
  };
}

function summaryCount(stderr: string, label: string): number {
  const m = new RegExp(`(?:: |, )${label} (\\d+)`).exec(/h2o-otel: done: (.*)/.exec(stderr)?.[1] ?? '');
  return m === null ? NaN : Number(m[1]);
}

export async function outageBench(quick: boolean): Promise<OutageResult> {
  const perSecond = 20_000;
  const [upS, downS, afterS] = quick ? [3, 6, 6] : [5, 20, 15];
  const stream = benchStream(perSecond * (upS + downS + afterS + 2));
  const lines = stream.bytes
    .toString('latin1')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => l + '\n');
  let rx: CountReceiver = await startCountReceiver();
  const port = Number(new URL(rx.url).port);
  const h2o = await steadyH2o(lines, perSecond);
  const cli = startCli(['--socket', h2o.path, '--status-interval', '0'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  });
  let peakRssMb = 0;
  try {
    await sleep(upS * 1000);
    const before = (await rx.counts()).spans;
    rx.close();
    await sleep(downS * 1000);
    rx = await startCountReceiver(port);
    const backAt = Date.now();
    while (!/export recovered after/.test(cli.stderrSoFar()) && Date.now() - backAt < 30_000) await sleep(50);
    const delayed = Number(/: (\d+) spans delayed/.exec(cli.stderrSoFar())?.[1] ?? NaN);
    while ((await rx.counts()).spans < delayed && Date.now() - backAt < 60_000) await sleep(50);
    const drainS = (Date.now() - backAt) / 1000;
    await sleep(Math.max(0, afterS * 1000 - (Date.now() - backAt)));
    peakRssMb =
      Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${cli.child.pid!}/status`, 'utf8'))![1]) / 1024;
    cli.child.kill('SIGTERM');
    const res = await cli.result;
    const received = before + (await rx.counts()).spans;
    const made = summaryCount(res.stderr, 'request spans') + summaryCount(res.stderr, 'connection spans');
    return {
      events_per_s: perSecond,
      up_s: upS,
      down_s: downS,
      after_s: afterS,
      spans_made: made,
      spans_received: received,
      exported: summaryCount(res.stderr, 'exported'),
      dropped: summaryCount(res.stderr, 'dropped'),
      failed: summaryCount(res.stderr, 'failed'),
      delayed,
      drain_s: Math.round(drainS * 10) / 10,
      peak_rss_mb: Math.round(peakRssMb),
    };
  } finally {
    cli.child.kill('SIGKILL');
    rx.close();
    await h2o.close();
  }
}
