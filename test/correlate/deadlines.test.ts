// Deadlines and bounds: request timeout, connection idle, eviction; what a sweep ends and in which order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { at, correlator, h2o, http1Exchange, T0 } from '../../harness/probe-events.js';

test('a request without response times out at its start, counted', () => {
  const { c, sink } = correlator({ requestTimeoutMs: 1000 });
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    h2o('receive_request', 10, { conn_id: 3, req_id: 1, http_version: 257 }),
  ]);
  c.tick(T0 + 1009);
  assert.deepEqual(sink.log, []);
  c.tick(T0 + 1010);
  assert.deepEqual(sink.log, ['req 3/1']);
  const req = sink.request(3, 1)!;
  assert.equal(req.incomplete, 'timeout');
  assert.equal(at(req.end), 10);
  assert.equal(c.stats.timedOutRequests, 1);
  assert.equal(c.openConnections, 1);
});

test('an idle connection is closed and flagged, its open request first', () => {
  const { c, sink } = correlator({ connectionIdleMs: 1000, requestTimeoutMs: 5000, http1QuietMs: 5000 });
  c.process([h2o('h1_accept', 0, { conn_id: 3, sock: 7 }), ...http1Exchange(3, 1, 10, 7)]);
  c.tick(T0 + 1011);
  assert.deepEqual(sink.log, []);
  c.tick(T0 + 1012);
  assert.deepEqual(sink.log, ['req 3/1', 'conn 3']);
  assert.equal(sink.request(3, 1)!.incomplete, undefined, 'answered: it ends at its last write');
  assert.equal(at(sink.request(3, 1)!.end), 12);
  const conn = sink.connection(3)!;
  assert.equal(conn.incomplete, 'timeout');
  assert.equal(at(conn.end), 12);
});

test('deadlines fire only when the event clock has moved 100 ms since the last sweep', () => {
  const { c, sink } = correlator({ http2GraceMs: 10 });
  c.process([
    h2o('receive_request', 0, { conn_id: 8, req_id: 1, http_version: 512 }),
    h2o('send_response', 1, { conn_id: 8, req_id: 1, status: 200 }),
    h2o('receive_request', 60, { conn_id: 9, req_id: 1, http_version: 512 }),
  ]);
  assert.deepEqual(sink.log, [], 'due at 11, but no sweep since 0');
  c.process([h2o('receive_request', 100, { conn_id: 10, req_id: 1, http_version: 512 })]);
  assert.deepEqual(sink.log, ['req 8/1']);
});

test('one sweep ends what is due in the order the connections were opened, not by deadline', () => {
  const { c, sink } = correlator({ connectionIdleMs: 1000, http2GraceMs: 10, http1QuietMs: 500 });
  c.process([
    h2o('h1_accept', 0, { conn_id: 30, sock: 1 }),
    h2o('receive_request', 5, { conn_id: 20, req_id: 1, http_version: 512 }),
    h2o('send_response', 6, { conn_id: 20, req_id: 1, status: 200 }),
    h2o('h1_accept', 7, { conn_id: 10, sock: 3 }),
    ...http1Exchange(10, 1, 8, 3),
  ]);
  c.tick(T0 + 1500);
  assert.deepEqual(sink.log, ['conn 30', 'req 20/1', 'conn 20', 'req 10/1', 'conn 10']);
});

test('a closed connection stays closed when a stale socket write reaches it', () => {
  const { c, sink } = correlator({ connectionIdleMs: 1000 });
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    h2o('h1_accept', 1, { conn_id: 3, sock: 8 }),
    h2o('h1_close', 2, { conn_id: 3 }),
    h2o('writev', 3, { sock: 7, ret: 10 }),
  ]);
  c.tick(T0 + 5000);
  c.flush();
  assert.deepEqual(sink.log, ['conn 3']);
});

test('beyond maxConnections the oldest connection is evicted', () => {
  const { c, sink } = correlator({ maxConnections: 2 });
  c.process([
    h2o('h1_accept', 0, { conn_id: 1, sock: 1 }),
    h2o('receive_request', 1, { conn_id: 1, req_id: 1, http_version: 257 }),
    h2o('h1_accept', 2, { conn_id: 2, sock: 2 }),
    h2o('h1_accept', 3, { conn_id: 3, sock: 3 }),
  ]);
  assert.deepEqual(sink.log, ['req 1/1', 'conn 1']);
  assert.equal(sink.connection(1)!.incomplete, 'evicted');
  assert.equal(sink.request(1, 1)!.incomplete, 'evicted');
  assert.equal(c.stats.evictedConnections, 1);
  assert.equal(c.openConnections, 2);
});

test('beyond maxRequestsPerConnection the oldest request is evicted', () => {
  const { c, sink } = correlator({ maxRequestsPerConnection: 2 });
  c.process([
    h2o('receive_request', 0, { conn_id: 8, req_id: 1, http_version: 512 }),
    h2o('receive_request', 1, { conn_id: 8, req_id: 3, http_version: 512 }),
    h2o('send_response', 2, { conn_id: 8, req_id: 3, status: 200 }),
    h2o('receive_request', 3, { conn_id: 8, req_id: 5, http_version: 512 }),
  ]);
  assert.deepEqual(sink.log, ['req 8/1']);
  assert.equal(sink.request(8, 1)!.incomplete, 'evicted');
  assert.equal(at(sink.request(8, 1)!.end), 3, 'no response: the newcomer’s start');
  assert.equal(c.stats.evictedRequests, 1);
  assert.equal(c.openRequests, 2);
});
