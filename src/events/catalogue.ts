/**
 * The probe catalogue: which H2O points exist in which provider, which carry ids, and which points each output
 * needs. Names follow the h2olog socket (snake_case, `module:type`).
 */

import { USDT_CONNECT_POINTS, USDT_QUIC_MAPPING_POINTS } from './usdt-probes.js';

/** h2o-provider points; used to give old BPF h2olog lines (which lack `module`) their provider. */
export const H2O_POINTS: ReadonlySet<string> = new Set([
  'h1_accept',
  'h1_close',
  'receive_request',
  'receive_request_header',
  'send_response',
  'send_response_header',
  'h2_unknown_frame_type',
  'h3s_accept',
  'h3s_destroy',
  'h3s_stream_set_state',
  'h3s_stream_stats',
  'h3s_stream0_ttlb',
  'h3_frame_receive',
  'h3_packet_receive',
  'h3_packet_forward',
  'h3_packet_forward_to_node_ignore',
  'h3_packet_forward_to_thread_ignore',
  'h3_forwarded_packet_receive',
  'connect_tcp_start',
  'connect_tcp_write',
  'connect_tcp_write_error',
  'connect_tcp_read',
  'connect_tcp_read_error',
  'connect_udp_start',
  'connect_udp_write',
  'connect_udp_read',
  'connect_error',
  'connect_success',
  'connect_io_timeout',
  'connect_dispose',
  'write',
  'writev',
  'write_complete',
  'write_tls_record',
  'socket_write',
  'socket_writev',
  'socket_write_complete',
  'socket_write_tls_record',
]);

/** picotls-provider points (the old BPF h2olog never traced these, but the socket does). */
export const PICOTLS_POINTS: ReadonlySet<string> = new Set([
  'new',
  'free',
  'client_random',
  'receive_message',
  'new_secret',
  'ech_selection',
]);

/** Field renames from the old BPF h2olog (after `-` → `_`) to the socket format, per point. */
export const LEGACY_FIELD_RENAMES: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map([
  ['h1_accept', new Map([['conn_uuid', 'uuid']])],
  ['h3s_accept', new Map([['quic_master_id', 'quic']])],
]);

/** How much of QUIC the spans show (`--quic-events`). */
export type QuicEventLevel = 'none' | 'basic' | 'detailed';

/** What the configured output needs from H2O; decides the socket subscription and the probes attached. */
export interface OutputNeeds {
  /** Response headers are captured (or their sizes wanted): subscribe to `send_response_header`. */
  readonly responseHeaders: boolean;
  readonly quicEvents: QuicEventLevel;
}

/**
 * `basic`: what a slow HTTP/3 request needs explained — handshake, key updates, paths, losses, PTOs, congestion,
 * ECN, close, stream lifecycle, quicly's final statistics and TLS facts. A few events per connection, more only
 * when something goes wrong.
 */
const QUIC_BASIC = [
  'quicly:accept',
  'quicly:free',
  'quicly:conn_stats',
  'quicly:version_switch',
  'quicly:crypto_handshake',
  'quicly:handshake_done_send',
  'quicly:crypto_send_key_update',
  'quicly:crypto_receive_key_update',
  'quicly:promote_path',
  'quicly:delete_path',
  'quicly:packet_lost',
  'quicly:pto',
  'quicly:cc_congestion',
  'quicly:ecn_validation',
  'quicly:ecn_congestion',
  'quicly:transport_close_send',
  'quicly:transport_close_receive',
  'quicly:application_close_send',
  'quicly:application_close_receive',
  'quicly:idle_timeout',
  'quicly:handshake_timeout',
  'quicly:stateless_reset_receive',
  'quicly:stream_on_open',
  'quicly:stream_on_destroy',
  'quicly:stream_on_send_stop',
  'quicly:stream_on_receive_reset',
  'picotls:new',
  'picotls:receive_message',
  'picotls:new_secret',
  'picotls:ech_selection',
  'picotls:free',
];

/** `detailed`: every packet sent, received and acknowledged, and stream data (for first/last byte and qlog). */
const QUIC_DETAILED = [
  'quicly:packet_sent',
  'quicly:packet_received',
  'quicly:packet_acked',
  'quicly:cc_ack_received',
  'quicly:stream_send',
];

/**
 * The socket points one request span and its connection span need. Never "everything": without `trace=` H2O
 * sends every QUIC packet and frame event.
 */
export function subscriptionFor(needs: OutputNeeds): string[] {
  const points = [
    'h2o:h1_accept',
    'h2o:h1_close',
    'h2o:receive_request',
    'h2o:receive_request_header',
    'h2o:send_response',
    // Last socket write of an HTTP/1 response: the only end-of-request signal HTTP/1 has. Bodies sent with
    // sendfile show up only as `write_complete`.
    'h2o:writev',
    'h2o:write_complete',
    'h2o:h3s_accept',
    'h2o:h3s_destroy',
    'h2o:h3s_stream_stats',
    // Once per QUIC path: the HTTP/3 client's address and port.
    'quicly:new_path',
  ];
  if (needs.responseHeaders) points.push('h2o:send_response_header');
  if (needs.quicEvents !== 'none') points.push(...QUIC_BASIC);
  if (needs.quicEvents === 'detailed') points.push(...QUIC_DETAILED);
  return points;
}

/**
 * The USDT points for the same output: the socket's points (h2o-otel attaches the USDT spelling of each), the
 * CONNECT tunnel probes (USDT only) and the quicly pointer-to-conn-id mapping.
 */
export function usdtPointsFor(needs: OutputNeeds): string[] {
  return [...subscriptionFor(needs), ...USDT_CONNECT_POINTS, ...USDT_QUIC_MAPPING_POINTS];
}

/**
 * Hybrid tracing (the request probe reads requests): only the QUIC and TLS points, and the H2O points that tie a
 * QUIC connection to its conn id and end it — the QUIC connection span as the other sources show it. None when
 * `needs` asks for no QUIC detail.
 */
export function usdtQuicPointsFor(needs: OutputNeeds): string[] {
  if (needs.quicEvents === 'none') return [];
  const points = ['h2o:h3s_accept', 'h2o:h3s_destroy', 'quicly:new_path', ...QUIC_BASIC];
  if (needs.quicEvents === 'detailed') points.push(...QUIC_DETAILED);
  return [...points, ...USDT_QUIC_MAPPING_POINTS];
}

/** HTTP version as H2O encodes it (major * 256 + minor) → the semantic-convention string. */
export function protocolVersion(httpVersion: number): string {
  const major = Math.floor(httpVersion / 256);
  const minor = httpVersion % 256;
  return major >= 2 ? String(major) : `${major}.${minor}`;
}

/** h2o-otel's own probe request (see the socket source): a path no H2O serves; its span is not exported. */
export const PROBE_PATH = '/.well-known/h2o-otel-probe';

/** Where H2O serves its h2olog stream (`H2O_LOG_URI_PATH`): an h2olog client's handshake is a request to it. */
export const H2OLOG_PATH = '/.well-known/h2olog';
