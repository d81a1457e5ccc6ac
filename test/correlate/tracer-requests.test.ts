// Tracers' own requests (h2o-otel's probe, h2olog handshakes) are dropped with the connections that carried only them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectionRecord, RecordSink, RequestRecord } from '../../src/correlate/records.js';
import { TracerRequestFilter, isTracerRequest } from '../../src/correlate/tracer-requests.js';
import { H2OLOG_PATH, PROBE_PATH } from '../../src/events/catalogue.js';
import { connection, request } from '../../harness/records.js';

function filtered(): {
  filter: TracerRequestFilter;
  requests: RequestRecord[];
  connections: ConnectionRecord[];
} {
  const requests: RequestRecord[] = [];
  const connections: ConnectionRecord[] = [];
  const next: RecordSink = {
    requestCompleted: (r) => requests.push(r),
    connectionClosed: (c) => connections.push(c),
  };
  return { filter: new TracerRequestFilter(next), requests, connections };
}

const noResponse = { status: undefined, responseStart: undefined };

test('which requests are tracers’', () => {
  const conn = connection();
  assert.equal(isTracerRequest(request(conn, { ':path': PROBE_PATH })), true);
  assert.equal(isTracerRequest(request(conn, { ':path': PROBE_PATH }, noResponse)), true);
  assert.equal(isTracerRequest(request(conn, { ':path': H2OLOG_PATH }, noResponse)), true);
  assert.equal(isTracerRequest(request(conn, { ':path': `${H2OLOG_PATH}?appdata=1` }, noResponse)), true);
  // Answered (H2O without h2olog there: a 404): traffic.
  assert.equal(isTracerRequest(request(conn, { ':path': H2OLOG_PATH }, { status: 404 })), false);
  assert.equal(isTracerRequest(request(conn, { ':path': `${H2OLOG_PATH}x` }, noResponse)), false);
  assert.equal(isTracerRequest(request(conn, { ':path': `${H2OLOG_PATH}/x` }, noResponse)), false);
  assert.equal(isTracerRequest(request(conn, { ':path': '/' }, noResponse)), false);
  assert.equal(isTracerRequest(request(conn, {}, noResponse)), false);
});

test('a tracer’s request and its connection are dropped and counted; traffic passes', () => {
  const { filter, requests, connections } = filtered();
  const probeConn = connection({ connId: 1 });
  const trafficConn = connection({ connId: 2 });
  const traffic = request(trafficConn, { ':path': '/' });
  filter.requestCompleted(request(probeConn, { ':path': PROBE_PATH }));
  filter.requestCompleted(traffic);
  filter.connectionClosed(probeConn);
  filter.connectionClosed(trafficConn);
  filter.connectionClosed(connection({ connId: 3, requestCount: 0 }));
  assert.deepEqual(requests, [traffic]);
  assert.deepEqual(
    connections.map((c) => c.connId),
    [2, 3],
  );
  assert.equal(filter.stats.tracerRequests, 1);
});

test('a connection that carried traffic too is kept, whichever came first', () => {
  const { filter, requests, connections } = filtered();
  // Each carried two requests, as the correlator counts them.
  const before = connection({ connId: 1, requestCount: 2 });
  const after = connection({ connId: 2, requestCount: 2 });
  filter.requestCompleted(request(before, { ':path': '/a' }));
  filter.requestCompleted(request(before, { ':path': H2OLOG_PATH }, noResponse));
  filter.requestCompleted(request(after, { ':path': H2OLOG_PATH }, noResponse));
  filter.requestCompleted(request(after, { ':path': '/b' }));
  filter.connectionClosed(before);
  filter.connectionClosed(after);
  assert.equal(requests.length, 2);
  assert.deepEqual(
    connections.map((c) => c.connId),
    [1, 2],
  );
  assert.equal(filter.stats.tracerRequests, 2);
});
