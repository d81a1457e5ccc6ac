// HTTP/2: no request-end and no close event; a grace after the response start, an idle period for the connection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { at, correlator, h2o, T0 } from '../../harness/probe-events.js';

test('a request ends at send_response once http2GraceMs has passed, late headers still count', () => {
  const { c, sink } = correlator({ http2GraceMs: 200 });
  c.process([
    h2o('receive_request', 0, { conn_id: 8, req_id: 1, http_version: 512 }),
    h2o('send_response', 10, { conn_id: 8, req_id: 1, status: 200 }),
    h2o('send_response_header', 150, { conn_id: 8, req_id: 1, name: 'server', value: 'h2o' }),
  ]);
  c.tick(T0 + 209);
  assert.equal(sink.requests.length, 0);
  c.tick(T0 + 210);
  assert.deepEqual(sink.log, ['req 8/1']);
  const req = sink.request(8, 1)!;
  assert.equal(at(req.end), 10);
  assert.equal(req.responseHeaders.length, 1);
  c.process([h2o('send_response_header', 211, { conn_id: 8, req_id: 1, name: 'late', value: 'x' })]);
  assert.equal(c.stats.orphanEvents, 1, 'a header after the grace is late, not a new request');
});

test('a connection without requests closes http2IdleMs after its last event, normally', () => {
  const { c, sink } = correlator({ http2GraceMs: 5, http2IdleMs: 1000 });
  c.process([
    h2o('receive_request', 0, { conn_id: 8, req_id: 1, http_version: 512 }),
    h2o('send_response', 10, { conn_id: 8, req_id: 1, status: 200 }),
    h2o('receive_request', 20, { conn_id: 8, req_id: 3, http_version: 512 }),
    h2o('send_response', 30, { conn_id: 8, req_id: 3, status: 200 }),
    h2o('send_response_header', 30, { conn_id: 8, req_id: 3, name: 'server', value: 'h2o' }),
  ]);
  c.tick(T0 + 500);
  assert.deepEqual(sink.log, ['req 8/1', 'req 8/3']);
  c.tick(T0 + 1029);
  assert.equal(c.openConnections, 1);
  c.tick(T0 + 1030);
  assert.deepEqual(sink.log, ['req 8/1', 'req 8/3', 'conn 8']);
  const conn = sink.connection(8)!;
  assert.equal(at(conn.end), 30);
  assert.equal(conn.incomplete, undefined);
  assert.equal(conn.requestCount, 2);
});

test('an open request keeps an HTTP/2 connection past the idle period', () => {
  const { c, sink } = correlator({ http2IdleMs: 1000, requestTimeoutMs: 5000 });
  c.process([h2o('receive_request', 0, { conn_id: 8, req_id: 1, http_version: 512 })]);
  c.tick(T0 + 4999);
  assert.deepEqual(sink.log, []);
  c.tick(T0 + 5000);
  assert.deepEqual(sink.log, ['req 8/1', 'conn 8'], 'the request times out, then the idle connection closes');
  assert.equal(sink.request(8, 1)!.incomplete, 'timeout');
});
