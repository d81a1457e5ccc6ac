/**
 * A QUIC connection's facts → its span: sub-events, totals (exact even when events were capped), quicly's
 * statistics and the close reason.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import type { QuicRecord } from '../correlate/records.js';
import type { FieldSubset } from '../events/types.js';
import { K } from './attribute-keys.js';
import { attrKey } from './attribute-list.js';
import type { AttrKey, AttributeList } from './attribute-list.js';
import type { FinishedSpan } from './finished-span.js';
import {
  addTransportEvents,
  isErrorClose,
  quicClose,
  quicVersion,
  transportErrorName,
} from './quic-events.js';

/** quicly's `conn_stats` keys worth a QUIC connection attribute, with its key (`h2o.quic.<name>`) interned once. */
const QUIC_STATS: readonly (readonly [string, AttrKey])[] = (
  [
    ['num-packets.sent', 'packets_sent'],
    ['num-packets.received', 'packets_received'],
    ['num-packets.lost', 'packets_lost'],
    ['num-bytes.sent', 'bytes_sent'],
    ['num-bytes.received', 'bytes_received'],
    ['num-bytes.lost', 'bytes_lost'],
    ['num-ptos', 'ptos'],
    ['rtt.smoothed', 'rtt_smoothed_ms'],
    ['rtt.minimum', 'rtt_min_ms'],
    ['rtt.latest', 'rtt_latest_ms'],
    ['cc.cwnd', 'cwnd'],
    ['cc.num-loss-episodes', 'loss_episodes'],
    ['handshake-confirmed-msec', 'handshake_confirmed_ms'],
    ['num-paths.created', 'paths_created'],
    ['num-paths.promoted', 'paths_promoted'],
  ] as const
).map(([key, name]) => [key, attrKey(`h2o.quic.${name}`)] as const);

/** The `conn_stats` fields the span reads, for decoders that can read just those. */
export const QUIC_STATS_FIELDS: FieldSubset = {
  module: 'quicly',
  type: 'conn_stats',
  fields: QUIC_STATS.map(([key]) => key),
};

/** Written with `set`: quicly's statistics repeat the totals (packets lost, PTOs), which they overwrite. */
export function addQuicConnection(span: FinishedSpan, a: AttributeList, q: QuicRecord): void {
  addTransportEvents(span, q.events, q.droppedEvents);
  if (q.originalDcid !== undefined) a.set(K.quicOriginalDcid, q.originalDcid);
  if (q.version !== undefined) a.set(K.quicVersion, quicVersion(q.version));
  a.set(K.quicPacketsLost, q.packetsLost);
  a.set(K.quicPtos, q.ptos);
  a.set(K.quicCongestionEvents, q.congestionEvents);
  if (q.keyUpdates > 0) a.set(K.quicKeyUpdates, q.keyUpdates);
  if (q.ecnCe > 0) a.set(K.quicEcnCe, q.ecnCe);
  if (q.droppedEvents > 0) a.set(K.quicEventsDropped, q.droppedEvents);
  if (q.stats !== undefined) {
    for (const [key, name] of QUIC_STATS) {
      const v = q.stats[key];
      if (typeof v === 'number') a.set(name, v);
    }
  }
  if (q.close === undefined) {
    if (q.idleTimeout) a.set(K.quicCloseKind, 'idle_timeout');
    return;
  }
  const c = quicClose(q.close);
  a.set(K.quicCloseSide, c.side);
  a.set(K.quicCloseKind, c.kind);
  a.set(K.quicCloseErrorCode, Number(c.errorCode));
  if (c.kind === 'transport') {
    a.set(K.quicCloseError, transportErrorName(c.errorCode));
    a.set(K.quicCloseFrameType, Number(c.frameType ?? 0));
  }
  if (c.reason !== '') a.set(K.quicCloseReason, c.reason);
  if (isErrorClose(c)) {
    const errorType = transportErrorName(c.errorCode);
    a.set(K.errorType, errorType);
    span.status = {
      code: SpanStatusCode.ERROR,
      message: `QUIC connection closed with ${errorType}`,
    };
  }
}
