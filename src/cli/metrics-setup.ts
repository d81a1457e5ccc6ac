/**
 * The metrics as the options ask for them: started before the pipeline, so that a Prometheus port that cannot be
 * served stops h2o-otel before it attaches anything; h2o-otel's own counters are read from the stages once they run.
 */
import type { Resource } from '@opentelemetry/resources';
import { rejectedLines } from '../events/types.js';
import { Metrics, MetricsStartError } from '../export/metrics.js';
import type { CounterReadings } from '../export/self-metrics.js';
import type { Pipeline } from '../pipeline.js';
import type { H2oStatusPoller } from '../sources/h2o-status.js';
import type { H2ologSocketSource } from '../sources/socket.js';
import type { BpfSource } from './bpf-source.js';
import type { Options } from './options.js';

/** The metrics, none (not asked for), or the message saying why they cannot start. */
export async function startMetrics(o: Options, resource: Resource): Promise<Metrics | undefined | string> {
  if (o.metrics === undefined) return undefined;
  try {
    return await Metrics.start({ resource, otlp: o.metrics.otlp, prometheus: o.metrics.prometheus });
  } catch (err) {
    if (err instanceof MetricsStartError) return err.message;
    throw err;
  }
}

/** The sources, as they come and go. */
export interface LiveSources {
  usdt(): BpfSource | undefined;
  socket(): H2ologSocketSource | undefined;
  h2oStatus(): H2oStatusPoller | undefined;
}

/** h2o-otel's own counters (SELF_COUNTERS), read from the stages' stats at each collection. */
export function selfCounterReadings(pipeline: Pipeline, live: LiveSources): CounterReadings {
  return () => {
    const { decode: d, spans: m, export: e } = pipeline.stats;
    const u = live.usdt()?.stats();
    const socket = live.socket();
    const h2oStatus = live.h2oStatus();
    return {
      events: d.events,
      badInput: d.malformed + d.tooLong + d.notEvents,
      rejectedInput: rejectedLines(d),
      evictedRequests: pipeline.stats.correlate.evictedRequests,
      spans: m.requestSpans + m.connectionSpans + m.tunnelSpans + m.upstreamSpans,
      exported: e.exported,
      dropped: e.dropped,
      failed: e.failed,
      ...(h2oStatus === undefined ? {} : { h2oLost: h2oStatus.stats.lost }),
      ...(socket === undefined
        ? {}
        : { reconnects: socket.stats.reconnects, reconnectGap: socket.stats.totalGapMs }),
      ...(u === undefined
        ? {}
        : {
            probeHits: u.hits,
            ringRecords: u.emitted,
            ringLost: u.lost,
            readFailures: u.readFailures,
            truncated: u.truncated,
            sampledOut: u.sampledOut,
            skippedHeaders: u.skippedHeaders,
          }),
    };
  };
}
