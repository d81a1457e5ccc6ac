/** CONNECT: one CLIENT child span per upstream connection attempt, the connected one with the tunnel's bytes. */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { RequestRecord, TunnelRecord } from '../correlate/records.js';
import { later, requestHeader } from '../correlate/records.js';
import { K } from './attribute-keys.js';
import { AttributeList } from './attribute-list.js';
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
  if (t.error !== undefined) parent.attributeList.set(K.tunnelError, t.error);
  const ctx = trace.setSpanContext(ROOT_CONTEXT, parent.spanContext());
  const requested = parseAuthority(requestHeader(req, ':authority') ?? '');
  for (const attempt of t.attempts) {
    const a = new AttributeList();
    a.push(K.networkTransport, attempt.transport);
    if (requested !== undefined) {
      a.push(K.serverAddress, requested.host);
      if (requested.port !== undefined) a.push(K.serverPort, requested.port);
    }
    const peer = attempt.dest === undefined ? undefined : parseSocketAddress(attempt.dest);
    if (peer !== undefined) {
      a.push(K.networkPeerAddress, peer.host);
      if (peer.port !== undefined) a.push(K.networkPeerPort, peer.port);
    }
    if (attempt.connected) {
      a.push(K.tunnelBytesSent, t.bytesSent);
      a.push(K.tunnelBytesReceived, t.bytesReceived);
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
      a.set(K.errorType, t.error ?? 'connect_failed');
      span.status = { code: SpanStatusCode.ERROR, message: attempt.error ?? 'not connected' };
    }
    spans.end(span, toHrTime(later(attempt.end ?? req.end ?? attempt.start, attempt.start)));
  }
  return t.attempts.length;
}
