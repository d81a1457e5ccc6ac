// Hybrid tracing on plain records: HTTP/3 requests from the request probe join the QUIC connection records the
// events made, wait a little for them, and fall back to their own; other protocols pass straight through.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QuicConnectionJoin } from '../../src/correlate/quic-join.js';
import { newQuicRecord } from '../../src/correlate/quic.js';
import type { ConnectionRecord, RequestRecord, TransportEvent } from '../../src/correlate/records.js';
import { at, connection, probe, request } from '../../harness/records.js';

function setup() {
  const known = new Map<number, ConnectionRecord>();
  const join = new QuicConnectionJoin((id) => known.get(id), 250);
  const out: RequestRecord[] = [];
  return { known, join, out };
}

test('an HTTP/3 request joins the events record of its conn id, which counts it; its own record is then dropped', () => {
  const { known, join, out } = setup();
  const fromEvents = connection({ connId: 5, protocol: 'http/3', requestCount: 0 });
  known.set(5, fromEvents);
  const own = connection({ connId: 5, protocol: 'http/3', requestCount: 1 });
  const req = request(own, {});
  join.take([req], 1000, out);
  assert.deepEqual(out, [req]);
  assert.equal(req.conn, fromEvents);
  assert.equal(fromEvents.requestCount, 1);
  assert.equal(own.requestCount, 0);
  assert.equal(join.keeps(own), false, 'no empty second span of the connection');
  assert.equal(join.keeps(fromEvents), true);
});

test('a request whose connection the events have not shown yet waits, then joins when they do', () => {
  const { known, join, out } = setup();
  const own = connection({ connId: 6, protocol: 'http/3' });
  const req = request(own, {});
  join.take([req], 1000, out);
  assert.equal(out.length, 0);
  assert.equal(join.held, 1);
  const fromEvents = connection({ connId: 6, protocol: 'http/3', requestCount: 0 });
  known.set(6, fromEvents);
  join.release(1100, out);
  assert.deepEqual(out, [req]);
  assert.equal(req.conn, fromEvents);
  assert.equal(join.unjoined, 0);
});

test('past the hold, or when told to release all, a request keeps its own connection record, counted', () => {
  const { join, out } = setup();
  const own = connection({ connId: 7, protocol: 'http/3' });
  const a = request(own, {});
  const b = request(own, {});
  join.take([a], 1000, out);
  join.release(1249, out);
  assert.equal(out.length, 0);
  join.release(1250, out);
  assert.deepEqual(out, [a]);
  assert.equal(a.conn, own);
  join.take([b], 2000, out);
  join.release(2000, out, true);
  assert.deepEqual(out, [a, b]);
  assert.equal(join.unjoined, 2);
  assert.equal(join.keeps(own), true, 'its own record carries its requests');
});

test('HTTP/1 and HTTP/2 requests pass at once, in order', () => {
  const { join, out } = setup();
  const h1 = request(connection({ protocol: 'http/1' }), {});
  const h2 = request(connection({ protocol: 'http/2' }), {});
  join.take([h1, h2], 1000, out);
  assert.deepEqual(out, [h1, h2]);
  assert.equal(join.held, 0);
});

test("a closing connection releases only its own held requests, not another connection's", () => {
  const { join, out } = setup();
  const waiting = request(connection({ connId: 8, protocol: 'http/3' }), {});
  join.take([waiting], 1000, out);
  const closingH1 = connection({ connId: 9, protocol: 'http/1' });
  join.releaseOf([closingH1], out);
  assert.equal(join.held, 1, 'an unrelated HTTP/1 close leaves it waiting for its QUIC connection');
  join.releaseOf([waiting.conn], out);
  assert.deepEqual(out, [waiting], 'its own record closing: it goes, on that record');
  assert.equal(join.unjoined, 1);
});

test('a connection the events ended stays joinable for the hold, then goes on', () => {
  const { join, out } = setup();
  const fromEvents = connection({ connId: 10, protocol: 'http/3', requestCount: 0 });
  join.deferClose(fromEvents, 1000);
  const late = request(connection({ connId: 10, protocol: 'http/3' }), {});
  join.take([late], 1100, out);
  assert.equal(late.conn, fromEvents, 'the late request joins the closed connection');
  const closed: ConnectionRecord[] = [];
  join.releaseClosed(1249, closed);
  assert.deepEqual(closed, []);
  join.releaseClosed(1250, closed);
  assert.deepEqual(closed, [fromEvents]);
  assert.equal(fromEvents.requestCount, 1);
  assert.equal(join.closing, 0);
});

test('a joined request gets its stream events and the losses and PTOs while it was in flight, not others', () => {
  const ev = (type: string, timeMs: number): TransportEvent => probe('quicly', type, {}, timeMs);
  const fromEvents = connection({ connId: 12, protocol: 'http/3', requestCount: 0 });
  fromEvents.quic = { ...newQuicRecord() };
  fromEvents.quic.events.push(
    ev('packet_lost', 900),
    ev('packet_lost', 1005),
    ev('pto', 1015),
    ev('pto', 1100),
  );
  const streams = new Map([[4, [ev('stream_on_open', 1002)]]]);
  const join = new QuicConnectionJoin(
    (id) => (id === 12 ? fromEvents : undefined),
    250,
    (_id, stream) => streams.get(stream),
    128,
    () => 2000,
  );
  const req = request(connection({ connId: 12, protocol: 'http/3' }), {}, { start: at(1010), end: at(1030) });
  req.streamId = 4;
  const out: RequestRecord[] = [];
  join.take([req], 1000, out);
  assert.deepEqual(
    req.transportEvents.map((e) => [e.type, e.timeMs]),
    [
      ['stream_on_open', 1002],
      ['packet_lost', 1005],
      ['pto', 1015],
    ],
    'in flight from its stream opening to its end',
  );
  assert.equal(req.packetsLost, 1);
  assert.equal(req.ptos, 1);
});

test("a request waits until the events' side has passed its end, so its losses are in", () => {
  let eventsMs = 1020;
  const fromEvents = connection({ connId: 13, protocol: 'http/3', requestCount: 0 });
  const join = new QuicConnectionJoin(
    () => fromEvents,
    250,
    () => undefined,
    128,
    () => eventsMs,
  );
  const req = request(connection({ connId: 13, protocol: 'http/3' }), {}, { end: at(1030) });
  const out: RequestRecord[] = [];
  join.take([req], 1030, out);
  assert.equal(out.length, 0, 'the events have not reached its end yet');
  eventsMs = 1031;
  join.release(1031, out);
  assert.deepEqual(out, [req]);
  assert.equal(req.conn, fromEvents);
});
