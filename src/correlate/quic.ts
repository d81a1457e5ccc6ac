/**
 * quicly and picotls events of one QUIC connection → the facts its spans show: which events are worth a span event
 * (handshake, key updates, paths, losses, PTOs, congestion, ECN, close), running totals that stay exact when events
 * are capped, the close, quicly's final statistics and TLS facts. Pure: the correlator owns the records and their
 * lifetimes; `otel/quic-events.ts` names what is kept.
 */
import { numberOf, numberOr0 } from '../events/types.js';
import type { FieldValue, ProbeEvent } from '../events/types.js';
import type { QuicRecord, TlsFacts, TransportEvent } from './records.js';

export function newQuicRecord(): QuicRecord {
  return {
    originalDcid: undefined,
    version: undefined,
    events: [],
    droppedEvents: 0,
    packetsLost: 0,
    ptos: 0,
    congestionEvents: 0,
    ecnCe: 0,
    keyUpdates: 0,
    pathsCreated: 0,
    handshakeComplete: false,
    handshakeDone: undefined,
    close: undefined,
    idleTimeout: false,
    stats: undefined,
    freed: false,
    tls: newTlsFacts(),
  };
}

/**
 * Apply one quicly or picotls event of the connection. Returns the event when it is kept for the span (also kept
 * on the record when under `cap`), so the correlator can copy losses and PTOs to the requests in flight.
 */
export function applyQuicEvent(q: QuicRecord, ev: ProbeEvent, cap: number): TransportEvent | undefined {
  const kept = ev.module === 'picotls' ? applyTlsEvent(q.tls, ev) : applyQuiclyEvent(q, ev);
  if (kept === undefined) return undefined;
  if (q.events.length < cap) q.events.push(kept);
  else q.droppedEvents++;
  return kept;
}

function applyQuiclyEvent(q: QuicRecord, ev: ProbeEvent): TransportEvent | undefined {
  const f = ev.fields;
  switch (ev.type) {
    case 'accept':
      if (typeof f.dcid === 'string') q.originalDcid = f.dcid;
      return undefined;
    case 'new_path':
      q.pathsCreated++;
      return q.pathsCreated === 1 ? undefined : ev; // the first path is the connection itself
    case 'delete_path':
      return q.close === undefined && !q.freed ? ev : undefined;
    case 'crypto_handshake':
      // quicly reports every handshake message; 0 means done (later ones are post-handshake messages).
      if (numberOr0(f.ret) !== 0 || q.handshakeComplete) return undefined;
      q.handshakeComplete = true;
      return ev;
    case 'handshake_done_send':
      q.handshakeDone ??= ev;
      return ev;
    case 'crypto_send_key_update':
    case 'crypto_receive_key_update':
      q.keyUpdates++;
      return ev;
    case 'packet_lost':
      q.packetsLost++;
      return ev;
    case 'pto':
      q.ptos++;
      return ev;
    case 'cc_congestion':
      q.congestionEvents++;
      return ev;
    case 'ecn_congestion':
      q.ecnCe = numberOr0(f.ce_count);
      return ev;
    case 'transport_close_send':
    case 'transport_close_receive':
    case 'application_close_send':
    case 'application_close_receive':
      q.close ??= ev;
      return ev;
    case 'idle_timeout':
      q.idleTimeout = true;
      return ev;
    case 'version_switch':
      // Server side, quicly names the version only when the client's was not supported (version negotiation).
      q.version = numberOr0(f.new_version);
      return ev;
    case 'promote_path':
    case 'ecn_validation':
    case 'handshake_timeout':
    case 'stateless_reset_receive':
      return ev;
    case 'conn_stats':
      q.stats = f;
      return undefined;
    case 'free':
      q.freed = true;
      return undefined;
    default:
      return undefined;
  }
}

export function newTlsFacts(): TlsFacts {
  return { start: undefined, done: undefined, lastResult: undefined, ech: undefined, earlyData: false };
}

/**
 * One picotls event → handshake timing, result, ECH, early data; returns it when it is worth a span event (the
 * handshake's end or failure). QUIC connections' events carry the conn id; TCP ones only the `ptls_t` pointer,
 * which the correlator ties to a connection where it can.
 */
export function applyTlsEvent(t: TlsFacts, ev: ProbeEvent): TransportEvent | undefined {
  const f = ev.fields;
  switch (ev.type) {
    case 'new':
      t.start ??= ev;
      return undefined;
    case 'receive_message': {
      const result = numberOr0(f.result);
      t.lastResult = result;
      // Server side: the client's Finished (20) accepted ends the handshake.
      if (numberOr0(f.message) === 20 && result === 0) {
        t.done ??= ev;
        return ev;
      }
      return result !== 0 && result !== 514 && result !== 523 ? ev : undefined;
    }
    case 'new_secret':
      if (isEarlyDataSecret(f.label)) t.earlyData = true;
      return undefined;
    case 'ech_selection':
      t.ech = f.is_ech === true;
      return undefined;
    default:
      return undefined;
  }
}

/** The quicly points `streamEvent` keeps as events of a request. */
export const STREAM_EVENT_TYPES: ReadonlySet<string> = new Set([
  'stream_on_open',
  'stream_on_destroy',
  'stream_on_send_stop',
  'stream_on_receive_reset',
  'stream_send',
]);

/**
 * Whether a stream can carry a request: HTTP/3 requests live on client-initiated bidirectional streams (RFC 9000
 * §2.1, RFC 9114 §6.1). The control and QPACK streams are unidirectional, and quicly numbers its crypto streams
 * below zero: their events change no span.
 */
export function isRequestStream(id: FieldValue | undefined): boolean {
  const n = numberOf(id);
  return n !== undefined && n >= 0 && n % 4 === 0;
}

/**
 * Of the TLS secrets installed, only early data's tells a span something (`h2o.tls.early_data`): the others go
 * unread.
 */
export function isEarlyDataSecret(label: FieldValue | undefined): boolean {
  return label === EARLY_DATA_SECRET;
}

const EARLY_DATA_SECRET = 'CLIENT_EARLY_TRAFFIC_SECRET';

/**
 * Stream-level quicly events kept as events of the request on that stream: every one of `STREAM_EVENT_TYPES`
 * but `stream_send`, of which only the first and the last (FIN) data of the response.
 */
export function streamEvent(ev: ProbeEvent): TransportEvent | undefined {
  switch (ev.type) {
    case 'stream_on_open':
    case 'stream_on_destroy':
    case 'stream_on_send_stop':
    case 'stream_on_receive_reset':
      return ev;
    case 'stream_send':
      return numberOr0(ev.fields.off) === 0 || ev.fields.is_fin === true ? ev : undefined;
    default:
      return undefined;
  }
}
