/**
 * h2o-otel's own counters as metrics (OTLP, Prometheus), so losses show up where users already watch (a dashboard, an alert)
 * and not only on stderr: events in and out, spans dropped or failed, and for the USDT source every record the
 * ring buffer lost and every failed read of H2O's memory. All are cumulative monotonic sums read at export time.
 */
import type { Meter, ObservableCounter } from '@opentelemetry/api';

/** Counter readings, whatever produced them (the CLI passes closures over the stages' stats). */
export type CounterReadings = () => Readonly<Record<string, number>>;

interface CounterSpec {
  readonly name: string;
  readonly unit: string;
  readonly description: string;
}

/** Keys of the readings → metric names and meanings. */
export const SELF_COUNTERS: Readonly<Record<string, CounterSpec>> = {
  events: { name: 'h2o_otel.events', unit: '{event}', description: 'H2O trace events decoded' },
  badInput: {
    name: 'h2o_otel.input.dropped',
    unit: '{line}',
    description: 'input lines dropped: malformed, too long, or not an event',
  },
  rejectedInput: {
    name: 'h2o_otel.input.rejected',
    unit: '{line}',
    description:
      'input lines dropped for what they hold: a bad or far time, a field out of type or range, deep nesting',
  },
  evictedRequests: {
    name: 'h2o_otel.requests.evicted',
    unit: '{request}',
    description: 'requests ended early because their connection had too many open (1,000 at most)',
  },
  spans: {
    name: 'h2o_otel.spans',
    unit: '{span}',
    description: 'spans produced (requests, connections, tunnels)',
  },
  exported: { name: 'h2o_otel.spans.exported', unit: '{span}', description: 'spans the collector accepted' },
  dropped: {
    name: 'h2o_otel.spans.dropped',
    unit: '{span}',
    description: 'spans dropped: the export queue was full, or they were unsent at the shutdown deadline',
  },
  failed: {
    name: 'h2o_otel.spans.failed',
    unit: '{span}',
    description: 'spans the collector refused with a status retrying cannot change',
  },
  h2oLost: {
    name: 'h2o_otel.h2olog.lost',
    unit: '{event}',
    description:
      "trace events H2O dropped because an h2olog client's socket buffer was full (all clients; read from H2O's status handler)",
  },
  reconnects: {
    name: 'h2o_otel.h2olog.reconnects',
    unit: '{reconnect}',
    description: "subscriptions to H2O's h2olog socket made again after the stream ended (an H2O restart)",
  },
  reconnectGap: {
    name: 'h2o_otel.h2olog.reconnect_gap',
    unit: 'ms',
    description:
      'time without an h2olog subscription, from the end of a stream to the next subscription (what H2O traced meanwhile is lost)',
  },
  probeHits: { name: 'h2o_otel.usdt.probe_hits', unit: '{hit}', description: 'USDT probe hits seen by BPF' },
  ringRecords: {
    name: 'h2o_otel.usdt.records',
    unit: '{record}',
    description: 'records BPF wrote to the ring buffer',
  },
  ringLost: {
    name: 'h2o_otel.usdt.lost',
    unit: '{record}',
    description: 'records lost because the BPF ring buffer was full',
  },
  readFailures: {
    name: 'h2o_otel.usdt.read_failures',
    unit: '{read}',
    description: "strings BPF could not read from H2O's memory",
  },
  truncated: {
    name: 'h2o_otel.usdt.truncated',
    unit: '{string}',
    description: 'strings cut at their copy cap',
  },
  sampledOut: {
    name: 'h2o_otel.usdt.sampled_out',
    unit: '{hit}',
    description: 'probe hits of connections left out by --sample-ratio',
  },
  skippedHeaders: {
    name: 'h2o_otel.usdt.headers_skipped',
    unit: '{hit}',
    description: 'header probe hits of names no span uses, counted and dropped in BPF',
  },
};

/** The counters as observable counters of `meter`, all read by one callback at collection time. */
export function registerSelfCounters(meter: Meter, read: CounterReadings): void {
  const counters = new Map<string, ObservableCounter>();
  for (const [key, spec] of Object.entries(SELF_COUNTERS)) {
    counters.set(
      key,
      meter.createObservableCounter(spec.name, { unit: spec.unit, description: spec.description }),
    );
  }
  meter.addBatchObservableCallback(
    (result) => {
      const values = read();
      for (const [key, counter] of counters) {
        const v = values[key];
        if (v !== undefined) result.observe(counter, v);
      }
    },
    [...counters.values()],
  );
}
