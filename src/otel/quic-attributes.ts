/**
 * A QUIC connection's facts → its span: sub-events, totals (exact even when events were capped), quicly's
 * statistics and the close reason.
 */
import type { Attributes } from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';
import type { QuicRecord } from '../correlate/records.js';
import type { FieldSubset } from '../events/types.js';
import type { FinishedSpan } from './finished-span.js';
import {
  addTransportEvents,
  isErrorClose,
  quicClose,
  quicVersion,
  transportErrorName,
} from './quic-events.js';

/** quicly's `conn_stats` keys worth a QUIC connection attribute, with its name (`h2o.quic.<name>`) built once. */
const QUIC_STATS: readonly (readonly [string, string])[] = (
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
).map(([key, name]) => [key, `h2o.quic.${name}`] as const);

/** The `conn_stats` fields the span reads, for decoders that can read just those. */
export const QUIC_STATS_FIELDS: FieldSubset = {
  module: 'quicly',
  type: 'conn_stats',
  fields: QUIC_STATS.map(([key]) => key),
};

export function addQuicConnection(span: FinishedSpan, a: Attributes, q: QuicRecord): void {
  addTransportEvents(span, q.events, q.droppedEvents);
  if (q.originalDcid !== undefined) a['h2o.quic.original_dcid'] = q.originalDcid;
  if (q.version !== undefined) a['h2o.quic.version'] = quicVersion(q.version);
  a['h2o.quic.packets_lost'] = q.packetsLost;
  a['h2o.quic.ptos'] = q.ptos;
  a['h2o.quic.congestion_events'] = q.congestionEvents;
  if (q.keyUpdates > 0) a['h2o.quic.key_updates'] = q.keyUpdates;
  if (q.ecnCe > 0) a['h2o.quic.ecn_ce'] = q.ecnCe;
  if (q.droppedEvents > 0) a['h2o.quic.events_dropped'] = q.droppedEvents;
  if (q.stats !== undefined) {
    for (const [key, name] of QUIC_STATS) {
      const v = q.stats[key];
      if (typeof v === 'number') a[name] = v;
    }
  }
  if (q.close === undefined) {
    if (q.idleTimeout) a['h2o.quic.close.kind'] = 'idle_timeout';
    return;
  }
  const c = quicClose(q.close);
  a['h2o.quic.close.side'] = c.side;
  a['h2o.quic.close.kind'] = c.kind;
  a['h2o.quic.close.error_code'] = Number(c.errorCode);
  if (c.kind === 'transport') {
    a['h2o.quic.close.error'] = transportErrorName(c.errorCode);
    a['h2o.quic.close.frame_type'] = Number(c.frameType ?? 0);
  }
  if (c.reason !== '') a['h2o.quic.close.reason'] = c.reason;
  if (isErrorClose(c)) {
    a['error.type'] = transportErrorName(c.errorCode);
    span.status = {
      code: SpanStatusCode.ERROR,
      message: `QUIC connection closed with ${String(a['error.type'])}`,
    };
  }
}
