/**
 * A connection record → its span's name and attributes: protocol and peer when it starts; requests served, H2O's
 * and quicly's counters, TLS facts and socket writes when it closes.
 */
import type { Attributes } from '@opentelemetry/api';
import type { ConnectionRecord, TlsFacts } from '../correlate/records.js';
import { COMMON_KEYS } from '../events/types.js';
import type { FinishedSpan } from './finished-span.js';
import { durationMs, toHrTime } from './hr-time.js';
import { addQuicConnection } from './quic-attributes.js';
import { parseSocketAddress } from './url.js';

const CONNECTION_SPAN_NAMES = {
  'http/1': 'HTTP/1.1 connection',
  'http/2': 'HTTP/2 connection',
  'http/3': 'QUIC connection',
} as const;

export function connectionSpanName(conn: ConnectionRecord): string {
  return conn.protocol === undefined ? 'HTTP connection' : CONNECTION_SPAN_NAMES[conn.protocol];
}

/** What is known when the connection span starts (at its first request, or its close). */
export function connectionStartAttributes(conn: ConnectionRecord): Attributes {
  const a: Attributes = { 'h2o.conn_id': conn.connId, 'network.protocol.name': 'http' };
  if (conn.uuid !== undefined) a['h2o.conn_uuid'] = conn.uuid;
  if (conn.protocol === 'http/2') a['network.protocol.version'] = '2';
  if (conn.protocol === 'http/3') a['network.protocol.version'] = '3';
  a['network.transport'] = conn.protocol === 'http/3' ? 'quic' : 'tcp';
  if (conn.http1ConnId !== undefined) a['h2o.http1_conn_id'] = conn.http1ConnId;
  if (conn.remote !== undefined) addPeer(a, conn.remote);
  return a;
}

/** What the connection's close adds to its span. */
export function addConnectionClose(span: FinishedSpan, conn: ConnectionRecord): void {
  const a = span.attributes;
  a['h2o.request_count'] = conn.requestCount;
  if (conn.closeStats !== undefined) {
    // h3s_destroy: requests, stream, header and body bytes each way, control and QPACK stream bytes.
    const stats = conn.closeStats;
    for (const key in stats) {
      const v = stats[key];
      if (key !== 'conn_id' && !COMMON_KEYS.has(key) && typeof v === 'number') a[h3Attribute(key)] = v;
    }
  }
  if (conn.quic !== undefined) {
    addQuicConnection(span, a, conn.quic);
    addTls(a, conn.quic.tls);
  }
  if (conn.tls !== undefined) {
    addTls(a, conn.tls);
    if (conn.tls.done !== undefined) {
      span.events.push({ name: 'tls.handshake_complete', time: toHrTime(conn.tls.done) });
    }
  }
  if (conn.writes > 0) {
    a['h2o.socket.bytes_written'] = conn.bytesWritten;
    a['h2o.socket.writes'] = conn.writes;
  }
  if (conn.writeFailures > 0) a['h2o.socket.write_failures'] = conn.writeFailures;
  if (conn.incomplete !== undefined) a['h2o.incomplete'] = conn.incomplete;
}

/** TLS facts from picotls (QUIC connections, and TCP ones where the handshake could be tied to them). */
function addTls(a: Attributes, t: TlsFacts): void {
  if (t.start !== undefined && t.done !== undefined) a['h2o.tls.handshake_ms'] = durationMs(t.start, t.done);
  if (t.lastResult !== undefined) a['h2o.tls.handshake_result'] = t.lastResult;
  if (t.ech !== undefined) a['h2o.tls.ech'] = t.ech;
  if (t.earlyData) a['h2o.tls.early_data'] = true;
}

const h3Names = new Map<string, string>();

/**
 * `h2o.h3.<key>`, built once per key: a name built per span is a new string that V8 hashes and internalizes again
 * as a property key (with the QUIC statistics' names built once too, mapping takes 15 % less time). H2O's keys are
 * a small fixed set; the cache is bounded all the same.
 */
function h3Attribute(key: string): string {
  let name = h3Names.get(key);
  if (name === undefined) {
    name = `h2o.h3.${key}`;
    if (h3Names.size < 1024) h3Names.set(key, name);
  }
  return name;
}

/** The peer's address and port, also the client's unless a proxy header named it already. */
export function addPeer(a: Attributes, remote: string): void {
  const peer = parseSocketAddress(remote);
  if (peer === undefined) return;
  a['network.peer.address'] = peer.host;
  if (peer.port !== undefined) a['network.peer.port'] = peer.port;
  if (a['client.address'] === undefined) {
    a['client.address'] = peer.host;
    if (peer.port !== undefined) a['client.port'] = peer.port;
  }
}
