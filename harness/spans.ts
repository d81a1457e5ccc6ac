/** Spans made the way the pipeline makes them, for tests of what comes after the mapper. */
import { ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import { defaultResource } from '@opentelemetry/resources';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AttributeList } from '../src/otel/attribute-list.js';
import { SpanFactory } from '../src/otel/finished-span.js';

/** End `n` sampled spans named `${prefix} ${i}` into `processor`. */
export function endSpans(processor: Pick<SpanProcessor, 'onEnd'>, n: number, prefix = 'span'): void {
  const factory = new SpanFactory(processor, {
    sampler: new AlwaysOnSampler(),
    resource: defaultResource(),
    scope: { name: 'h2o-otel-test' },
  });
  for (let i = 0; i < n; i++) {
    const span = factory.start(
      ROOT_CONTEXT,
      `${prefix} ${i}`,
      SpanKind.INTERNAL,
      [1_700_000_000, i],
      new AttributeList(),
      [],
    );
    factory.end(span, [1_700_000_001, i]);
  }
}
