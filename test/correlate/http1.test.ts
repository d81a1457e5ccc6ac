// HTTP/1: request ends (no end event), socket writes, and the h2c continuations joined back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { at, correlator, h2o, http1Exchange, T0 } from '../../harness/probe-events.js';

test('keep-alive: a request ends at its last write when the next request starts', () => {
  const { c, sink } = correlator();
  c.process([h2o('h1_accept', 0, { conn_id: 3, sock: 7 }), ...http1Exchange(3, 1, 10, 7)]);
  assert.equal(sink.requests.length, 0);
  c.process(http1Exchange(3, 2, 50, 7));
  assert.deepEqual(sink.log, ['req 3/1']);
  const first = sink.request(3, 1)!;
  assert.equal(at(first.end), 12);
  assert.equal(first.status, 200);
  assert.equal(first.incomplete, undefined);
  assert.equal(c.openRequests, 1);
});

test('a request ends http1QuietMs after its last write, at that write', () => {
  const { c, sink } = correlator({ http1QuietMs: 500 });
  c.process([h2o('h1_accept', 0, { conn_id: 3, sock: 7 }), ...http1Exchange(3, 1, 10, 7)]);
  c.process([h2o('writev', 20, { sock: 7, ret: 10 })]);
  c.tick(T0 + 519);
  assert.equal(sink.requests.length, 0, 'still within the quiet period of the last write');
  c.tick(T0 + 520);
  assert.deepEqual(sink.log, ['req 3/1']);
  assert.equal(at(sink.request(3, 1)!.end), 20);
  assert.equal(c.openConnections, 1, 'the connection stays open');
});

test('h1_close ends the request at its last write and the connection at the close', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7, uuid: 'u-3' }),
    ...http1Exchange(3, 1, 10, 7),
    h2o('h1_close', 30, { conn_id: 3 }),
  ]);
  assert.deepEqual(sink.log, ['req 3/1', 'conn 3']);
  assert.equal(at(sink.request(3, 1)!.end), 12);
  const conn = sink.connection(3)!;
  assert.equal(at(conn.end), 30);
  assert.equal(conn.protocol, 'http/1');
  assert.equal(conn.uuid, 'u-3');
  assert.equal(conn.requestCount, 1);
  assert.equal(c.openConnections, 0);
});

test('socket writes count bytes, calls and failures on the connection of their socket', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    h2o('writev', 1, { sock: 7, ret: 100 }),
    h2o('writev', 2, { sock: 7, ret: -1 }),
    h2o('write_complete', 3, { sock: 7, success: false }),
    h2o('writev', 4, { sock: 8, ret: 5 }),
    h2o('h1_close', 5, { conn_id: 3 }),
  ]);
  const conn = sink.connection(3)!;
  assert.equal(conn.bytesWritten, 100);
  assert.equal(conn.writes, 2);
  assert.equal(conn.writeFailures, 2);
  assert.equal(c.stats.ignoredEvents, 1, 'the write on an unknown socket');
});

const upgradeRequest = [
  h2o('h1_accept', 0, { conn_id: 3, sock: 7, uuid: 'u-3' }, 4),
  h2o('receive_request', 1, { conn_id: 3, req_id: 1, http_version: 257 }, 4),
  h2o('receive_request_header', 1, { conn_id: 3, req_id: 1, name: 'http2-settings', value: 'AAMAAABk' }, 4),
  h2o('h1_close', 2, { conn_id: 3 }, 4),
];

test('h2c upgrade: the 101 on HTTP/1 and the response on HTTP/2 stream 1 are one request', () => {
  const { c, sink } = correlator({ http2GraceMs: 100 });
  c.process(upgradeRequest);
  assert.deepEqual(sink.log, [], 'the HTTP/1 close waits for the HTTP/2 continuation');
  c.process([
    h2o('send_response', 5, { conn_id: 4, req_id: 1, status: 200 }, 4),
    h2o('send_response_header', 5, { conn_id: 4, req_id: 1, name: 'content-type', value: 'text/plain' }, 4),
  ]);
  c.tick(T0 + 105);
  assert.deepEqual(sink.log, ['req 4/1']);
  const req = sink.request(4, 1)!;
  assert.equal(req.upgradedToHttp2, true);
  assert.equal(req.status, 200);
  assert.equal(at(req.start), 1);
  assert.equal(at(req.end), 5);
  assert.equal(req.responseHeaders.length, 1);
  c.flush();
  const conn = sink.connection(4)!;
  assert.equal(conn.protocol, 'http/2');
  assert.equal(conn.http1ConnId, 3);
  assert.equal(conn.uuid, 'u-3');
  assert.equal(at(conn.start), 0);
  assert.equal(sink.connection(3), undefined, 'the HTTP/1 half is not a connection of its own');
});

test('h2c upgrade without HTTP/2 continuation ends as the 101 after the window', () => {
  const { c, sink } = correlator();
  c.process(upgradeRequest);
  c.tick(T0 + 1002);
  assert.deepEqual(sink.log, [], 'the window is 1000 ms after the close, exclusive');
  c.tick(T0 + 1003);
  assert.deepEqual(sink.log, ['req 3/1', 'conn 3']);
  assert.equal(at(sink.request(3, 1)!.end), 2, 'no write: the close');
  assert.equal(sink.request(3, 1)!.upgradedToHttp2, false);
});

test('h2c upgrade on a later HTTP/1 request: the joined request leaves the table once, and stream 3 stays', () => {
  const { c, sink } = correlator({ http2GraceMs: 100 });
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }, 4),
    ...http1Exchange(3, 1, 1, 7, 4),
    h2o('receive_request', 10, { conn_id: 3, req_id: 3, http_version: 257 }, 4),
    h2o(
      'receive_request_header',
      10,
      { conn_id: 3, req_id: 3, name: 'http2-settings', value: 'AAMAAABk' },
      4,
    ),
    h2o('h1_close', 11, { conn_id: 3 }, 4),
    h2o('send_response', 12, { conn_id: 4, req_id: 1, status: 200 }, 4),
    h2o('receive_request', 13, { conn_id: 4, req_id: 3, http_version: 512 }, 4),
  ]);
  c.tick(T0 + 113);
  assert.deepEqual(sink.log, ['req 3/1', 'req 4/3'], 'the upgraded request, completed after the grace');
  assert.equal(c.openRequests, 1, 'stream 3 is still open');
  c.process([h2o('send_response', 120, { conn_id: 4, req_id: 3, status: 204 }, 4)]);
  c.flush();
  const joined = sink.requests.filter((r) => r.upgradedToHttp2);
  assert.equal(joined.length, 1, 'one span for the upgraded request, not a second at flush');
  assert.equal(joined[0]!.status, 200);
  const stream3 = sink.requests.filter((r) => r.conn.connId === 4 && !r.upgradedToHttp2);
  assert.deepEqual(
    stream3.map((r) => [r.reqId, r.status, r.incomplete]),
    [[3, 204, undefined]],
  );
});

test('prior-knowledge h2c: the request-less HTTP/1 connection just accepted folds into the HTTP/2 one', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 5, sock: 9, uuid: 'u-5' }, 2),
    h2o('receive_request', 3, { conn_id: 6, req_id: 1, http_version: 512 }, 2),
    h2o('send_response', 4, { conn_id: 6, req_id: 1, status: 204 }, 2),
    h2o('writev', 5, { sock: 9, ret: 40 }, 2),
  ]);
  assert.equal(c.openConnections, 1);
  c.flush();
  assert.deepEqual(sink.log, ['req 6/1', 'conn 6']);
  const conn = sink.connection(6)!;
  assert.equal(conn.http1ConnId, 5);
  assert.equal(conn.uuid, 'u-5');
  assert.equal(at(conn.start), 0);
  assert.equal(conn.incomplete, undefined);
  assert.equal(conn.bytesWritten, 40, 'the socket is the HTTP/2 connection now');
});

test('prior knowledge is not assumed across threads, after the window, or after a request', () => {
  for (const events of [
    [
      h2o('h1_accept', 0, { conn_id: 5, sock: 9 }, 1),
      h2o('receive_request', 3, { conn_id: 6, req_id: 1, http_version: 512 }, 2),
    ],
    [
      h2o('h1_accept', 0, { conn_id: 5, sock: 9 }, 2),
      h2o('receive_request', 1001, { conn_id: 6, req_id: 1, http_version: 512 }, 2),
    ],
    [
      h2o('h1_accept', 0, { conn_id: 5, sock: 9 }, 2),
      h2o('receive_request', 1, { conn_id: 5, req_id: 1, http_version: 257 }, 2),
      h2o('receive_request', 3, { conn_id: 6, req_id: 1, http_version: 512 }, 2),
    ],
  ]) {
    const { c, sink } = correlator();
    c.process(events);
    assert.equal(c.openConnections, 2);
    c.flush();
    assert.equal(sink.connection(6)!.http1ConnId, undefined);
    assert.equal(sink.connection(5)!.protocol, 'http/1');
  }
});
