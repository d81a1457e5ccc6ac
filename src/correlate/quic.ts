/**
 * quicly and picotls events of one QUIC connection → what its spans show: transport sub-events (handshake, key
 * updates, paths, losses, PTOs, congestion, ECN, close), running totals that stay exact when events are capped, the
 * close reason, quicly's final statistics and TLS facts. Pure: the correlator owns the records and their lifetimes.
 */
import { numberOf } from '../events/types.js';
import type { FieldValue, ProbeEvent } from '../events/types.js';
import type { Stamp } from './records.js';

export type EventAttributes = Readonly<Record<string, string | number | boolean>>;

/** One span event (a QUIC or TLS happening), already in its exported shape. */
export interface TransportEvent {
  readonly at: Stamp;
  readonly name: string;
  readonly attributes: EventAttributes;
}

export interface QuicClose {
  /** `sent` by H2O or `received` from the client. */
  readonly side: 'sent' | 'received';
  readonly kind: 'transport' | 'application';
  readonly errorCode: number | bigint;
  readonly frameType: number | bigint | undefined;
  readonly reason: string;
}

export interface QuicRecord {
  /** The client's first destination CID (`quicly:accept.dcid`): qlog's group_id. */
  originalDcid: string | undefined;
  /** Set by a version negotiation (`quicly:version_switch`); otherwise H2O does not log the version. */
  version: number | undefined;
  /** Sub-events in order, at most `cap` kept (the rest counted in `droppedEvents`). */
  readonly events: TransportEvent[];
  droppedEvents: number;
  packetsLost: number;
  ptos: number;
  congestionEvents: number;
  ecnCe: number;
  keyUpdates: number;
  pathsCreated: number;
  handshakeComplete: boolean;
  handshakeDone: Stamp | undefined;
  close: QuicClose | undefined;
  idleTimeout: boolean;
  /** `quicly:conn_stats` (socket source only: USDT passes a struct pointer). */
  stats: Readonly<Record<string, FieldValue>> | undefined;
  /** `quicly:free` seen: nothing more will come. */
  freed: boolean;
  readonly tls: TlsFacts;
}

export interface TlsFacts {
  start: Stamp | undefined;
  done: Stamp | undefined;
  /** picotls result of the last handshake message: 0 ok, 514/523 in progress, else an alert or error. */
  lastResult: number | undefined;
  ech: boolean | undefined;
  /** A CLIENT_EARLY_TRAFFIC_SECRET was derived: a resumed session offering 0-RTT. */
  earlyData: boolean;
}

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

const PACKET_TYPES = ['initial', '0rtt', 'handshake', '1rtt'] as const;

export function packetTypeName(v: FieldValue | undefined): string {
  return typeof v === 'number' ? (PACKET_TYPES[v] ?? String(v)) : 'unknown';
}

function n(v: FieldValue | undefined): number {
  return numberOf(v) ?? 0;
}

/** A u64 as an attribute value: a number when exact, else its decimal text. */
function exact(v: FieldValue | undefined): number | string {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return typeof v === 'number' ? v : 0;
}

function num(v: FieldValue | undefined): number | bigint {
  return typeof v === 'number' || typeof v === 'bigint' ? v : 0;
}

/** QUIC transport error codes (RFC 9000 §20.1) by value, for readable close reasons. */
const TRANSPORT_ERRORS: Readonly<Record<number, string>> = {
  0x0: 'NO_ERROR',
  0x1: 'INTERNAL_ERROR',
  0x2: 'CONNECTION_REFUSED',
  0x3: 'FLOW_CONTROL_ERROR',
  0x4: 'STREAM_LIMIT_ERROR',
  0x5: 'STREAM_STATE_ERROR',
  0x6: 'FINAL_SIZE_ERROR',
  0x7: 'FRAME_ENCODING_ERROR',
  0x8: 'TRANSPORT_PARAMETER_ERROR',
  0x9: 'CONNECTION_ID_LIMIT_ERROR',
  0xa: 'PROTOCOL_VIOLATION',
  0xb: 'INVALID_TOKEN',
  0xc: 'APPLICATION_ERROR',
  0xd: 'CRYPTO_BUFFER_EXCEEDED',
  0xe: 'KEY_UPDATE_ERROR',
  0xf: 'AEAD_LIMIT_REACHED',
  0x10: 'NO_VIABLE_PATH',
};

/** RFC 9000 name, `CRYPTO_ERROR_0x1NN` for TLS alerts, else hex. */
export function transportErrorName(code: number | bigint): string {
  const c = Number(code);
  const known = TRANSPORT_ERRORS[c];
  if (known !== undefined) return known;
  if (c >= 0x100 && c <= 0x1ff) return `CRYPTO_ERROR_0x${c.toString(16)}`;
  return `0x${c.toString(16)}`;
}

/** A close is an error when it is a transport close with a code other than NO_ERROR. */
export function isErrorClose(c: QuicClose | undefined): boolean {
  return c !== undefined && c.kind === 'transport' && Number(c.errorCode) !== 0;
}

/**
 * Apply one quicly or picotls event of the connection. Returns the sub-event it produced (also kept on the record
 * when under `cap`), so the correlator can copy losses and PTOs to the requests in flight.
 */
export function applyQuicEvent(q: QuicRecord, ev: ProbeEvent, cap: number): TransportEvent | undefined {
  const e = transportEvent(q, ev);
  if (e === undefined) return undefined;
  if (q.events.length < cap) q.events.push(e);
  else q.droppedEvents++;
  return e;
}

function transportEvent(q: QuicRecord, ev: ProbeEvent): TransportEvent | undefined {
  const f = ev.fields;
  const at = ev;
  const make = (name: string, attributes: EventAttributes = {}): TransportEvent => ({ at, name, attributes });
  if (ev.module === 'picotls') return tlsEvent(q, ev, make);
  switch (ev.type) {
    case 'accept':
      if (typeof f.dcid === 'string') q.originalDcid = f.dcid;
      return undefined;
    case 'new_path':
      q.pathsCreated++;
      if (q.pathsCreated === 1) return undefined; // the first path is the connection itself
      return make('quic.path_new', {
        'quic.path.index': n(f.path_index),
        'network.peer.address': String(f.remote ?? ''),
      });
    case 'promote_path':
      return make('quic.path_promoted', { 'quic.path.index': n(f.path_index) });
    case 'delete_path':
      return q.close === undefined && !q.freed
        ? make('quic.path_deleted', { 'quic.path.index': n(f.path_index) })
        : undefined;
    case 'crypto_handshake':
      // quicly reports every handshake message; 0 means done (later ones are post-handshake messages).
      if (n(f.ret) !== 0 || q.handshakeComplete) return undefined;
      q.handshakeComplete = true;
      return make('quic.handshake_complete');
    case 'handshake_done_send':
      q.handshakeDone ??= ev;
      return make('quic.handshake_confirmed');
    case 'crypto_send_key_update':
    case 'crypto_receive_key_update':
      q.keyUpdates++;
      return make('quic.key_update', {
        'quic.key_phase': n(f.phase),
        'quic.trigger': ev.type === 'crypto_send_key_update' ? 'local' : 'remote',
      });
    case 'packet_lost':
      q.packetsLost++;
      return make('quic.packet_lost', {
        'quic.packet.number': n(f.pn),
        'quic.packet.type': packetTypeName(f.packet_type),
      });
    case 'pto':
      q.ptos++;
      return make('quic.pto', {
        'quic.bytes_in_flight': n(f.inflight),
        'quic.cwnd': n(f.cwnd),
        'quic.pto_count': n(f.pto_count),
      });
    case 'cc_congestion':
      q.congestionEvents++;
      return make('quic.congestion', {
        'quic.packet.number': n(f.max_lost_pn),
        'quic.bytes_in_flight': n(f.flight ?? f.inflight),
        'quic.cwnd': n(f.cwnd),
      });
    case 'ecn_validation':
      return make('quic.ecn_validation', { 'quic.ecn.state': n(f.state ?? f.ecn_state) });
    case 'ecn_congestion':
      q.ecnCe = n(f.ce_count);
      return make('quic.ecn_congestion', { 'quic.ecn.ce_count': n(f.ce_count) });
    case 'transport_close_send':
    case 'transport_close_receive':
    case 'application_close_send':
    case 'application_close_receive': {
      const side = ev.type.endsWith('_send') ? 'sent' : 'received';
      const kind = ev.type.startsWith('transport') ? 'transport' : 'application';
      const close: QuicClose = {
        side,
        kind,
        errorCode: num(f.error_code),
        frameType: kind === 'transport' ? num(f.frame_type) : undefined,
        reason: typeof f.reason_phrase === 'string' ? f.reason_phrase : '',
      };
      q.close ??= close;
      const a: Record<string, string | number | boolean> = {
        'quic.close.kind': kind,
        'quic.close.error_code': Number(close.errorCode),
      };
      if (kind === 'transport') {
        a['quic.close.error'] = transportErrorName(close.errorCode);
        a['quic.close.frame_type'] = Number(close.frameType ?? 0);
      }
      if (close.reason !== '') a['quic.close.reason'] = close.reason;
      return make(side === 'sent' ? 'quic.close_sent' : 'quic.close_received', a);
    }
    case 'idle_timeout':
      q.idleTimeout = true;
      return make('quic.idle_timeout');
    case 'handshake_timeout':
      return make('quic.handshake_timeout', { 'quic.elapsed_ms': n(f.elapsed) });
    case 'stateless_reset_receive':
      return make('quic.stateless_reset');
    case 'version_switch':
      // Server side, quicly names the version only when the client's was not supported (version negotiation).
      q.version = n(f.new_version);
      return make('quic.version_switch', { 'quic.version': `0x${q.version.toString(16)}` });
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

function tlsEvent(
  q: QuicRecord,
  ev: ProbeEvent,
  make: (name: string, a?: EventAttributes) => TransportEvent,
): TransportEvent | undefined {
  return applyTlsEvent(q.tls, ev, make);
}

export function newTlsFacts(): TlsFacts {
  return { start: undefined, done: undefined, lastResult: undefined, ech: undefined, earlyData: false };
}

/**
 * One picotls event → handshake timing, result, ECH, early data. QUIC connections' events carry the conn id; TCP
 * ones only the `ptls_t` pointer, which the correlator ties to a connection where it can.
 */
export function applyTlsEvent(
  t: TlsFacts,
  ev: ProbeEvent,
  make: (name: string, a?: EventAttributes) => TransportEvent = (name, attributes = {}) => ({
    at: ev,
    name,
    attributes,
  }),
): TransportEvent | undefined {
  const f = ev.fields;
  switch (ev.type) {
    case 'new':
      t.start ??= ev;
      return undefined;
    case 'receive_message': {
      const result = n(f.result);
      t.lastResult = result;
      // Server side: the client's Finished (20) accepted ends the handshake.
      if (n(f.message) === 20 && result === 0) {
        t.done ??= ev;
        return make('tls.handshake_complete');
      }
      if (result !== 0 && result !== 514 && result !== 523) {
        return make('tls.handshake_failed', { 'tls.result': result });
      }
      return undefined;
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

/** The quicly points `streamEvent` turns into events of a request. */
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

/** Stream-level quicly events become events of the request on that stream. */
export function streamEvent(ev: ProbeEvent): TransportEvent | undefined {
  const f = ev.fields;
  const at = ev;
  switch (ev.type) {
    case 'stream_on_open':
      return { at, name: 'quic.stream_open', attributes: {} };
    case 'stream_on_destroy':
      return { at, name: 'quic.stream_destroy', attributes: { 'quic.stream.error_code': exact(f.err) } };
    case 'stream_on_send_stop':
      return {
        at,
        name: 'quic.stop_sending_received',
        attributes: { 'quic.stream.error_code': exact(f.err) },
      };
    case 'stream_on_receive_reset':
      return {
        at,
        name: 'quic.reset_stream_received',
        attributes: { 'quic.stream.error_code': exact(f.err) },
      };
    case 'stream_send':
      // detailed level: the first and the last (FIN) data of the response
      if (n(f.off) === 0) return { at, name: 'quic.stream_first_data', attributes: {} };
      if (f.is_fin === true)
        return { at, name: 'quic.stream_fin_sent', attributes: { 'quic.stream.offset': n(f.off) } };
      return undefined;
    default:
      return undefined;
  }
}
