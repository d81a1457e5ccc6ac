#!/usr/bin/env node
/**
 * h2o-otel entry point: resolve options, wire source → pipeline → spans → exporter, run until the source ends
 * or SIGINT/SIGTERM, then flush within --shutdown-timeout, count what is unsent, print the summary and exit 0.
 */
import { realpathSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CommanderError, InvalidArgumentError } from 'commander';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { subscriptionFor, usdtPointsFor, usdtQuicPointsFor } from '../events/catalogue.js';
import { type BpfSource, openBpfSource } from './bpf-source.js';
import { EventRecorder } from '../events/recorder.js';
import { ConsoleTreeExporter } from '../export/console-exporter.js';
import { DiscardExporter } from '../export/discard-exporter.js';
import { createOtlpExporter } from '../export/otlp.js';
import { QlogDirectory } from '../export/qlog.js';
import { registerSelfCounters } from '../export/self-metrics.js';
import { samplerFrom, SamplerConfigError } from '../otel/sampler.js';
import { buildPipeline } from '../pipeline.js';
import { openReplayInput, replay, ReplayError } from '../sources/replay.js';
import { H2oStatusPoller } from '../sources/h2o-status.js';
import { H2ologSocketSource } from '../sources/socket.js';
import { BpfError } from '../sources/bpf/errors.js';
import {
  H2O_STATUS_INTERVAL_MS,
  HARD_EXIT_GRACE_MS,
  NOTICE_INTERVAL_MS,
  RECONNECT_MAX_BACKOFF_MS,
  RECONNECT_MIN_BACKOFF_MS,
  TICK_MS,
} from './intervals.js';
import { buildCommand, resolveOptions } from './options.js';
import type { Env, Options } from './options.js';
import { HealthListenError, healthFacts, startHealth } from './health.js';
import type { HealthState } from './health-state.js';
import { selfCounterReadings, startMetrics } from './metrics-setup.js';
import { flushWithin } from './shutdown.js';
import type { FlushBound } from './shutdown.js';
import { StatusReporter } from './status.js';

function createExporter(o: Options): SpanExporter {
  switch (o.exporter.kind) {
    case 'console':
      return new ConsoleTreeExporter(process.stdout);
    case 'none':
      return new DiscardExporter();
    case 'otlp':
      return createOtlpExporter(o.exporter);
  }
}

export async function main(argv: readonly string[], env: Env): Promise<number> {
  let o: Options;
  const command = buildCommand().exitOverride();
  try {
    o = resolveOptions(command, argv, env);
  } catch (err) {
    // Our own checks throw InvalidArgumentError (a CommanderError too) without printing; commander's print.
    if (
      err instanceof InvalidArgumentError &&
      err.code === 'commander.invalidArgument' &&
      err.exitCode === 1
    ) {
      process.stderr.write(`h2o-otel: ${err.message}\n(run h2o-otel --help for usage)\n`);
      return 2;
    }
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof SamplerConfigError) {
      process.stderr.write(`h2o-otel: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const say = (line: string): void => {
    if (!o.quiet) process.stderr.write(line + '\n');
  };
  let health: HealthState | undefined;
  try {
    health = await startHealth(o.health);
  } catch (err) {
    if (!(err instanceof HealthListenError)) throw err;
    process.stderr.write(`h2o-otel: ${err.message}\n`);
    return 1;
  }
  // A signal while starting up (opening files, loading BPF) is kept for the handler below, not fatal.
  let earlySignal: NodeJS.Signals | undefined;
  const starting = new AbortController();
  const onEarlySignal = (sig: NodeJS.Signals): void => {
    earlySignal ??= sig;
    starting.abort();
  };
  process.on('SIGINT', onEarlySignal);
  process.on('SIGTERM', onEarlySignal);

  let input: Readable | undefined;
  if (o.source.kind === 'replay') {
    try {
      input = await openReplayInput(o.source.path);
    } catch (err) {
      if (!(err instanceof ReplayError)) throw err;
      process.stderr.write(`h2o-otel: ${err.message}\n`);
      return 1;
    }
  }

  let recorder: EventRecorder | undefined;
  if (o.record !== undefined) {
    try {
      recorder = new EventRecorder(o.record, o.force);
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException;
      const why = code === 'EEXIST' ? 'the file exists; add --force to overwrite it' : message;
      process.stderr.write(`h2o-otel: --record ${o.record}: ${why}\n`);
      return 1;
    }
  }
  let qlog: QlogDirectory | undefined;
  if (o.qlog !== undefined) {
    try {
      qlog = await QlogDirectory.open(o.qlog.dir, o.qlog.maxBytes);
    } catch (err) {
      process.stderr.write(`h2o-otel: --qlog-dir ${o.qlog.dir}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  const resource = defaultResource().merge(resourceFromAttributes(o.resourceAttributes));
  const metrics = await startMetrics(o, resource);
  if (typeof metrics === 'string') {
    process.stderr.write(`h2o-otel: ${metrics}\n`);
    return 1;
  }
  const pipeline = buildPipeline(
    {
      correlator: o.correlator,
      maxLineBytes: o.maxLineBytes,
      headers: o.headers,
      sensitiveQueryParams: o.sensitiveQueryParams,
      sampler: samplerFrom(o.sampler.name, o.sampler.arg),
      resource,
      batch: o.batch,
    },
    { exporter: createExporter(o), recorder, qlog, metrics },
  );
  const processor = pipeline.processor;
  const needs = { responseHeaders: pipeline.capturesResponseHeaders, quicEvents: o.quicEvents };
  const h2oStatus =
    o.socket.h2oStatus === undefined
      ? undefined
      : new H2oStatusPoller(o.socket.h2oStatus, H2O_STATUS_INTERVAL_MS);
  const status = new StatusReporter(
    {
      ...pipeline.stats,
      usdt: () => usdtSource?.stats(),
      h2oStatus: () => h2oStatus?.stats,
      socket: () => socketSource?.stats,
      openConnections: () => pipeline.openConnections,
      openRequests: () => pipeline.openRequests,
      queueLength: () => processor.queueLength,
    },
    say,
  );

  const abort = new AbortController();
  let socketSource: H2ologSocketSource | undefined;
  let usdtSource: BpfSource | undefined;
  const live = { socket: () => socketSource, bpf: () => usdtSource };
  health?.watch(healthFacts(o.source, live, processor.stats));
  if (metrics !== undefined) {
    const sources = { usdt: () => usdtSource, socket: () => socketSource, h2oStatus: () => h2oStatus };
    registerSelfCounters(metrics.meter, selfCounterReadings(pipeline, sources));
  }
  if (o.source.kind === 'usdt') {
    try {
      usdtSource = await openBpfSource(o, {
        sessions: pipeline,
        points: usdtPointsFor(needs),
        quicPoints: usdtQuicPointsFor(needs),
        responseHeaders: pipeline.capturesResponseHeaders,
        info: say,
        warn: say,
        signal: starting.signal,
      });
    } catch (err) {
      if (!(err instanceof BpfError)) throw err;
      process.stderr.write(`h2o-otel: ${err.message}\n`);
      return 1;
    }
  }
  let signalledAt: number | undefined;
  let hardExit: NodeJS.Timeout | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    signalledAt = Date.now();
    health?.shutDown();
    say(`h2o-otel: ${sig}: flushing for at most ${o.shutdownTimeoutMs} ms, then exiting`);
    abort.abort();
    socketSource?.stop();
    usdtSource?.stop();
    input?.destroy();
    // The flush below ends by the deadline; should anything else hang, still count, summarise and be gone.
    hardExit = setTimeout(() => {
      pipeline.abandon();
      processor.dropUnsent();
      say(status.summary());
      process.exit(0);
    }, o.shutdownTimeoutMs + HARD_EXIT_GRACE_MS).unref();
  };
  process.removeListener('SIGINT', onEarlySignal);
  process.removeListener('SIGTERM', onEarlySignal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  if (earlySignal !== undefined) onSignal(earlySignal);
  const statusTimer =
    o.statusIntervalSec > 0
      ? setInterval(() => status.report(true), o.statusIntervalSec * 1000).unref()
      : setInterval(() => status.notices(), NOTICE_INTERVAL_MS).unref();

  let exitCode = 0;
  // Live sources: advance the correlators' clocks while H2O is quiet, so deadlines still fire. Its beat is what
  // /healthz calls the loop turning.
  const ticker =
    input === undefined || health !== undefined
      ? setInterval(() => {
          const now = Date.now();
          if (input === undefined) pipeline.tick(now);
          health?.beat(now);
        }, TICK_MS).unref()
      : undefined;
  try {
    if (input !== undefined) {
      await replay(input, pipeline, abort.signal);
    } else if (usdtSource !== undefined) {
      await usdtSource.run().catch((err: unknown) => {
        if (!(err instanceof BpfError)) throw err;
        process.stderr.write(`h2o-otel: ${err.message}\n`);
        exitCode = 1;
      });
    } else if (o.source.kind === 'socket') {
      h2oStatus?.start();
      socketSource = new H2ologSocketSource(
        {
          path: o.source.path,
          trace: subscriptionFor(needs),
          sampleRatio: o.socket.sampleRatio,
          sni: o.socket.sni,
          addresses: o.socket.addresses,
          applicationData: o.socket.applicationData,
          reconnect: o.socket.reconnect,
          minBackoffMs: RECONNECT_MIN_BACKOFF_MS,
          maxBackoffMs: RECONNECT_MAX_BACKOFF_MS,
        },
        { sessions: pipeline, info: say, warn: say },
      );
      await socketSource.run().catch((err: unknown) => {
        process.stderr.write(`h2o-otel: ${(err as Error).message}\n`);
        exitCode = 1;
      });
    }
  } finally {
    health?.shutDown();
    clearInterval(ticker);
    h2oStatus?.stop();
    pipeline.end();
    const deadlineAt = (): number | undefined =>
      signalledAt === undefined ? undefined : signalledAt + o.shutdownTimeoutMs;
    const leftMs = (): number => {
      const d = deadlineAt();
      return d === undefined ? o.shutdownTimeoutMs : Math.max(0, d - Date.now());
    };
    const bound: FlushBound = {
      deadlineAt,
      stallMs: o.shutdownTimeoutMs,
      progress: () => processor.stats.exported + processor.stats.failed,
    };
    // H2O's last count of dropped events is read while the spans flush (within its own 2 s), for the summary;
    // the recording and the qlog files are written out and the probes detached (one at a time: the kernel's
    // pace) meanwhile, not after a slow collector used the time.
    const [, , , , detach] = await Promise.all([
      flushWithin(pipeline.flushed(), bound).then(async (flushed) => {
        if (!flushed) {
          pipeline.abandon();
          processor.dropUnsent();
        }
        await processor.shutdown(leftMs());
        // The last metrics carry the exit's counts; they get a moment even when the flush used the deadline.
        await metrics?.shutdown(Math.max(leftMs(), FINAL_METRICS_MS));
      }),
      h2oStatus?.read(),
      recorder?.close(),
      qlog?.drain(),
      usdtSource?.closeWithin(leftMs()),
    ]);
    // Status and notices went on through the flush (a collector's outage or recovery is said meanwhile).
    clearInterval(statusTimer);
    status.notices();
    if (qlog !== undefined) {
      const q = qlog.stats;
      say(
        `h2o-otel: qlog: ${q.files} files, ${q.events} events, ${q.rotated} rotated out, ${q.writeErrors} write errors`,
      );
      if (qlog.lastError !== undefined) process.stderr.write(`h2o-otel: --qlog-dir: ${qlog.lastError}\n`);
    }
    if (recorder?.error !== undefined) {
      process.stderr.write(`h2o-otel: --record ${o.record}: ${recorder.error.message}\n`);
      exitCode = 1;
    }
    say(status.summary());
    clearTimeout(hardExit);
    if (detach !== undefined && detach.remaining > 0) {
      say(
        `h2o-otel: ${detach.detached} probes detached in ${detach.ms} ms; the kernel detaches the other ` +
          `${detach.remaining} as the process exits (about 0.1–0.2 s each)`,
      );
    }
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
  return exitCode;
}

/** The final metrics export's time at least, after the span flush. */
const FINAL_METRICS_MS = 500;

/** After main returned, how long open handles (a library's socket or timer) may keep the process. */
const EXIT_LINGER_MS = 200;

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // Whoever read stdout (`--help | head`, traces piped to a pager) has gone: nothing is left to print for.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.exit(0);
  });
  main(process.argv, process.env).then(
    (code) => {
      process.exitCode = code;
      // Everything is flushed and counted; a socket or channel some library left open must not keep us here.
      setTimeout(() => process.exit(code), EXIT_LINGER_MS).unref();
    },
    (err: unknown) => {
      process.stderr.write(
        `h2o-otel: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
      process.exitCode = 70;
    },
  );
}
