// The correlator as a whole: attaching mid-flight, counting what it cannot place, CONNECT tunnels, the end of
// the source, and the real captures.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fixture } from '../../harness/cli.js';
import { JsonLineDecoder } from '../../src/events/decode-json.js';
import { newDecodeStats } from '../../src/events/types.js';
import type { ProbeEvent } from '../../src/events/types.js';
import { at, correlator, h2o, http1Exchange, probe } from '../../harness/probe-events.js';

test('events of a connection attached in flight create it and its request, flagged', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('receive_request_header', 0, { conn_id: 3, req_id: 2, name: ':path', value: '/x' }),
    h2o('send_response', 1, { conn_id: 3, req_id: 2, status: 200 }),
  ]);
  c.flush();
  const req = sink.request(3, 2)!;
  assert.equal(req.incomplete, 'attached_mid_flight');
  assert.equal(req.requestHeaders[0]?.value, '/x');
  assert.equal(sink.connection(3)!.incomplete, 'attached_mid_flight');
  assert.equal(c.stats.midFlightRequests, 1);
});

test('a response without request event on a known connection is flagged as such', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    h2o('send_response', 1, { conn_id: 3, req_id: 1, status: 400 }),
    h2o('h1_close', 2, { conn_id: 3 }),
  ]);
  assert.equal(sink.request(3, 1)!.incomplete, 'no_request_event');
  assert.equal(sink.request(3, 1)!.status, 400);
  assert.equal(c.stats.midFlightRequests, 0);
});

test('events naming no open connection or request are counted as orphans or ignored', () => {
  const { c } = correlator();
  c.process([
    h2o('h1_close', 0, { conn_id: 99 }),
    h2o('h3s_destroy', 0, { conn_id: 99 }),
    h2o('h1_accept', 0, {}),
    h2o('receive_request', 0, { conn_id: 3 }),
    h2o('h3s_accept', 0, { conn_id: 4 }),
    h2o('h3s_stream_stats', 0, { conn_id: 4, stream_id: 8 }),
    h2o('connect_tcp_start', 0, { conn_id: 4, req_id: 1 }),
    probe('quicly', 'packet_sent', 0, { conn_id: 77 }),
    probe('picotls', 'receive_message', 0, { conn_id: 77 }),
    h2o('some_point', 0, { conn_id: 77 }),
    probe('other', 'x', 0, {}),
  ]);
  assert.equal(c.stats.orphanEvents, 6);
  assert.equal(c.stats.ignoredEvents, 4);
  assert.equal(c.openConnections, 1);
});

test('hidden and surplus headers are counted, not kept', () => {
  const { c, sink } = correlator({ maxHeaders: 1 });
  c.process([
    h2o('receive_request', 0, { conn_id: 3, req_id: 1, http_version: 257 }),
    h2o('receive_request_header', 0, { conn_id: 3, req_id: 1, name: ':path', value: '/' }),
    h2o('receive_request_header', 0, { conn_id: 3, req_id: 1, name: ':method', value: 'GET' }),
    h2o('receive_request_header', 0, { conn_id: 3, req_id: 1 }),
  ]);
  c.flush();
  const req = sink.request(3, 1)!;
  assert.equal(req.requestHeaders.length, 1);
  assert.equal(req.droppedHeaders, 1);
  assert.equal(req.hiddenHeaders, 1);
  assert.equal(c.stats.hiddenHeaderEvents, 1);
});

test('a CONNECT tunnel keeps its HTTP/1 connection open past h1_close until it is disposed', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    h2o('receive_request', 1, { conn_id: 3, req_id: 1, http_version: 257 }),
    h2o('connect_tcp_start', 2, { conn_id: 3, req_id: 1, dest: '10.0.0.1:443' }),
    h2o('send_response', 3, { conn_id: 3, req_id: 1, status: 200 }),
    h2o('connect_tcp_write', 4, { conn_id: 3, req_id: 1, num_bytes: 10 }),
    h2o('h1_close', 5, { conn_id: 3 }),
  ]);
  assert.deepEqual(sink.log, []);
  c.process([
    h2o('connect_tcp_read', 6, { conn_id: 3, req_id: 1, num_bytes: 20 }),
    h2o('connect_dispose', 7, { conn_id: 3, req_id: 1 }),
  ]);
  assert.deepEqual(sink.log, ['req 3/1', 'conn 3']);
  const tunnel = sink.request(3, 1)!.tunnel!;
  assert.equal(tunnel.bytesSent, 10);
  assert.equal(tunnel.bytesReceived, 20);
  assert.equal(tunnel.attempts[0]?.connected, true);
  assert.equal(at(sink.request(3, 1)!.end), 7);
  assert.equal(at(sink.connection(3)!.end), 5);
});

test('the end of the source completes what is open: HTTP/2 normally, HTTP/1 flagged', () => {
  const { c, sink } = correlator();
  c.process([
    h2o('h1_accept', 0, { conn_id: 3, sock: 7 }),
    ...http1Exchange(3, 1, 1, 7),
    h2o('receive_request', 5, { conn_id: 8, req_id: 1, http_version: 512 }),
    h2o('send_response', 6, { conn_id: 8, req_id: 1, status: 200 }),
    h2o('send_response_header', 6, { conn_id: 8, req_id: 1, name: 'server', value: 'h2o' }),
  ]);
  c.flush();
  assert.deepEqual(sink.log, ['req 3/1', 'conn 3', 'req 8/1', 'conn 8']);
  assert.equal(sink.connection(3)!.incomplete, 'source_ended');
  assert.equal(sink.request(3, 1)!.incomplete, undefined, 'answered: it ends at its last write');
  assert.equal(sink.connection(8)!.incomplete, undefined);
  assert.equal(at(sink.connection(8)!.end), 6);
  assert.equal(c.openConnections, 0);
});

async function decode(name: string): Promise<ProbeEvent[]> {
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20 }, newDecodeStats());
  const events: ProbeEvent[] = [];
  d.push(await readFile(fixture(name)), events);
  d.end(events);
  return events;
}

test('real captures: every request and connection comes out once, complete', async () => {
  for (const [name, requests, protocol] of [
    ['http1.jsonl', 1, 'http/1'],
    ['http2.jsonl', 1, 'http/2'],
    ['http3.jsonl', 1, 'http/3'],
    ['h2c.jsonl', 1, 'http/2'],
  ] as const) {
    const { c, sink } = correlator();
    c.process(await decode(name));
    c.flush();
    assert.equal(sink.requests.length, requests, name);
    assert.equal(sink.connections.length, 1, name);
    assert.equal(sink.connections[0]!.protocol, protocol, name);
    assert.equal(sink.requests[0]!.status, 200, name);
    assert.equal(sink.requests[0]!.incomplete, undefined, name);
    assert.equal(c.stats.orphanEvents, 0, name);
  }
});
