/** Spans grouped as an `ExportTraceServiceRequest` nests them: by resource, then scope, in first-seen order. */
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';

export type Groups = Map<Resource, Map<InstrumentationScope, ReadableSpan[]>>;

/** Spans by resource, then scope; one pass of comparisons when, as in h2o-otel, all share both. */
export function groupByResourceAndScope(spans: readonly ReadableSpan[]): Groups {
  const groups: Groups = new Map();
  const first = spans[0];
  if (first === undefined) return groups;
  let same = true;
  for (const span of spans)
    if (span.resource !== first.resource || span.instrumentationScope !== first.instrumentationScope) {
      same = false;
      break;
    }
  if (same) {
    groups.set(first.resource, new Map([[first.instrumentationScope, spans as ReadableSpan[]]]));
    return groups;
  }
  for (const span of spans) {
    let scopes = groups.get(span.resource);
    if (scopes === undefined)
      groups.set(span.resource, (scopes = new Map<InstrumentationScope, ReadableSpan[]>()));
    const list = scopes.get(span.instrumentationScope);
    if (list === undefined) scopes.set(span.instrumentationScope, [span]);
    else list.push(span);
  }
  return groups;
}
