/**
 * The USDT probes h2o-otel can attach, with H2O's argument lists (h2o-probes.d, quicly-probes.d at H2O master
 * edd7a120b) and how each argument becomes a field of the same event as the h2olog socket logs it, so both sources
 * feed the correlator identically. A probe's index in USDT_PROBES is its id in BPF records and its attach cookie.
 *
 * Argument spec: `field:kind`, in USDT argument order; field `-` means "not exported" (pointers the log omits,
 * quicly's `at` clock: the record's kernel time is used instead).
 * Kinds: u64 i64 u32 i32 u8 i8 bool ptr; `str/N` a (pointer, length) string whose length is argument N;
 * `cstr` a NUL-terminated string; `sockaddr` a struct sockaddr * rendered as `addr:port`; `stream` a quicly
 * stream pointer read as its stream id.
 */

export type ArgKind =
  'u64' | 'i64' | 'u32' | 'i32' | 'u8' | 'i8' | 'bool' | 'ptr' | 'str' | 'cstr' | 'sockaddr' | 'stream';

export interface UsdtArg {
  /** Field name in the socket format, or undefined when the socket does not log it. */
  readonly field: string | undefined;
  readonly kind: ArgKind;
  /** `str`: the argument holding the length. */
  readonly lengthArg: number | undefined;
}

/** Which id decides per-connection sampling (h2o_usdt.h, enum h2o_usdt_id_kind). */
export type IdKind = 'none' | 'conn' | 'sock' | 'quic';
/** What the probe does to sampling state (enum h2o_usdt_role). */
export type ProbeRole =
  'none' | 'h1_accept' | 'h3_accept' | 'conn_end' | 'quic_end' | 'request_header' | 'response_header';

export interface UsdtProbe {
  readonly id: number;
  readonly provider: 'h2o' | 'quicly';
  /** USDT probe name. */
  readonly name: string;
  /** Point name in the h2olog socket format (differs for the `socket_*` probes). */
  readonly logName: string;
  readonly args: readonly UsdtArg[];
  readonly idKind: IdKind;
  readonly role: ProbeRole;
}

/** USDT probe names that the socket logs under another name. */
export const USDT_TO_LOG_NAME: ReadonlyMap<string, string> = new Map([
  ['socket_write', 'write'],
  ['socket_writev', 'writev'],
  ['socket_write_complete', 'write_complete'],
  ['socket_write_tls_record', 'write_tls_record'],
]);

function parseArgs(spec: string): UsdtArg[] {
  return spec
    .split(/\s+/)
    .filter((s) => s !== '')
    .map((part) => {
      const [field, kindSpec] = part.split(':') as [string, string];
      const [kind, len] = kindSpec.split('/') as [ArgKind, string | undefined];
      return {
        field: field === '-' ? undefined : field,
        kind,
        lengthArg: len === undefined ? undefined : Number(len),
      };
    });
}

const CONN_REQ = 'conn_id:u64 req_id:u64';
const H3_STATS =
  'request_stream_bytes:u64 request_header_bytes:u64 request_body_bytes:u64 request_header_count:u64 ' +
  'request_header_text_bytes:u64 response_stream_bytes:u64 response_header_bytes:u64 response_body_bytes:u64 ' +
  'response_header_count:u64 response_header_text_bytes:u64';
const QUIC = 'conn:ptr -:i64';

/** [provider, name, args, idKind, role] */
const TABLE: readonly (readonly [UsdtProbe['provider'], string, string, IdKind?, ProbeRole?])[] = [
  ['h2o', 'receive_request', `${CONN_REQ} http_version:i32`],
  [
    'h2o',
    'receive_request_header',
    `${CONN_REQ} name:str/3 name_len:u64 value:str/5 value_len:u64`,
    'conn',
    'request_header',
  ],
  ['h2o', 'send_response', `${CONN_REQ} status:i32`],
  [
    'h2o',
    'send_response_header',
    `${CONN_REQ} name:str/3 name_len:u64 value:str/5 value_len:u64`,
    'conn',
    'response_header',
  ],
  ['h2o', 'h1_accept', 'conn_id:u64 sock:ptr -:ptr uuid:cstr', 'conn', 'h1_accept'],
  ['h2o', 'h1_close', 'conn_id:u64', 'conn', 'conn_end'],
  ['h2o', 'h2_unknown_frame_type', 'conn_id:u64 frame_type:u8'],
  ['h2o', 'h3s_accept', 'conn_id:u64 conn:ptr quic:ptr conn_uuid:cstr', 'conn', 'h3_accept'],
  ['h2o', 'h3s_destroy', `conn_id:u64 num_requests:u64 ${H3_STATS}`, 'conn', 'conn_end'],
  ['h2o', 'h3s_stream_set_state', `${CONN_REQ} state:u32`],
  ['h2o', 'h3s_stream_stats', `conn_id:u64 stream_id:u64 ${H3_STATS}`],
  ['h2o', 'socket_write', 'sock:ptr -:ptr bufcnt:u64 cb:ptr', 'sock'],
  ['h2o', 'socket_writev', 'sock:ptr ret:i64', 'sock'],
  ['h2o', 'socket_write_complete', 'sock:ptr success:bool', 'sock'],
  ['h2o', 'socket_write_tls_record', 'sock:ptr write_size:u64 bytes_buffered:u64', 'sock'],
  ['h2o', 'connect_tcp_start', `${CONN_REQ} dest:sockaddr`],
  ['h2o', 'connect_tcp_write', `${CONN_REQ} num_bytes:u64`],
  ['h2o', 'connect_tcp_write_error', `${CONN_REQ} err:cstr`],
  ['h2o', 'connect_tcp_read', `${CONN_REQ} num_bytes:u64`],
  ['h2o', 'connect_tcp_read_error', `${CONN_REQ} err:cstr`],
  ['h2o', 'connect_udp_start', `${CONN_REQ} dest:sockaddr`],
  ['h2o', 'connect_udp_write', `${CONN_REQ} num_bytes:u64`],
  ['h2o', 'connect_udp_read', `${CONN_REQ} num_bytes:u64`],
  ['h2o', 'connect_error', `${CONN_REQ} error_type:cstr details:cstr rcode:cstr`],
  ['h2o', 'connect_success', `${CONN_REQ} dest:sockaddr`],
  ['h2o', 'connect_io_timeout', CONN_REQ],
  ['h2o', 'connect_dispose', CONN_REQ],
  ['quicly', 'accept', `${QUIC} dcid:cstr -:ptr`, 'quic'],
  ['quicly', 'free', QUIC, 'quic', 'quic_end'],
  ['quicly', 'new_path', `${QUIC} path_index:u64 remote:cstr`, 'quic'],
  ['quicly', 'delete_path', `${QUIC} path_index:u64`, 'quic'],
  ['quicly', 'promote_path', `${QUIC} path_index:u64`, 'quic'],
  ['quicly', 'crypto_handshake', `${QUIC} ret:i64`, 'quic'],
  ['quicly', 'crypto_send_key_update', `${QUIC} phase:u64 -:ptr`, 'quic'],
  ['quicly', 'crypto_receive_key_update', `${QUIC} phase:u64 -:ptr`, 'quic'],
  ['quicly', 'packet_sent', `${QUIC} pn:u64 len:u64 packet_type:u8 ack_only:bool`, 'quic'],
  ['quicly', 'packet_received', `${QUIC} pn:u64 -:ptr decrypted_len:u64 packet_type:u8`, 'quic'],
  ['quicly', 'packet_lost', `${QUIC} pn:u64 packet_type:u8`, 'quic'],
  ['quicly', 'pto', `${QUIC} inflight:u64 cwnd:u32 pto_count:i8`, 'quic'],
  ['quicly', 'cc_ack_received', `${QUIC} largest_acked:u64 bytes_acked:u64 cwnd:u32 inflight:u64`, 'quic'],
  ['quicly', 'cc_congestion', `${QUIC} max_lost_pn:u64 flight:u64 cwnd:u32`, 'quic'],
  ['quicly', 'ecn_validation', `${QUIC} state:i32`, 'quic'],
  ['quicly', 'ecn_congestion', `${QUIC} ce_count:u64`, 'quic'],
  ['quicly', 'transport_close_send', `${QUIC} error_code:u64 frame_type:u64 reason_phrase:cstr`, 'quic'],
  ['quicly', 'transport_close_receive', `${QUIC} error_code:u64 frame_type:u64 reason_phrase:cstr`, 'quic'],
  ['quicly', 'application_close_send', `${QUIC} error_code:u64 reason_phrase:cstr`, 'quic'],
  ['quicly', 'application_close_receive', `${QUIC} error_code:u64 reason_phrase:cstr`, 'quic'],
  ['quicly', 'handshake_done_send', QUIC, 'quic'],
  ['quicly', 'handshake_done_receive', QUIC, 'quic'],
  ['quicly', 'stream_on_open', `${QUIC} stream_id:stream`, 'quic'],
  ['quicly', 'stream_on_destroy', `${QUIC} stream_id:stream err:i64`, 'quic'],
  ['quicly', 'stream_on_send_stop', `${QUIC} stream_id:stream err:i64`, 'quic'],
  ['quicly', 'stream_on_receive_reset', `${QUIC} stream_id:stream err:i64`, 'quic'],
  ['quicly', 'idle_timeout', QUIC, 'quic'],
  ['quicly', 'version_switch', `${QUIC} new_version:u32`, 'quic'],
  ['quicly', 'handshake_timeout', `${QUIC} elapsed:i64 rtt_smoothed:u32`, 'quic'],
  ['quicly', 'stateless_reset_receive', QUIC, 'quic'],
  ['quicly', 'packet_acked', `${QUIC} pn:u64 is_late_ack:bool`, 'quic'],
  [
    'quicly',
    'stream_send',
    `${QUIC} stream_id:stream off:u64 -:ptr data_len:u64 is_fin:bool wrote_all:bool`,
    'quic',
  ],
];

export const USDT_PROBES: readonly UsdtProbe[] = TABLE.map(([provider, name, args, idKind, role], id) => ({
  id,
  provider,
  name,
  logName: USDT_TO_LOG_NAME.get(name) ?? name,
  args: parseArgs(args),
  idKind: idKind ?? 'conn',
  role: role ?? 'none',
}));

const BY_POINT = new Map<string, UsdtProbe>();
for (const p of USDT_PROBES) {
  BY_POINT.set(`${p.provider}:${p.name}`, p);
  BY_POINT.set(`${p.provider}:${p.logName}`, p);
}

/** The probe for a `module:name` point, in either its USDT or its socket spelling. */
export function usdtProbe(point: string): UsdtProbe | undefined {
  return BY_POINT.get(point);
}

/** USDT-only points the spans use when the source is USDT: CONNECT tunnels become CLIENT child spans. */
export const USDT_CONNECT_POINTS: readonly string[] = USDT_PROBES.filter((p) =>
  p.name.startsWith('connect_'),
).map((p) => `h2o:${p.name}`);

/**
 * quicly events carry only the connection pointer; these map it to H2O's conn id (`h3s_accept.quic`) and end the
 * mapping (`free`), so they are attached whenever any quicly probe is.
 */
export const USDT_QUIC_MAPPING_POINTS: readonly string[] = ['quicly:accept', 'quicly:free'];
