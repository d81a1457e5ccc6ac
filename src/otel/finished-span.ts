/**
 * Spans built straight from finished correlator records, in the shape every exporter reads (`ReadableSpan`).
 * A record is complete when it reaches the mapper, so the SDK's live `Span` (a clock read, limit checks and an
 * attribute copy per call, guards against use after end) was pure overhead: about a quarter of the pipeline's
 * time. Sampling still goes through the configured SDK `Sampler` (`OTEL_TRACES_SAMPLER`), at the span's start
 * as the SDK does it, with the same arguments.
 */
import type {
  Attributes,
  Context,
  HrTime,
  Link,
  SpanContext,
  SpanKind,
  SpanStatus,
} from '@opentelemetry/api';
import { SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, Sampler, TimedEvent } from '@opentelemetry/sdk-trace-base';
import { RandomIdGenerator, SamplingDecision } from '@opentelemetry/sdk-trace-base';
import type { AttributeList } from './attribute-list.js';
import { ignoresAttributes } from './sampler.js';

/** Where finished spans go: the batch processor. */
export interface FinishedSpanSink {
  onEnd(span: ReadableSpan): void;
}

/** What an attribute-blind sampler is shown: the attributes would be built for nothing. */
const NO_ATTRIBUTES: Attributes = Object.freeze({});

const UNSET_STATUS: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

export class FinishedSpan implements ReadableSpan {
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedLinksCount = 0;
  status: SpanStatus = UNSET_STATUS;
  endTime: HrTime;
  readonly events: TimedEvent[] = [];
  /** Events the correlator left out (its per-span cap): OTLP carries the count and viewers show it. */
  droppedEventsCount = 0;

  constructor(
    private readonly _context: SpanContext,
    readonly parentSpanContext: SpanContext | undefined,
    readonly name: string,
    readonly kind: SpanKind,
    readonly startTime: HrTime,
    /** What the mappers write and the OTLP encoder reads. */
    readonly attributeList: AttributeList,
    readonly links: Link[],
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {
    this.endTime = startTime;
  }

  /** The object form, for readers of any `ReadableSpan` (console, `--record`, tests): built once per change. */
  get attributes(): Attributes {
    return this.attributeList.toAttributes();
  }

  spanContext(): SpanContext {
    return this._context;
  }

  get duration(): HrTime {
    let sec = this.endTime[0] - this.startTime[0];
    let ns = this.endTime[1] - this.startTime[1];
    if (ns < 0) {
      sec--;
      ns += 1e9;
    }
    return [sec, ns];
  }

  get sampled(): boolean {
    return (this._context.traceFlags & TraceFlags.SAMPLED) !== 0;
  }
}

export interface SpanFactoryOptions {
  readonly sampler: Sampler;
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
  /** Sees every span as it ends, sampled or not (RED metrics: sampling must not skew them). */
  readonly observer?: { record(span: FinishedSpan): void };
}

/** Starts spans (ids, parent, the sampling decision) and hands the sampled ones to the sink once filled in. */
export class SpanFactory {
  /** Spans the sampler decided not to record. */
  notSampled = 0;
  private readonly _ids = new RandomIdGenerator();

  constructor(
    private readonly _sink: FinishedSpanSink,
    private readonly _opts: SpanFactoryOptions,
  ) {}

  start(
    parent: Context,
    name: string,
    kind: SpanKind,
    startTime: HrTime,
    attributes: AttributeList,
    links: Link[],
  ): FinishedSpan {
    const parentSpan = trace.getSpanContext(parent);
    const traceId = parentSpan?.traceId ?? this._ids.generateTraceId();
    const sampler = this._opts.sampler;
    const shown = ignoresAttributes(sampler) ? NO_ATTRIBUTES : attributes.toAttributes();
    const result = sampler.shouldSample(parent, traceId, name, kind, shown, links);
    if (result.attributes !== undefined) attributes.assign(result.attributes);
    const sampled = result.decision === SamplingDecision.RECORD_AND_SAMPLED;
    const context: SpanContext = {
      traceId,
      spanId: this._ids.generateSpanId(),
      traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
      traceState: result.traceState ?? parentSpan?.traceState,
    };
    return new FinishedSpan(
      context,
      parentSpan,
      name,
      kind,
      startTime,
      attributes,
      links,
      this._opts.resource,
      this._opts.scope,
    );
  }

  end(span: FinishedSpan, endTime: HrTime): void {
    span.endTime = endTime;
    this._opts.observer?.record(span);
    if (span.sampled) this._sink.onEnd(span);
    else this.notSampled++;
  }
}
