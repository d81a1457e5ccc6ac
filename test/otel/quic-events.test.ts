// The QUIC and TLS events the correlator keeps → span events and QUIC connection attributes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpanStatusCode } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { applyQuicEvent, newQuicRecord, streamEvent } from '../../src/correlate/quic.js';
import type { QuicRecord, TransportEvent } from '../../src/correlate/records.js';
import type { FieldValue } from '../../src/events/types.js';
import { at, collectingMapper, connection, probe, request } from '../../harness/records.js';

function quicly(
  type: string,
  fields: Record<string, FieldValue> = {},
  timeMs = 1000,
): ReturnType<typeof probe> {
  return probe('quicly', type, { conn_id: 7, ...fields }, timeMs);
}

/** The connection span of a QUIC connection that saw `events`. */
function connectionSpan(
  events: ReturnType<typeof probe>[],
  cap = 100,
): { span: ReadableSpan; q: QuicRecord } {
  const q = newQuicRecord();
  for (const ev of events) applyQuicEvent(q, ev, cap);
  const { mapper, spans } = collectingMapper();
  mapper.connectionClosed(connection({ protocol: 'http/3', quic: q }));
  assert.equal(spans.length, 1);
  return { span: spans[0]!, q };
}

const named = (span: ReadableSpan) => span.events.map((e) => [e.name, e.attributes]);

test('each kept quicly and picotls event becomes a span event with its attributes, in order', () => {
  const { span } = connectionSpan([
    quicly('new_path', { path_index: 0, remote: '10.0.0.1:1000' }),
    quicly('new_path', { path_index: 1, remote: '10.0.0.2:2000' }),
    quicly('promote_path', { path_index: 1 }),
    quicly('crypto_handshake', { ret: 0 }),
    probe('picotls', 'receive_message', { conn_id: 7, message: 20, result: 0 }),
    quicly('handshake_done_send'),
    quicly('crypto_send_key_update', { phase: 1 }),
    quicly('crypto_receive_key_update', { phase: 0 }),
    quicly('packet_lost', { pn: 5, packet_type: 3 }),
    quicly('packet_lost', { pn: 6, packet_type: 9 }),
    quicly('packet_lost', { pn: 7 }),
    quicly('pto', { inflight: 1200, cwnd: 14720, pto_count: 2 }),
    quicly('cc_congestion', { max_lost_pn: 7, flight: 900, cwnd: 7000 }),
    quicly('cc_congestion', { max_lost_pn: 8, inflight: 800, cwnd: 6000 }),
    quicly('ecn_validation', { state: 1 }),
    quicly('ecn_validation', { ecn_state: 2 }),
    quicly('ecn_congestion', { ce_count: 2 }),
    quicly('version_switch', { new_version: 0x6b3343cf }),
    quicly('handshake_timeout', { elapsed: 100 }),
    quicly('stateless_reset_receive'),
    quicly('delete_path', { path_index: 1 }),
    quicly('idle_timeout'),
  ]);
  assert.deepEqual(named(span), [
    ['quic.path_new', { 'quic.path.index': 1, 'network.peer.address': '10.0.0.2:2000' }],
    ['quic.path_promoted', { 'quic.path.index': 1 }],
    ['quic.handshake_complete', {}],
    ['tls.handshake_complete', {}],
    ['quic.handshake_confirmed', {}],
    ['quic.key_update', { 'quic.key_phase': 1, 'quic.trigger': 'local' }],
    ['quic.key_update', { 'quic.key_phase': 0, 'quic.trigger': 'remote' }],
    ['quic.packet_lost', { 'quic.packet.number': 5, 'quic.packet.type': '1rtt' }],
    ['quic.packet_lost', { 'quic.packet.number': 6, 'quic.packet.type': '9' }],
    ['quic.packet_lost', { 'quic.packet.number': 7, 'quic.packet.type': 'unknown' }],
    ['quic.pto', { 'quic.bytes_in_flight': 1200, 'quic.cwnd': 14720, 'quic.pto_count': 2 }],
    ['quic.congestion', { 'quic.packet.number': 7, 'quic.bytes_in_flight': 900, 'quic.cwnd': 7000 }],
    ['quic.congestion', { 'quic.packet.number': 8, 'quic.bytes_in_flight': 800, 'quic.cwnd': 6000 }],
    ['quic.ecn_validation', { 'quic.ecn.state': 1 }],
    ['quic.ecn_validation', { 'quic.ecn.state': 2 }],
    ['quic.ecn_congestion', { 'quic.ecn.ce_count': 2 }],
    ['quic.version_switch', { 'quic.version': '0x6b3343cf' }],
    ['quic.handshake_timeout', { 'quic.elapsed_ms': 100 }],
    ['quic.stateless_reset', {}],
    ['quic.path_deleted', { 'quic.path.index': 1 }],
    ['quic.idle_timeout', {}],
  ]);
  const a = span.attributes;
  assert.equal(a['h2o.quic.version'], '0x6b3343cf');
  assert.equal(a['h2o.quic.packets_lost'], 3);
  assert.equal(a['h2o.quic.ptos'], 1);
  assert.equal(a['h2o.quic.congestion_events'], 2);
  assert.equal(a['h2o.quic.key_updates'], 2);
  assert.equal(a['h2o.quic.ecn_ce'], 2);
  assert.equal(a['h2o.quic.close.kind'], 'idle_timeout');
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
});

test('span events carry the time of the probe event', () => {
  const { span } = connectionSpan([quicly('pto', {}, 1234.5)]);
  assert.deepEqual(span.events[0]!.time, [1, 234_500_000]);
});

test('a failed TLS handshake is an event with its picotls result', () => {
  const { span } = connectionSpan([
    probe('picotls', 'receive_message', { conn_id: 7, message: 1, result: 40 }),
  ]);
  assert.deepEqual(named(span), [['tls.handshake_failed', { 'tls.result': 40 }]]);
  assert.equal(span.attributes['h2o.tls.handshake_result'], 40);
});

test('a transport close with an error: RFC 9000 names, TLS alerts as CRYPTO_ERROR, the span an error', () => {
  const { span } = connectionSpan([
    quicly('transport_close_send', { error_code: 0x10a, frame_type: 6, reason_phrase: 'alert' }),
    quicly('transport_close_receive', { error_code: 0, frame_type: 0, reason_phrase: '' }),
  ]);
  assert.deepEqual(named(span), [
    [
      'quic.close_sent',
      {
        'quic.close.kind': 'transport',
        'quic.close.error_code': 0x10a,
        'quic.close.error': 'CRYPTO_ERROR_0x10a',
        'quic.close.frame_type': 6,
        'quic.close.reason': 'alert',
      },
    ],
    [
      'quic.close_received',
      {
        'quic.close.kind': 'transport',
        'quic.close.error_code': 0,
        'quic.close.error': 'NO_ERROR',
        'quic.close.frame_type': 0,
      },
    ],
  ]);
  // The first close is the connection's.
  const a = span.attributes;
  assert.equal(a['h2o.quic.close.side'], 'sent');
  assert.equal(a['h2o.quic.close.kind'], 'transport');
  assert.equal(a['h2o.quic.close.error_code'], 0x10a);
  assert.equal(a['h2o.quic.close.error'], 'CRYPTO_ERROR_0x10a');
  assert.equal(a['h2o.quic.close.frame_type'], 6);
  assert.equal(a['h2o.quic.close.reason'], 'alert');
  assert.equal(a['error.type'], 'CRYPTO_ERROR_0x10a');
  assert.deepEqual(span.status, {
    code: SpanStatusCode.ERROR,
    message: 'QUIC connection closed with CRYPTO_ERROR_0x10a',
  });
});

test('transport error codes: by RFC 9000 name, else in hex', () => {
  for (const [code, name] of [
    [0x1, 'INTERNAL_ERROR'],
    [0xa, 'PROTOCOL_VIOLATION'],
    [0x10, 'NO_VIABLE_PATH'],
    [0x77, '0x77'],
  ] as const) {
    const { span } = connectionSpan([quicly('transport_close_receive', { error_code: code, frame_type: 8 })]);
    assert.equal(span.attributes['h2o.quic.close.error'], name);
    assert.equal(span.attributes['error.type'], name);
  }
});

test('an application close is no error, and names no transport error or frame', () => {
  const { span } = connectionSpan([
    quicly('application_close_send', { error_code: 0x100, reason_phrase: 'bye' }),
  ]);
  assert.deepEqual(named(span), [
    [
      'quic.close_sent',
      { 'quic.close.kind': 'application', 'quic.close.error_code': 256, 'quic.close.reason': 'bye' },
    ],
  ]);
  assert.equal(span.attributes['h2o.quic.close.kind'], 'application');
  assert.equal(span.attributes['h2o.quic.close.error'], undefined);
  assert.equal(span.attributes['error.type'], undefined);
  assert.deepEqual(span.status, { code: SpanStatusCode.UNSET });
});

test('events beyond the cap are counted as dropped while the totals stay exact', () => {
  const lost = [1, 2, 3, 4, 5].map((pn) => quicly('packet_lost', { pn, packet_type: 3 }));
  const { span } = connectionSpan(lost, 2);
  assert.equal(span.events.length, 2);
  assert.equal(span.droppedEventsCount, 3);
  assert.equal(span.attributes['h2o.quic.packets_lost'], 5);
  assert.equal(span.attributes['h2o.quic.events_dropped'], 3);
});

test("quicly's connection statistics become h2o.quic.* attributes", () => {
  const { span } = connectionSpan([
    quicly('accept', { dcid: '55237ed37b2e08d0' }),
    quicly('conn_stats', {
      'num-packets.sent': 5,
      'rtt.smoothed': 1,
      'cc.cwnd': 14720,
      'num-paths.created': 1,
    }),
  ]);
  const a = span.attributes;
  assert.equal(a['h2o.quic.original_dcid'], '55237ed37b2e08d0');
  assert.equal(a['h2o.quic.packets_sent'], 5);
  assert.equal(a['h2o.quic.rtt_smoothed_ms'], 1);
  assert.equal(a['h2o.quic.cwnd'], 14720);
  assert.equal(a['h2o.quic.paths_created'], 1);
  assert.equal(a['h2o.quic.packets_received'], undefined);
});

test("a request's stream events: its span starts when the stream opened, u64 error codes kept exact", () => {
  const events: TransportEvent[] = [];
  for (const ev of [
    quicly('stream_on_open', { stream_id: 0 }, 1005),
    quicly('stream_send', { stream_id: 0, off: 0 }, 1011),
    quicly('stream_send', { stream_id: 0, off: 100, is_fin: true }, 1012),
    quicly('stream_on_send_stop', { stream_id: 0, err: 0x10c }, 1013),
    quicly('stream_on_receive_reset', { stream_id: 0, err: 18446744073709551615n }, 1014),
    quicly('stream_on_destroy', { stream_id: 0, err: 4611686018427584512n }, 1015),
  ]) {
    const kept = streamEvent(ev);
    if (kept !== undefined) events.push(kept);
  }
  const lost = quicly('packet_lost', { pn: 3, packet_type: 3 }, 1012);
  events.push(lost);
  const { mapper, spans } = collectingMapper();
  const conn = connection({ protocol: 'http/3' });
  mapper.requestCompleted(
    request(
      conn,
      { ':method': 'GET' },
      { start: at(1010), end: at(1015), transportEvents: events, droppedTransportEvents: 1, packetsLost: 1 },
    ),
  );
  const s = spans[0]!;
  assert.deepEqual(s.startTime, [1, 5_000_000]);
  assert.deepEqual(
    s.events.map((e) => [e.name, e.attributes]),
    [
      ['response_start', undefined],
      ['quic.stream_open', {}],
      ['quic.stream_first_data', {}],
      ['quic.stream_fin_sent', { 'quic.stream.offset': 100 }],
      ['quic.stop_sending_received', { 'quic.stream.error_code': 0x10c }],
      ['quic.reset_stream_received', { 'quic.stream.error_code': '18446744073709551615' }],
      ['quic.stream_destroy', { 'quic.stream.error_code': '4611686018427584512' }],
      ['quic.packet_lost', { 'quic.packet.number': 3, 'quic.packet.type': '1rtt' }],
    ],
  );
  assert.equal(s.droppedEventsCount, 1);
  assert.equal(s.attributes['h2o.quic.packets_lost'], 1);
  assert.equal(s.attributes['h2o.quic.ptos'], 0);
});
