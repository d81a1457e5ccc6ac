// HTTP/3: QUIC events routed by conn id, stream events held until their request starts, the stream's end and
// the connection's tail after `h3s_destroy`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FieldValue, ProbeEvent } from '../../src/events/types.js';
import { at, correlator, h2o, probe, T0 } from '../../harness/probe-events.js';

const quicly = (type: string, t: number, fields: Record<string, FieldValue> = {}): ProbeEvent =>
  probe('quicly', type, t, { conn_id: 19, ...fields });

/** quicly opens the connection, H2O accepts it, stream 0 opens before its request starts. */
const opening = [
  quicly('new_path', 0, { path_index: 0, remote: '127.0.0.1:46700' }),
  quicly('accept', 0, { dcid: '55237e' }),
  h2o('h3s_accept', 1, { conn_id: 19, conn_uuid: 'u-19' }),
  quicly('stream_on_open', 2, { stream_id: 0 }),
  quicly('stream_on_open', 2, { stream_id: 2 }),
  h2o('receive_request', 3, { conn_id: 19, req_id: 0, http_version: 768 }),
  h2o('send_response', 4, { conn_id: 19, req_id: 0, status: 200 }),
];

test('stream events before receive_request join the request; stats after the destroy end it at once', () => {
  const { c, sink } = correlator();
  c.process([
    ...opening,
    quicly('stream_on_destroy', 5, { stream_id: 0, err: 0 }),
    h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0, response_stream_bytes: 120 }),
  ]);
  assert.deepEqual(sink.log, ['req 19/0']);
  const req = sink.request(19, 0)!;
  assert.deepEqual(
    req.transportEvents.map((e) => at(e)),
    [2, 5],
    'stream 0 open and destroy; the control stream 2 is not a request',
  );
  assert.equal(at(req.end), 6);
  assert.equal(req.streamStats?.response_stream_bytes, 120);
  assert.equal(req.conn.protocol, 'http/3');
  assert.equal(req.conn.uuid, 'u-19');
  assert.equal(req.conn.remote, '127.0.0.1:46700');
});

test('stream stats before the destroy: the request ends at the later of the two', () => {
  const { c, sink } = correlator();
  c.process([...opening, h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0 })]);
  assert.deepEqual(sink.log, []);
  c.process([quicly('stream_on_destroy', 9, { stream_id: 0, err: 0 })]);
  assert.deepEqual(sink.log, ['req 19/0']);
  assert.equal(at(sink.request(19, 0)!.end), 9);
});

test('stream stats and no destroy: the request ends at the stats, the QUIC tail later', () => {
  const { c, sink } = correlator();
  c.process([...opening, h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0 })]);
  c.tick(T0 + 205);
  assert.deepEqual(sink.log, []);
  c.tick(T0 + 206);
  assert.deepEqual(sink.log, ['req 19/0']);
  assert.equal(at(sink.request(19, 0)!.end), 6);
});

test('without stream events (not subscribed) the stats end the request', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h3s_accept', 1, { conn_id: 19 }),
    h2o('receive_request', 3, { conn_id: 19, req_id: 0, http_version: 768 }),
    h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0 }),
  ]);
  assert.deepEqual(sink.log, ['req 19/0']);
  assert.equal(at(sink.request(19, 0)!.end), 6);
});

test('h3s_destroy: the connection waits for conn_stats and closes at the destroy', () => {
  const { c, sink } = correlator();
  c.process([
    ...opening,
    h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0 }),
    h2o('h3s_destroy', 110, { conn_id: 19, num_requests: 1 }),
  ]);
  assert.deepEqual(sink.log, ['req 19/0'], 'the destroy ends the request waiting for its stream');
  c.process([quicly('free', 111), quicly('conn_stats', 111, { 'num-packets.received': 5 })]);
  assert.deepEqual(sink.log, ['req 19/0', 'conn 19']);
  const conn = sink.connection(19)!;
  assert.equal(at(conn.end), 110);
  assert.equal(conn.closeStats?.num_requests, 1);
  assert.equal(conn.quic?.stats?.['num-packets.received'], 5);
  assert.equal(conn.incomplete, undefined);
});

test('h3s_destroy without conn_stats: the connection closes after the QUIC tail', () => {
  const { c, sink } = correlator();
  c.process([...opening, quicly('stream_on_destroy', 5, { stream_id: 0 })]);
  c.process([h2o('h3s_stream_stats', 6, { conn_id: 19, stream_id: 0 })]);
  c.process([h2o('h3s_destroy', 110, { conn_id: 19 })]);
  c.tick(T0 + 309);
  assert.deepEqual(sink.log, ['req 19/0']);
  c.tick(T0 + 310);
  assert.deepEqual(sink.log, ['req 19/0', 'conn 19']);
  assert.equal(at(sink.connection(19)!.end), 110);
  c.process([probe('picotls', 'free', 311, { tls: 1, conn_id: 19 })]);
  assert.equal(c.openConnections, 0, 'late lines do not revive it');
  assert.equal(c.stats.ignoredEvents, 1);
});

test('losses and PTOs count on the requests in flight', () => {
  const { c, sink } = correlator();
  c.process([
    ...opening,
    quicly('packet_lost', 5, { pn: 3, packet_type: 0 }),
    quicly('pto', 6, { inflight: 1, cwnd: 2, pto_count: 1 }),
    quicly('packet_lost', 7, { pn: 4, packet_type: 0 }),
  ]);
  c.flush();
  const req = sink.request(19, 0)!;
  assert.equal(req.packetsLost, 2);
  assert.equal(req.ptos, 1);
  assert.deepEqual(
    req.transportEvents.map((e) => at(e)),
    [2, 5, 6, 7],
  );
  assert.equal(sink.connection(19)!.quic?.packetsLost, 2);
});
