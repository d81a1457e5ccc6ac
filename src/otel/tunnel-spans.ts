/** CONNECT: one CLIENT child span per upstream connection attempt, the connected one with the tunnel's bytes. */
import type { Attributes } from '@opentelemetry/api';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RequestRecord, TunnelRecord } from '../correlate/records.js';
import { later, requestHeader } from '../correlate/records.js';
import type { FinishedSpan, SpanFactory } from './finished-span.js';
import { toHrTime } from './hr-time.js';
import { parseAuthority, parseSocketAddress } from './url.js';

/** Ends the attempts' spans under `parent` (the request's); returns how many. */
export function endTunnelSpans(
  spans: SpanFactory,
  parent: FinishedSpan,
  req: RequestRecord,
  t: TunnelRecord,
): number {
  if (t.error !== undefined) parent.attributes['h2o.tunnel.error'] = t.error;
  const ctx = trace.setSpanContext(ROOT_CONTEXT, parent.spanContext());
  const requested = parseAuthority(requestHeader(req, ':authority') ?? '');
  for (const attempt of t.attempts) {
    const a: Attributes = { 'network.transport': attempt.transport };
    if (requested !== undefined) {
      a['server.address'] = requested.host;
      if (requested.port !== undefined) a['server.port'] = requested.port;
    }
    const peer = attempt.dest === undefined ? undefined : parseSocketAddress(attempt.dest);
    if (peer !== undefined) {
      a['network.peer.address'] = peer.host;
      if (peer.port !== undefined) a['network.peer.port'] = peer.port;
    }
    if (attempt.connected) {
      a['h2o.tunnel.bytes_sent'] = t.bytesSent;
      a['h2o.tunnel.bytes_received'] = t.bytesReceived;
    }
    const span = spans.start(
      ctx,
      `${attempt.transport} connect`,
      SpanKind.CLIENT,
      toHrTime(attempt.start),
      a,
      [],
    );
    if (attempt.connected) {
      for (const p of t.problems) {
        span.events.push({ name: p.kind, attributes: { message: p.message }, time: toHrTime(p.at) });
      }
    } else {
      a['error.type'] = t.error ?? 'connect_failed';
      span.status = { code: SpanStatusCode.ERROR, message: attempt.error ?? 'not connected' };
    }
    spans.end(span, toHrTime(later(attempt.end ?? req.end ?? attempt.start, attempt.start)));
  }
  return t.attempts.length;
}
