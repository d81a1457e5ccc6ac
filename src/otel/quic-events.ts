/**
 * The QUIC and TLS events the correlator kept (`correlate/quic.ts`) → span events: their exported names and
 * attributes, and the readable form of a QUIC close.
 */
import type { Attributes } from '@opentelemetry/api';
import type { TimedEvent } from '@opentelemetry/sdk-trace-base';
import { numberOr0 } from '../events/types.js';
import type { FieldValue } from '../events/types.js';
import type { TransportEvent } from '../correlate/records.js';
import type { FinishedSpan } from './finished-span.js';
import { toHrTime } from './hr-time.js';

/**
 * Events kept by the correlator, in order. Those it had to leave out (the per-span cap) are added to the span's
 * dropped-events count, which OTLP carries and trace viewers show; the totals stay in the attributes.
 */
export function addTransportEvents(
  span: FinishedSpan,
  events: readonly TransportEvent[],
  dropped: number,
): void {
  for (const e of events) {
    const event = spanEvent(e);
    if (event !== undefined) span.events.push(event);
  }
  span.droppedEventsCount += dropped;
}

/** One kept event as a span event; undefined for a point the correlator never keeps. */
function spanEvent(ev: TransportEvent): TimedEvent | undefined {
  const f = ev.fields;
  const time = toHrTime(ev);
  if (ev.module === 'picotls') {
    // Kept: the handshake's end (result 0) or its failure.
    if (ev.type !== 'receive_message') return undefined;
    const result = numberOr0(f.result);
    return result === 0
      ? { name: 'tls.handshake_complete', attributes: {}, time }
      : { name: 'tls.handshake_failed', attributes: { 'tls.result': result }, time };
  }
  switch (ev.type) {
    case 'new_path':
      return {
        name: 'quic.path_new',
        attributes: {
          'quic.path.index': numberOr0(f.path_index),
          'network.peer.address': String(f.remote ?? ''),
        },
        time,
      };
    case 'promote_path':
      return { name: 'quic.path_promoted', attributes: { 'quic.path.index': numberOr0(f.path_index) }, time };
    case 'delete_path':
      return { name: 'quic.path_deleted', attributes: { 'quic.path.index': numberOr0(f.path_index) }, time };
    case 'crypto_handshake':
      return { name: 'quic.handshake_complete', attributes: {}, time };
    case 'handshake_done_send':
      return { name: 'quic.handshake_confirmed', attributes: {}, time };
    case 'crypto_send_key_update':
    case 'crypto_receive_key_update':
      return {
        name: 'quic.key_update',
        attributes: {
          'quic.key_phase': numberOr0(f.phase),
          'quic.trigger': ev.type === 'crypto_send_key_update' ? 'local' : 'remote',
        },
        time,
      };
    case 'packet_lost':
      return {
        name: 'quic.packet_lost',
        attributes: {
          'quic.packet.number': numberOr0(f.pn),
          'quic.packet.type': packetTypeName(f.packet_type),
        },
        time,
      };
    case 'pto':
      return {
        name: 'quic.pto',
        attributes: {
          'quic.bytes_in_flight': numberOr0(f.inflight),
          'quic.cwnd': numberOr0(f.cwnd),
          'quic.pto_count': numberOr0(f.pto_count),
        },
        time,
      };
    case 'cc_congestion':
      return {
        name: 'quic.congestion',
        attributes: {
          'quic.packet.number': numberOr0(f.max_lost_pn),
          'quic.bytes_in_flight': numberOr0(f.flight ?? f.inflight),
          'quic.cwnd': numberOr0(f.cwnd),
        },
        time,
      };
    case 'ecn_validation':
      return {
        name: 'quic.ecn_validation',
        attributes: { 'quic.ecn.state': numberOr0(f.state ?? f.ecn_state) },
        time,
      };
    case 'ecn_congestion':
      return {
        name: 'quic.ecn_congestion',
        attributes: { 'quic.ecn.ce_count': numberOr0(f.ce_count) },
        time,
      };
    case 'transport_close_send':
    case 'transport_close_receive':
    case 'application_close_send':
    case 'application_close_receive':
      return closeEvent(quicClose(ev), time);
    case 'idle_timeout':
      return { name: 'quic.idle_timeout', attributes: {}, time };
    case 'handshake_timeout':
      return {
        name: 'quic.handshake_timeout',
        attributes: { 'quic.elapsed_ms': numberOr0(f.elapsed) },
        time,
      };
    case 'stateless_reset_receive':
      return { name: 'quic.stateless_reset', attributes: {}, time };
    case 'version_switch':
      return {
        name: 'quic.version_switch',
        attributes: { 'quic.version': quicVersion(numberOr0(f.new_version)) },
        time,
      };
    case 'stream_on_open':
      return { name: 'quic.stream_open', attributes: {}, time };
    case 'stream_on_destroy':
      return { name: 'quic.stream_destroy', attributes: { 'quic.stream.error_code': exact(f.err) }, time };
    case 'stream_on_send_stop':
      return {
        name: 'quic.stop_sending_received',
        attributes: { 'quic.stream.error_code': exact(f.err) },
        time,
      };
    case 'stream_on_receive_reset':
      return {
        name: 'quic.reset_stream_received',
        attributes: { 'quic.stream.error_code': exact(f.err) },
        time,
      };
    case 'stream_send':
      // Kept: the first and the last (FIN) data of the response.
      return numberOr0(f.off) === 0
        ? { name: 'quic.stream_first_data', attributes: {}, time }
        : { name: 'quic.stream_fin_sent', attributes: { 'quic.stream.offset': numberOr0(f.off) }, time };
    default:
      return undefined;
  }
}

function closeEvent(c: QuicClose, time: TimedEvent['time']): TimedEvent {
  const a: Attributes = { 'quic.close.kind': c.kind, 'quic.close.error_code': Number(c.errorCode) };
  if (c.kind === 'transport') {
    a['quic.close.error'] = transportErrorName(c.errorCode);
    a['quic.close.frame_type'] = Number(c.frameType ?? 0);
  }
  if (c.reason !== '') a['quic.close.reason'] = c.reason;
  return { name: c.side === 'sent' ? 'quic.close_sent' : 'quic.close_received', attributes: a, time };
}

export interface QuicClose {
  /** `sent` by H2O or `received` from the client. */
  readonly side: 'sent' | 'received';
  readonly kind: 'transport' | 'application';
  readonly errorCode: number | bigint;
  readonly frameType: number | bigint | undefined;
  readonly reason: string;
}

/** A `quicly:{transport,application}_close_{send,receive}` event read. */
export function quicClose(ev: TransportEvent): QuicClose {
  const f = ev.fields;
  const kind = ev.type.startsWith('transport') ? 'transport' : 'application';
  return {
    side: ev.type.endsWith('_send') ? 'sent' : 'received',
    kind,
    errorCode: exactNumber(f.error_code),
    frameType: kind === 'transport' ? exactNumber(f.frame_type) : undefined,
    reason: typeof f.reason_phrase === 'string' ? f.reason_phrase : '',
  };
}

/** A close is an error when it is a transport close with a code other than NO_ERROR. */
export function isErrorClose(c: QuicClose): boolean {
  return c.kind === 'transport' && Number(c.errorCode) !== 0;
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

export function quicVersion(version: number): string {
  return `0x${version.toString(16)}`;
}

const PACKET_TYPES = ['initial', '0rtt', 'handshake', '1rtt'] as const;

function packetTypeName(v: FieldValue | undefined): string {
  return typeof v === 'number' ? (PACKET_TYPES[v] ?? String(v)) : 'unknown';
}

/** A u64 as an attribute value: a number when exact, else its decimal text. */
function exact(v: FieldValue | undefined): number | string {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return typeof v === 'number' ? v : 0;
}

/** A u64 field exactly (a bigint above 2^53), 0 when missing. */
function exactNumber(v: FieldValue | undefined): number | bigint {
  return typeof v === 'number' || typeof v === 'bigint' ? v : 0;
}
