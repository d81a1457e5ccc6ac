// quicly and picotls events → which are kept for spans, and the facts and totals of the QUIC connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  applyQuicEvent,
  applyTlsEvent,
  isEarlyDataSecret,
  isRequestStream,
  newQuicRecord,
  newTlsFacts,
  streamEvent,
} from '../../src/correlate/quic.js';
import type { FieldValue } from '../../src/events/types.js';
import { probe } from '../../harness/records.js';

const quicly = (type: string, fields: Record<string, FieldValue> = {}) => probe('quicly', type, fields);
const picotls = (type: string, fields: Record<string, FieldValue> = {}) => probe('picotls', type, fields);

test('kept events are the probe events themselves, on the record and returned', () => {
  const q = newQuicRecord();
  const ev = quicly('packet_lost', { pn: 1 });
  assert.equal(applyQuicEvent(q, ev, 10), ev);
  assert.deepEqual(q.events, [ev]);
  assert.equal(q.events[0], ev);
  assert.equal(q.packetsLost, 1);
});

test('plumbing is not kept: accept, the first path, conn_stats, free, unknown points', () => {
  const q = newQuicRecord();
  const stats = { 'num-packets.sent': 3 };
  for (const ev of [
    quicly('accept', { dcid: 'abcd' }),
    quicly('new_path', { path_index: 0 }),
    quicly('conn_stats', stats),
    quicly('packet_sent', { pn: 1 }),
    quicly('free'),
  ]) {
    assert.equal(applyQuicEvent(q, ev, 10), undefined, ev.type);
  }
  assert.deepEqual(q.events, []);
  assert.equal(q.originalDcid, 'abcd');
  assert.equal(q.pathsCreated, 1);
  assert.equal(q.stats, stats);
  assert.equal(q.freed, true);
});

test('the handshake completes once: in-progress and post-handshake messages are not kept', () => {
  const q = newQuicRecord();
  assert.equal(applyQuicEvent(q, quicly('crypto_handshake', { ret: 523 }), 10), undefined);
  assert.notEqual(applyQuicEvent(q, quicly('crypto_handshake', { ret: 0 }), 10), undefined);
  assert.equal(applyQuicEvent(q, quicly('crypto_handshake', { ret: 0 }), 10), undefined);
  assert.equal(q.handshakeComplete, true);
  const confirmed = quicly('handshake_done_send');
  applyQuicEvent(q, confirmed, 10);
  applyQuicEvent(q, quicly('handshake_done_send'), 10);
  assert.equal(q.handshakeDone, confirmed);
});

test('the first close is the connection’s; paths deleted after it are not kept', () => {
  const q = newQuicRecord();
  const first = quicly('application_close_send', { error_code: 0x100 });
  applyQuicEvent(q, first, 10);
  assert.notEqual(applyQuicEvent(q, quicly('transport_close_receive', { error_code: 0 }), 10), undefined);
  assert.equal(q.close, first);
  assert.equal(applyQuicEvent(q, quicly('delete_path', { path_index: 1 }), 10), undefined);
  assert.equal(q.events.length, 2);
  const freed = newQuicRecord();
  applyQuicEvent(freed, quicly('free'), 10);
  assert.equal(applyQuicEvent(freed, quicly('delete_path', { path_index: 0 }), 10), undefined);
});

test('totals count every event, also those beyond the cap', () => {
  const q = newQuicRecord();
  const events = [
    quicly('packet_lost'),
    quicly('packet_lost'),
    quicly('pto'),
    quicly('cc_congestion'),
    quicly('ecn_congestion', { ce_count: 4 }),
    quicly('crypto_send_key_update', { phase: 1 }),
    quicly('crypto_receive_key_update', { phase: 0 }),
    quicly('version_switch', { new_version: 1 }),
    quicly('idle_timeout'),
  ];
  for (const ev of events) applyQuicEvent(q, ev, 3);
  assert.equal(q.events.length, 3);
  assert.equal(q.droppedEvents, events.length - 3);
  assert.equal(q.packetsLost, 2);
  assert.equal(q.ptos, 1);
  assert.equal(q.congestionEvents, 1);
  assert.equal(q.ecnCe, 4);
  assert.equal(q.keyUpdates, 2);
  assert.equal(q.version, 1);
  assert.equal(q.idleTimeout, true);
});

test('TLS facts: start, end, last result, ECH, early data; only the end or a failure is kept', () => {
  const t = newTlsFacts();
  const start = picotls('new');
  assert.equal(applyTlsEvent(t, start), undefined);
  assert.equal(applyTlsEvent(t, picotls('receive_message', { message: 1, result: 514 })), undefined);
  assert.equal(
    applyTlsEvent(t, picotls('new_secret', { label: 'CLIENT_HANDSHAKE_TRAFFIC_SECRET' })),
    undefined,
  );
  assert.equal(t.earlyData, false);
  applyTlsEvent(t, picotls('new_secret', { label: 'CLIENT_EARLY_TRAFFIC_SECRET' }));
  applyTlsEvent(t, picotls('ech_selection', { is_ech: true }));
  const done = picotls('receive_message', { message: 20, result: 0 });
  assert.equal(applyTlsEvent(t, done), done);
  assert.deepEqual(t, { start, done, lastResult: 0, ech: true, earlyData: true });
  const failed = picotls('receive_message', { message: 11, result: 42 });
  assert.equal(applyTlsEvent(newTlsFacts(), failed), failed);
  assert.equal(
    applyTlsEvent(newTlsFacts(), picotls('receive_message', { message: 8, result: 0 })),
    undefined,
  );
});

test('a QUIC connection’s picotls events go to its TLS facts', () => {
  const q = newQuicRecord();
  const done = picotls('receive_message', { message: 20, result: 0 });
  assert.equal(applyQuicEvent(q, done, 10), done);
  assert.equal(q.tls.done, done);
});

test('stream events: all but stream_send, of which only the first data and the FIN', () => {
  for (const type of [
    'stream_on_open',
    'stream_on_destroy',
    'stream_on_send_stop',
    'stream_on_receive_reset',
  ]) {
    const ev = quicly(type, { stream_id: 0 });
    assert.equal(streamEvent(ev), ev, type);
  }
  assert.notEqual(streamEvent(quicly('stream_send', { off: 0 })), undefined);
  assert.notEqual(streamEvent(quicly('stream_send', { off: 10, is_fin: true })), undefined);
  assert.equal(streamEvent(quicly('stream_send', { off: 10, is_fin: false })), undefined);
  assert.equal(streamEvent(quicly('stream_receive', { off: 0 })), undefined);
});

test('request streams are client-initiated bidirectional ones; early data is told by its secret', () => {
  assert.deepEqual(
    [0, 4, 8n, 1, 2, 3, -1, -4, undefined].map((id) => isRequestStream(id)),
    [true, true, true, false, false, false, false, false, false],
  );
  assert.equal(isEarlyDataSecret('CLIENT_EARLY_TRAFFIC_SECRET'), true);
  assert.equal(isEarlyDataSecret('SERVER_TRAFFIC_SECRET_0'), false);
});
