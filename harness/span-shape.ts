/**
 * Spans as plain, comparable data: every field OTLP carries except the resource and scope, with the ids h2o-otel
 * makes at random replaced by stable names (the span's rank once sorted), so two runs over the same input compare
 * equal field by field. Ids that came in from outside (a `traceparent`) are kept as they are.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { DEFAULT_SANITIZED_HEADERS } from '../src/otel/header-policy.js';
import type { HeaderPolicyOptions } from '../src/otel/header-policy.js';

/** The header policies test/fixtures/spans/*.json were made with, by name (the files' suffix). */
export const SPAN_FIXTURE_CONFIGS: Record<string, HeaderPolicyOptions> = {
  defaults: { request: [], response: [], sanitize: [...DEFAULT_SANITIZED_HEADERS], maxValueLength: 4096 },
  'all-headers': {
    request: ['*'],
    response: ['*'],
    sanitize: [...DEFAULT_SANITIZED_HEADERS],
    maxValueLength: 64,
  },
};

type Plain = Record<string, unknown>;

function idFree(s: ReadableSpan): Plain {
  return {
    name: s.name,
    kind: s.kind,
    start: s.startTime,
    end: s.endTime,
    status: s.status,
    attributes: s.attributes,
    events: s.events.map((e) => ({ name: e.name, time: e.time, attributes: e.attributes ?? {} })),
    droppedEvents: s.droppedEventsCount,
    droppedAttributes: s.droppedAttributesCount,
    droppedLinks: s.droppedLinksCount,
    links: s.links.map((l) => ({ attributes: l.attributes ?? {} })),
    traceFlags: s.spanContext().traceFlags,
    traceState: s.spanContext().traceState?.serialize(),
  };
}

/** The spans sorted, with their ids, parents and links as names where h2o-otel made them. */
export function spanShapes(spans: readonly ReadableSpan[]): Plain[] {
  const keyed = spans.map((s) => ({ s, key: JSON.stringify(idFree(s)) }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const spanNames = new Map<string, string>();
  const traceNames = new Map<string, string>();
  keyed.forEach(({ s }, i) => {
    spanNames.set(s.spanContext().spanId, `span#${i}`);
    const trace = s.spanContext().traceId;
    if (!traceNames.has(trace)) traceNames.set(trace, `trace#${traceNames.size}`);
  });
  // A continued trace keeps the caller's ids: only ours are renamed.
  const external = new Set<string>();
  for (const { s } of keyed) {
    const p = s.parentSpanContext;
    if (p !== undefined && !spanNames.has(p.spanId)) external.add(p.traceId);
  }
  const span = (id: string): string => spanNames.get(id) ?? id;
  const trace = (id: string): string => (external.has(id) ? id : (traceNames.get(id) ?? id));
  return keyed.map(({ s }) => {
    const plain = idFree(s);
    return {
      ...plain,
      traceId: trace(s.spanContext().traceId),
      spanId: span(s.spanContext().spanId),
      parent:
        s.parentSpanContext === undefined
          ? undefined
          : { traceId: trace(s.parentSpanContext.traceId), spanId: span(s.parentSpanContext.spanId) },
      links: s.links.map((l) => ({
        traceId: trace(l.context.traceId),
        spanId: span(l.context.spanId),
        attributes: l.attributes ?? {},
      })),
    };
  });
}
