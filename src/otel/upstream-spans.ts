/**
 * A reverse-proxied request (request probe: H2O's proxy_stats): one CLIENT child span for the exchange with the
 * upstream, from H2O's own timestamps and byte counts.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { UpstreamExchange } from '../correlate/records.js';
import { later } from '../correlate/records.js';
import { K } from './attribute-keys.js';
import { AttributeList } from './attribute-list.js';
import type { FinishedSpan, SpanFactory } from './finished-span.js';
import { durationMs, toHrTime } from './hr-time.js';

/** Ends the upstream span under `parent`, the request's span (whose method it shares). */
export function endUpstreamSpan(spans: SpanFactory, parent: FinishedSpan, u: UpstreamExchange): void {
  const method = parent.attributeList.get(K.httpRequestMethod);
  const a = new AttributeList();
  a.push(K.proxyBytesWritten, u.bytesWritten);
  a.push(K.proxyBytesRead, u.bytesRead);
  if (typeof method === 'string') a.push(K.httpRequestMethod, method);
  if (u.requestBegin !== undefined) a.push(K.proxyConnectMs, durationMs(u.start, u.requestBegin));
  if (u.requestEnd !== undefined && u.responseStart !== undefined)
    a.push(K.proxyFirstByteMs, durationMs(u.requestEnd, u.responseStart));
  const ctx = trace.setSpanContext(ROOT_CONTEXT, parent.spanContext());
  const name = typeof method === 'string' && method !== '_OTHER' ? method : 'HTTP';
  const span = spans.start(ctx, name, SpanKind.CLIENT, toHrTime(u.start), a, []);
  if (u.requestEnd !== undefined) span.events.push({ name: 'request_end', time: toHrTime(u.requestEnd) });
  if (u.responseStart !== undefined) {
    span.events.push({ name: 'response_start', time: toHrTime(u.responseStart) });
  } else {
    span.status = { code: SpanStatusCode.ERROR, message: 'no response from the upstream' };
    a.set(K.errorType, 'no_response');
  }
  const last = u.responseEnd ?? u.responseStart ?? u.requestEnd ?? u.requestBegin ?? u.start;
  spans.end(span, toHrTime(later(last, u.start)));
}
