/**
 * Correlator records and probe events built by hand, for tests of the stages after the correlator on plain data,
 * and a span mapper whose spans are collected.
 */
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { AlwaysOnSampler } from '@opentelemetry/sdk-trace-base';
import { defaultResource } from '@opentelemetry/resources';
import { newConnectionRecord, newRequestRecord } from '../src/correlate/records.js';
import type { ConnectionRecord, Header, RequestRecord, Stamp } from '../src/correlate/records.js';
import type { FieldValue, ProbeEvent } from '../src/events/types.js';
import { SpanFactory } from '../src/otel/finished-span.js';
import { headerPolicy } from '../src/otel/header-policy.js';
import type { HeaderPolicyOptions } from '../src/otel/header-policy.js';
import { SpanMapper } from '../src/otel/span-mapper.js';
import { SensitiveQueryParams } from '../src/otel/url.js';

export function at(timeMs: number, timeSubNs = 0): Stamp {
  return { timeMs, timeSubNs };
}

export function probe(
  module: string,
  type: string,
  fields: Record<string, FieldValue>,
  timeMs = 1000,
): ProbeEvent {
  return { module, type, tid: 1, timeMs, timeSubNs: 0, fields };
}

export function connection(over: Partial<ConnectionRecord> = {}): ConnectionRecord {
  return {
    ...newConnectionRecord(7, 'http/1', 1, at(1000), undefined),
    last: at(1100),
    end: at(1100),
    requestCount: 1,
    ...over,
  };
}

/** `headers`: request headers as name → value (a list for a repeated header). */
export function request(
  conn: ConnectionRecord,
  headers: Record<string, string | string[]>,
  over: Partial<RequestRecord> = {},
): RequestRecord {
  const requestHeaders: Header[] = [];
  for (const [name, v] of Object.entries(headers)) {
    for (const value of Array.isArray(v) ? v : [v]) requestHeaders.push({ name, value });
  }
  return {
    ...newRequestRecord(conn, 1, at(1010), undefined),
    requestHeaders,
    status: 200,
    responseStart: at(1020),
    end: at(1030),
    ...over,
  };
}

export const NO_CAPTURE: HeaderPolicyOptions = {
  request: [],
  response: [],
  sanitize: [],
  maxValueLength: 64,
};

/** A span mapper that samples everything, and the spans it ended, in order. */
export function collectingMapper(
  headers: HeaderPolicyOptions = NO_CAPTURE,
  sensitiveQueryParams: readonly string[] = ['token'],
): { mapper: SpanMapper; spans: ReadableSpan[] } {
  const spans: ReadableSpan[] = [];
  const factory = new SpanFactory(
    { onEnd: (s) => spans.push(s) },
    { sampler: new AlwaysOnSampler(), resource: defaultResource(), scope: { name: 'test' } },
  );
  const mapper = new SpanMapper(factory, {
    headers: headerPolicy(headers),
    sensitiveQueryParams: new SensitiveQueryParams(sensitiveQueryParams),
  });
  return { mapper, spans };
}
