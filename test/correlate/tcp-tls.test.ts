// TLS over TCP: handshakes (no conn id) tied to the next connection of their worker thread, when unambiguous.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProbeEvent } from '../../src/events/types.js';
import { at, correlator, h2o, probe } from '../../harness/probe-events.js';

const tlsNew = (ptr: number, t: number, tid: number): ProbeEvent =>
  probe('picotls', 'new', t, { tls: ptr, is_server: true }, tid);
const finished = (ptr: number, t: number, tid: number): ProbeEvent =>
  probe('picotls', 'receive_message', t, { tls: ptr, message: 20, result: 0 }, tid);

test('one handshake per thread: each binds to the connection accepted next on its thread', () => {
  const { c, sink } = correlator();
  c.process([
    tlsNew(0xa, 0, 1),
    tlsNew(0xb, 1, 2),
    h2o('h1_accept', 2, { conn_id: 10, sock: 1 }, 2),
    h2o('h1_accept', 3, { conn_id: 11, sock: 2 }, 1),
    finished(0xa, 4, 1),
    finished(0xb, 5, 2),
    h2o('h1_close', 6, { conn_id: 10 }, 2),
    h2o('h1_close', 7, { conn_id: 11 }, 1),
  ]);
  const c10 = sink.connection(10)!;
  const c11 = sink.connection(11)!;
  assert.equal(at(c10.tls?.done), 5, 'thread 2 handshake, finished after the bind');
  assert.equal(at(c11.tls?.done), 4);
  assert.equal(at(c10.start), 1, 'the connection starts with its handshake');
  assert.equal(at(c11.start), 0);
});

test('two unclaimed handshakes on the thread: ambiguous, left out', () => {
  const { c, sink } = correlator();
  c.process([
    tlsNew(0xa, 0, 1),
    tlsNew(0xb, 1, 1),
    h2o('h1_accept', 2, { conn_id: 10, sock: 1 }, 1),
    h2o('h1_close', 3, { conn_id: 10 }, 1),
  ]);
  assert.equal(sink.connection(10)!.tls, undefined);
  assert.equal(at(sink.connection(10)!.start), 2);
});

test('a claimed or freed handshake is not claimed again; client handshakes are not tracked', () => {
  const { c, sink } = correlator();
  c.process([
    tlsNew(0xa, 0, 1),
    h2o('h1_accept', 1, { conn_id: 10, sock: 1 }, 1),
    tlsNew(0xb, 2, 1),
    probe('picotls', 'free', 3, { tls: 0xb }, 1),
    probe('picotls', 'new', 4, { tls: 0xc, is_server: false }, 1),
    h2o('h1_accept', 5, { conn_id: 11, sock: 2 }, 1),
    probe('picotls', 'receive_message', 6, { tls: 0xc, message: 20, result: 0 }, 1),
  ]);
  c.flush();
  assert.equal(at(sink.connection(10)!.tls?.start), 0);
  assert.equal(sink.connection(11)!.tls, undefined);
  assert.equal(c.stats.ignoredEvents, 1, 'the event of the untracked client handshake');
});

test('HTTP/2 over TLS: the first request claims the thread’s one finished handshake', () => {
  const { c, sink } = correlator();
  c.process([
    tlsNew(0xa, 0, 3),
    tlsNew(0xb, 1, 3),
    finished(0xa, 2, 3),
    h2o('receive_request', 3, { conn_id: 20, req_id: 1, http_version: 512 }, 3),
  ]);
  c.flush();
  assert.equal(at(sink.connection(20)!.tls?.start), 0, 'the unfinished one does not count');
  assert.equal(at(sink.connection(20)!.start), 0);
});
