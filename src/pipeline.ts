/**
 * The whole flow, wired once: the CLI, the benchmark and the tests all build it here.
 *
 *   source ─► SourceSink ─┬─ events ─► correlator ─────┐
 *            (per session) │  (taps: --record, qlog)     ├─► tracer filter ─► span mapper ─► sampler ─► processor ─► exporter
 *                          └─ finished records ─(join)──┘                        (every span ─► RED metrics; exported ─► exemplars)
 *
 * Sources decode their own input (how much: `decode`) and push into the sink of each of their sessions; a session
 * is one id space (H2O's conn ids restart with the server), so each gets its own correlator. On their way to the
 * mapper, records pass the tracer-request filter, which drops tracers' own requests (`correlate/tracer-requests.ts`).
 * Two sources tracing one process (the request probe and H2O's QUIC probes) share its session (`open(key)`), where
 * finished HTTP/3 requests join the QUIC connections the events made (`correlate/quic-join.ts`, `session.ts`).
 * Each stage holds the next, so they are built from the exporter back.
 *
 * Back-pressure: live sources cannot wait (H2O does not), so their spans are dropped, counted, when the queue is
 * full. What can wait does: a replay asks `ready()` between reads, and the records a session's end releases at
 * once (every connection still open) go on as the processor makes room (`EndOfSessionFeed`).
 */
import type { Meter } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import type { Sampler, SpanExporter } from '@opentelemetry/sdk-trace-base';
import {
  CORRELATOR_FIELD_USES,
  CORRELATOR_REQUEST_HEADERS,
  Correlator,
  newCorrelatorStats,
} from './correlate/correlator.js';
import type { CorrelatorOptions, CorrelatorStats } from './correlate/correlator.js';
import type { RecordSink } from './correlate/records.js';
import { TracerRequestFilter } from './correlate/tracer-requests.js';
import type { TracerRequestStats } from './correlate/tracer-requests.js';
import type { EventRecorder } from './events/recorder.js';
import { newDecodeStats } from './events/types.js';
import type { DecodeStats, HeaderUse, UsedHeaderNames } from './events/types.js';
import { CountingBatchProcessor } from './export/batch-processor.js';
import type { BatchOptions, ExportStats } from './export/batch-processor.js';
import type { QlogDirectory } from './export/qlog.js';
import { SpanFactory } from './otel/finished-span.js';
import { HeaderNameSet, headerPolicy } from './otel/header-policy.js';
import type { HeaderPolicyOptions } from './otel/header-policy.js';
import { ExemplarTap } from './otel/red-metrics.js';
import type { RedMetrics } from './otel/red-metrics.js';
import { INSTRUMENTATION_SCOPE } from './otel/scope.js';
import { SpanMapper } from './otel/span-mapper.js';
import type { SpanMapperStats } from './otel/span-mapper.js';
import { SensitiveQueryParams } from './otel/url.js';
import { EndOfSessionFeed, Session, SharedSession } from './session.js';
import type { DecodePlan, Sessions, SourceSink } from './sources/sink.js';

/** What the pipeline is: plain data, from the options. */
export interface PipelineConfig {
  readonly correlator: CorrelatorOptions;
  /** JSON lines longer than this are dropped and counted. */
  readonly maxLineBytes: number;
  readonly headers: HeaderPolicyOptions;
  readonly sensitiveQueryParams: readonly string[];
  readonly sampler: Sampler;
  readonly resource: Resource;
  readonly batch: BatchOptions;
}

/** What it writes to: the exporter, and the taps that see every event. */
export interface PipelineEdges {
  readonly exporter: SpanExporter;
  /** `--record`: every event, as JSON lines. It also turns off every decoding shortcut. */
  readonly recorder?: EventRecorder;
  /** `--qlog-dir`: QUIC connections as qlog. It keeps QUIC and TLS lines whole. */
  readonly qlog?: QlogDirectory;
  /** Stop at the correlator's records, mapping nothing (the benchmark's stage ladder). */
  readonly stopAtRecords?: boolean;
  /** Where the RED metrics are recorded (and their exemplars kept), and the meter of the other metrics. */
  readonly metrics?: { readonly meter: Meter; readonly red: RedMetrics };
}

export interface PipelineStats {
  readonly decode: DecodeStats;
  readonly correlate: CorrelatorStats;
  readonly spans: SpanMapperStats;
  readonly tracers: TracerRequestStats;
  readonly export: ExportStats;
}

export class Pipeline implements Sessions {
  readonly decode: DecodePlan;
  readonly stats: PipelineStats;
  readonly processor: CountingBatchProcessor;
  /** Whether some response header is captured: only then must H2O send them. */
  readonly capturesResponseHeaders: boolean;
  sessions = 0;
  private readonly _records: RecordSink;
  private readonly _open = new Set<Session>();
  private readonly _shared = new Map<string, SharedSession>();
  private readonly _endFeed: EndOfSessionFeed;

  constructor(
    private readonly _config: PipelineConfig,
    private readonly _edges: PipelineEdges,
  ) {
    this.processor = new CountingBatchProcessor(_edges.exporter, _config.batch);
    const metrics = _edges.metrics;
    // Exported request spans leave their durations as exemplars; every span, exported or not, feeds the RED metrics.
    const exported = metrics === undefined ? this.processor : new ExemplarTap(this.processor, metrics.red);
    const spans = new SpanFactory(exported, {
      sampler: _config.sampler,
      resource: _config.resource,
      scope: INSTRUMENTATION_SCOPE,
      observer: metrics?.red,
    });
    const headers = headerPolicy(_config.headers);
    this.capturesResponseHeaders = headers.anyResponse;
    const mapper = new SpanMapper(spans, {
      headers,
      sensitiveQueryParams: new SensitiveQueryParams(_config.sensitiveQueryParams),
    });
    const tracers = new TracerRequestFilter(mapper);
    this._records = _edges.stopAtRecords === true ? DISCARD_RECORDS : tracers;
    this._endFeed = new EndOfSessionFeed(this._records, this.processor);
    this.decode = decodePlan(_config, mapper, _edges);
    if (metrics !== undefined) this._observeActiveRequests(metrics.meter);
    this.stats = {
      decode: this.decode.stats,
      correlate: newCorrelatorStats(),
      spans: mapper.stats,
      tracers: tracers.stats,
      export: this.processor.stats,
    };
  }

  open(key?: string): SourceSink {
    if (key !== undefined) {
      const shared = this._shared.get(key);
      if (shared !== undefined) return shared.handle();
    }
    this.sessions++;
    const session = new Session(
      (sink) => new Correlator(this._config.correlator, sink, this.stats.correlate),
      this._records,
      this._endFeed,
      this._edges.recorder,
      this._edges.qlog?.session(),
      this._open,
    );
    this._open.add(session);
    if (key === undefined) return session;
    const shared = new SharedSession(session, () => this._shared.delete(key));
    this._shared.set(key, shared);
    return shared.handle();
  }

  get openConnections(): number {
    let n = 0;
    for (const s of this._open) n += s.correlator.openConnections;
    return n;
  }

  get openRequests(): number {
    let n = 0;
    for (const s of this._open) n += s.correlator.openRequests;
    return n;
  }

  /**
   * `http.server.active_requests`, as far as the correlators see them begin: not measured until some request has
   * (the request probe reports requests only as they end, so it never shows them open).
   */
  private _observeActiveRequests(meter: Meter): void {
    meter
      .createObservableUpDownCounter('http.server.active_requests', {
        unit: '{request}',
        description: 'Number of active HTTP server requests.',
      })
      .addCallback((result) => {
        if (this.stats.correlate.requests > 0) result.observe(this.openRequests);
      });
  }

  /** Called on a timer while live, so deadlines fire when H2O is quiet. */
  tick(nowMs: number): void {
    for (const s of this._open) s.tick(nowMs);
  }

  /** Every open session ends: what is still open becomes spans (as the processor makes room: see `flushed`). */
  end(): void {
    for (const s of [...this._open]) s.end();
  }

  /**
   * For a source that can wait (a replay): undefined while the pipeline can take more, else a promise of when it
   * can. Waiting keeps an offline source from overflowing the queue of a slower collector.
   */
  ready(): Promise<void> | undefined {
    if (this.processor.hasRoom() && !this._endFeed.busy) return undefined;
    return this._endFeed.done().then(() => this.processor.waitForRoom());
  }

  /** Every ended session's records handed on and every span exported (however long the collector takes). */
  async flushed(): Promise<void> {
    await this._endFeed.done();
    await this.processor.forceFlush();
  }

  /** The shutdown deadline came: records of ended sessions not yet made into spans count as dropped spans. */
  abandon(): void {
    this.processor.countDroppedAtExit(this._endFeed.abandon());
  }
}

/** The pipeline for `config`, writing to `edges`. */
export function buildPipeline(config: PipelineConfig, edges: PipelineEdges): Pipeline {
  return new Pipeline(config, edges);
}

const DISCARD_RECORDS: RecordSink = {
  requestCompleted() {},
  connectionClosed() {},
};

/**
 * Decode only what some span uses: header lines of names no span reads, QUIC and TLS lines no span shows, and
 * `conn_stats` fields beyond the few spans show are left unparsed — unless `--record` keeps every event whole, or
 * `--qlog-dir` the QUIC and TLS ones.
 */
function decodePlan(config: PipelineConfig, mapper: SpanMapper, edges: PipelineEdges): DecodePlan {
  const usedHeaderNames = edges.recorder === undefined ? headerNamesUsed(mapper) : undefined;
  const usesHeader = usedHeaderNames === undefined ? undefined : headerUse(usedHeaderNames);
  const whole = edges.recorder !== undefined || edges.qlog !== undefined;
  return {
    stats: newDecodeStats(),
    usesHeader,
    usedHeaderNames,
    json: {
      maxLineBytes: config.maxLineBytes,
      usesHeader,
      fieldUses: whole ? undefined : CORRELATOR_FIELD_USES,
      fieldSubsets: whole ? undefined : mapper.usedFields(),
    },
  };
}

/** The headers the correlator or the mapper reads or captures: a browser sends a dozen, few change a span. */
function headerNamesUsed(mapper: SpanMapper): UsedHeaderNames {
  const m = mapper.usedHeaderNames();
  return {
    request: m.request === 'all' ? 'all' : [...CORRELATOR_REQUEST_HEADERS, ...m.request],
    response: m.response,
  };
}

function headerUse(used: UsedHeaderNames): HeaderUse {
  const request = used.request === 'all' ? undefined : new HeaderNameSet(used.request);
  const response = used.response === 'all' ? undefined : new HeaderNameSet(used.response);
  return (name, isRequest) => {
    const names = isRequest ? request : response;
    return names === undefined || names.has(name);
  };
}
