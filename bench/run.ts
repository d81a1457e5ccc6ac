/**
 * `npm run bench [-- --quick] [-- --soak]`: every figure measured in one run on this machine and reported next to
 * its floor or baseline; a table on stdout and bench/results/latest.json.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startCli } from '../harness/cli.js';
import { buildUsdtFixture, startUsdtFixture } from '../harness/usdt-fixture.js';
import { otlpGrpcBench, startCountReceiver } from './otlp.js';
import { outageBench } from './outage.js';
import { serverBench } from './server.js';
import type { ServerResult } from './server.js';
import { benchStream, repoRoot } from './stream.js';
import { usdtBench } from './usdt.js';
import type { UsdtResult } from './usdt.js';

const quick = process.argv.includes('--quick');
const soak = process.argv.includes('--soak');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
const run = (section: string): boolean => only === undefined || only.split(',').includes(section);

interface Row {
  section: string;
  figure: string;
  value: string;
  against: string;
}
const rows: Row[] = [];
const row = (section: string, figure: string, value: unknown, against = ''): void =>
  void rows.push({ section, figure, value: String(value), against });

function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-c', '1', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pipelineSection(): Record<string, unknown> {
  const stream = benchStream(quick ? 100_000 : 2_000_000);
  const file = join(mkdtempSync(join(tmpdir(), 'h2o-otel-bench-')), 'stream.jsonl');
  writeFileSync(file, stream.bytes);
  // One CPU, like the target's "one core": a process that the scheduler moves between this machine's two vCPUs runs
  // its JSON.parse-bound loop up to 1.6× slower, at random, which drowns every difference the bench should show.
  const child = [process.execPath, fileURLToPath(new URL('./pipeline-child.js', import.meta.url)), file];
  const pinned = hasTaskset();
  const out = execFileSync(pinned ? 'taskset' : child[0]!, pinned ? ['-c', '1', ...child] : child.slice(1), {
    maxBuffer: 1 << 20,
  });
  const r = JSON.parse(out.toString()) as Record<string, number> & {
    ladderSeconds: { decode: number; correlate: number; map: number };
    metricsSeconds: number;
  };
  const nsPerEvent = (seconds: number): number => Math.round((seconds * 1e9) / r.events!);
  const eventsPerS = r.events! / r.pipelineSeconds!;
  const floorPerS = r.events! / r.floorSeconds!;
  const result = {
    events: r.events!,
    events_per_s: Math.round(eventsPerS),
    json_parse_floor_events_per_s: Math.round(floorPerS),
    ratio_to_floor: round(eventsPerS / floorPerS),
    spans_per_s: Math.round(r.spans! / r.pipelineSeconds!),
    rss_mb: Math.round(r.maxRssMb!),
    spans: r.spans!,
    otlp_bytes: r.otlpBytes!,
    input_mb: round(r.inputMb!),
    // The OTLP encoder's share, measured inside the run: with it, even a pipeline whose own stages cost
    // nothing could not do better than floor / (floor + serializer).
    serializer_share: round(r.serializeSeconds! / r.pipelineSeconds!),
    ratio_bound_with_serializer: round(r.floorSeconds! / (r.floorSeconds! + r.serializeSeconds!)),
    pinned_to_one_cpu: pinned,
    unused_header_lines: r.unusedHeaders!,
    unused_other_lines: r.unusedEvents!,
    // Where an event's time goes, cumulative (ns per event): the JSON.parse floor; decoding as the pipeline does;
    // + correlation; + mapping to spans and the batch processor; + the OTLP encoder (the measured run).
    stage_ns_per_event: {
      json_parse_floor: nsPerEvent(r.floorSeconds!),
      decode: nsPerEvent(r.ladderSeconds.decode),
      correlate: nsPerEvent(r.ladderSeconds.correlate),
      map: nsPerEvent(r.ladderSeconds.map),
      serialize: nsPerEvent(r.pipelineSeconds!),
    },
    // The same pipeline recording the RED metrics of every span (the CLI does, unless --no-metrics).
    with_metrics_events_per_s: Math.round(r.events! / r.metricsSeconds),
    metrics_ns_per_event: nsPerEvent(r.metricsSeconds) - nsPerEvent(r.pipelineSeconds!),
  };
  const st = result.stage_ns_per_event;
  row(
    'pipeline',
    'events/s',
    result.events_per_s,
    `floor ${result.json_parse_floor_events_per_s} (ratio ${result.ratio_to_floor}, target ≥ 0.7, ≥ 1M)`,
  );
  row('pipeline', 'spans/s', result.spans_per_s, `${result.spans} spans, ${result.otlp_bytes} OTLP bytes`);
  row(
    'pipeline',
    'OTLP serializer share',
    result.serializer_share,
    `of the pipeline's time; floor + serializer alone bound the ratio at ${result.ratio_bound_with_serializer}`,
  );
  row('pipeline', 'peak RSS MB', result.rss_mb, `input ${result.input_mb} MB in memory`);
  row(
    'pipeline',
    'ns/event by stage',
    st.serialize,
    `JSON.parse ${st.json_parse_floor}; decode ${st.decode} (${result.unused_header_lines} header and ` +
      `${result.unused_other_lines} other lines no span uses not parsed), +correlate ${st.correlate - st.decode}, ` +
      `+map ${st.map - st.correlate}, ` +
      `+serialize ${st.serialize - st.map}`,
  );
  row(
    'pipeline',
    'events/s with RED metrics',
    result.with_metrics_events_per_s,
    `${result.metrics_ns_per_event} ns/event more than without (${result.events_per_s}), every span recorded`,
  );
  return result;
}

async function soakSection(): Promise<Record<string, unknown>> {
  const minutes = 10;
  const rate = 500;
  const fx = await startUsdtFixture(await buildUsdtFixture());
  const rx = await startCountReceiver();
  const cli = startCli(['--bpf', 'usdt', '--pid', String(fx.pid), '--status-interval', '0'], {
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
  });
  const samples: { s: number; rss_mb: number }[] = [];
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const bin = join(repoRoot, 'node_modules', 'autocannon', 'autocannon.js');
    const load = spawn(
      process.execPath,
      [bin, '-c', '4', '-R', String(rate), '-d', String(minutes * 60), `http://127.0.0.1:${fx.port}/`],
      { stdio: 'ignore' },
    );
    const t0 = Date.now();
    while (load.exitCode === null) {
      const status = readFileSync(`/proc/${cli.child.pid!}/status`, 'utf8');
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
      samples.push({ s: Math.round((Date.now() - t0) / 1000), rss_mb: round(rss) });
      await new Promise((r) => setTimeout(r, 10_000));
    }
  } finally {
    cli.child.kill('SIGTERM');
    await cli.result;
    rx.close();
    await fx.stop();
  }
  const half = samples.slice(Math.floor(samples.length / 2));
  const slope =
    half.length > 1 ? (half.at(-1)!.rss_mb - half[0]!.rss_mb) / ((half.at(-1)!.s - half[0]!.s) / 60) : 0;
  const max = Math.max(...samples.map((x) => x.rss_mb));
  row(
    'soak',
    'max RSS MB',
    round(max),
    `target ≤ 150; second-half trend ${round(slope)} MB/min at ${rate} req/s`,
  );
  return { minutes, req_per_s: rate, samples, max_rss_mb: round(max), second_half_mb_per_min: round(slope) };
}

/** The results key of a server row: the fixture's and H2O_BIN's USDT rows keep the keys they had before. */
function serverKey(s: ServerResult): string {
  if (s.target === 'fixture') return 'server';
  if (s.target === 'h2o-2.2.5')
    return `server_h2o225_${s.source}${s.exporter === 'none' ? '_no_export' : ''}`;
  return s.source === 'usdt' ? 'server_h2o' : `server_h2o_${s.source}`;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

const results: Record<string, unknown> = {
  machine: {
    node: process.version,
    cpu: cpus()[0]?.model,
    cpus: cpus().length,
    memory_gb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
  },
};
if (run('pipeline')) results.pipeline = pipelineSection();
if (run('otlp')) {
  const o = await otlpGrpcBench(benchStream(50_000).bytes, quick ? 60_000 : 500_000);
  results.otlp_grpc = o;
  row(
    'otlp_grpc',
    'spans/s',
    o.spans_per_s,
    `target ≥ 150000; ${o.spans} sent, ${o.received} received, ${o.dropped} dropped`,
  );
  row(
    'otlp_grpc',
    'serializer alone spans/s',
    o.serializer_only_spans_per_s,
    `h2o-otel's encoder on the same spans (ratio ${o.ratio_to_serializer}); the SDK's serializer ` +
      `${o.sdk_serializer_only_spans_per_s}; target ≥ 300000`,
  );
  row(
    'otlp_grpc',
    'serializer share',
    o.serializer_share_of_export,
    `of the export's wall time in the encoder it calls; on a CPU ${o.cpu_share_of_export} of it`,
  );
}
if (run('outage')) {
  const o = await outageBench(quick);
  results.outage = o;
  row(
    'outage',
    'spans received / made',
    `${o.spans_received} / ${o.spans_made}`,
    `collector down ${o.down_s} s of ${o.up_s + o.down_s + o.after_s} at ${o.events_per_s} events/s; ` +
      `dropped ${o.dropped}, failed ${o.failed} (target: none lost while the queue holds)`,
  );
  row('outage', 'backlog drained in s', o.drain_s, `${o.delayed} spans waited through the outage`);
  row('outage', 'peak RSS MB', o.peak_rss_mb, 'the tracer, holding the backlog');
}
if (run('usdt')) {
  const u = await usdtBench(quick ? 20_000 : 200_000, !quick);
  results.usdt = u;
  row(
    'usdt',
    'delivered / fired',
    `${u.delivered} / ${u.hits}`,
    `lost ${u.lost} (target 0); ${u.headers_skipped_in_bpf} unused headers ended in BPF, counted`,
  );
  row('usdt', 'events/s fired', u.events_per_s, 'the fixture at full speed');
  row(
    'usdt',
    'ns per hit',
    u.ns_per_hit_attached,
    `bare uprobe ${u.ns_per_hit_bare_uprobe} (×${u.ratio_to_bare}, target ≤ 2), detached ${u.ns_per_hit_detached}`,
  );
  row(
    'usdt',
    'ns per hit, BPF alone',
    u.ns_per_hit_bpf_only,
    `tracer stopped while firing (×${u.ratio_bpf_only_to_bare} of bare): the rest is the consumer's share`,
  );
  row(
    'usdt',
    'tracer CPU',
    u.tracer_cpu,
    `of a core at the fixture's rate (target ≤ 0.2); ${u.tracer_us_per_event} µs/event; ` +
      `median of ${u.tracer_cpu_runs.join(', ')}`,
  );
  row(
    'usdt',
    'µs per browser request',
    u.browser_us_per_request_attached,
    `24 probe hits, Chrome's headers; ${u.browser_us_per_request_detached} without the tracer; ` +
      `tracer CPU ${u.browser_tracer_cpu}`,
  );
  if (u.tracer_cpu_sampled_10pct !== null) {
    row(
      'usdt',
      'tracer CPU, 1 conn in 10',
      u.tracer_cpu_sampled_10pct,
      `--sample-ratio 0.1; ${u.ns_per_hit_sampled_10pct} ns per hit`,
    );
  }
}
if (run('server')) {
  const servers = await serverBench(quick ? 3 : 10);
  const bareNs = (results.usdt as UsdtResult | undefined)?.ns_per_hit_bare_uprobe;
  for (const s of servers) {
    // What tracing could cost at least: every probe hit traps into the kernel and runs a bare uprobe. Over the
    // socket nothing traps: H2O writes the events itself.
    const floor =
      bareNs === undefined || s.source === 'socket'
        ? undefined
        : 1 / (1 / s.req_per_s_plain + (s.probe_hits_per_request * bareNs) / 1e9);
    const withFloor = {
      ...s,
      trap_floor_req_per_s: floor === undefined ? null : Math.round(floor),
      ratio_to_trap_floor: floor === undefined ? null : round(s.req_per_s_traced / floor),
    };
    results[serverKey(s)] = withFloor;
    const section = `server (${s.target}, ${s.source}${s.exporter === 'none' ? ', --exporter none' : ''})`;
    row(
      section,
      'req/s traced',
      s.req_per_s_traced,
      `plain ${s.req_per_s_plain} (${s.req_per_s_plain_runs.join(' before, ')} after; ratio ${s.ratio}` +
        `${s.source === 'request' ? ', target ≥ 0.9' : ''})`,
    );
    if (floor !== undefined) {
      // h2o-otel has no count-only mode for the request probe: the bare row is the floor those traps allow.
      row(
        section,
        'req/s, bare uprobes (floor)',
        Math.round(floor),
        `${s.probe_hits_per_request} hits/request × ${bareNs} ns (usdt section's bare hit); ` +
          `ratio ${round(floor / s.req_per_s_plain)} of plain; traced is ${withFloor.ratio_to_trap_floor} of it`,
      );
    }
    const lost = s.source === 'socket' ? `H2O dropped ${s.h2o_dropped}` : `ring lost ${s.ring_lost}`;
    const hits = s.source === 'socket' ? '' : `; ${s.probe_hits_per_request} probe hits/request`;
    if (s.spans_exported === null) {
      row(
        section,
        'spans built / requests',
        `${s.spans_built} / ${s.all_requests}`,
        `warm-up and load, none exported; ${lost}${hits}`,
      );
    } else {
      row(
        section,
        'spans / requests',
        `${s.spans_exported} / ${s.requests_served}`,
        `target equal; ${lost}, spans dropped or failed ${s.spans_dropped_or_failed}${hits}`,
      );
    }
    row(
      section,
      'tracer CPU µs/request',
      s.tracer_us_per_request,
      `${s.tracer_cpu} of a core over the load` +
        (s.exporter === 'none' ? ', building spans only' : ', export included') +
        (s.receiver_us_per_request === null
          ? ''
          : `; the bench's receiver ${s.receiver_us_per_request} µs/request`) +
        (s.source === 'request' && s.exporter !== 'none' ? ' (target ≤ 10)' : ''),
    );
  }
}
if (soak) results.soak = await soakSection();

const width = (k: keyof Row): number => Math.max(...rows.map((r) => r[k].length), k.length);
const line = (r: Row): string =>
  `${r.section.padEnd(width('section'))}  ${r.figure.padEnd(width('figure'))}  ${r.value.padStart(width('value'))}  ${r.against}`;
process.stdout.write(
  line({ section: 'section', figure: 'figure', value: 'value', against: 'against' }) + '\n',
);
for (const r of rows) process.stdout.write(line(r) + '\n');
const dir = join(repoRoot, 'bench', 'results');
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, 'latest.json'), JSON.stringify(results, null, 2) + '\n');
process.stdout.write(`\nwritten to bench/results/latest.json\n`);
if (results.soak !== undefined) {
  // Ten minutes a run: kept apart, so a later --quick run does not overwrite the last soak's figures.
  const soakOnly = { machine: results.machine, soak: results.soak };
  writeFileSync(join(dir, 'soak.json'), JSON.stringify(soakOnly, null, 2) + '\n');
  process.stdout.write('and the soak to bench/results/soak.json\n');
}
if (run('usdt') || run('server')) {
  process.stdout.write(
    'the last tracer sessions go on detaching their probes in the background for ~10 s (the kernel, ~0.19 s a probe)\n',
  );
}
