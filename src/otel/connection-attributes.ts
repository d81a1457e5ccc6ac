/**
 * A connection record → its span's name and attributes: protocol and peer when it starts; requests served, H2O's
 * and quicly's counters, TLS facts and socket writes when it closes.
 */
import { K } from './attribute-keys.js';
import { AttributeList, attrKey } from './attribute-list.js';
import type { AttrKey } from './attribute-list.js';
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
export function connectionStartAttributes(conn: ConnectionRecord): AttributeList {
  const a = new AttributeList();
  a.push(K.connId, conn.connId);
  a.push(K.networkProtocolName, 'http');
  if (conn.uuid !== undefined) a.push(K.connUuid, conn.uuid);
  if (conn.protocol === 'http/2') a.push(K.networkProtocolVersion, '2');
  if (conn.protocol === 'http/3') a.push(K.networkProtocolVersion, '3');
  a.push(K.networkTransport, conn.protocol === 'http/3' ? 'quic' : 'tcp');
  if (conn.http1ConnId !== undefined) a.push(K.http1ConnId, conn.http1ConnId);
  if (conn.remote !== undefined) addPeer(a, conn.remote);
  return a;
}

/** What the connection's close adds to its span: with `set`, a span's attributes may be written again. */
export function addConnectionClose(span: FinishedSpan, conn: ConnectionRecord): void {
  const a = span.attributeList;
  a.set(K.requestCount, conn.requestCount);
  if (conn.closeStats !== undefined) {
    // h3s_destroy: requests, stream, header and body bytes each way, control and QPACK stream bytes.
    const stats = conn.closeStats;
    for (const key in stats) {
      const v = stats[key];
      if (key !== 'conn_id' && !COMMON_KEYS.has(key) && typeof v === 'number') a.set(h3Attribute(key), v);
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
    a.set(K.socketBytesWritten, conn.bytesWritten);
    a.set(K.socketWrites, conn.writes);
  }
  if (conn.writeFailures > 0) a.set(K.socketWriteFailures, conn.writeFailures);
  if (conn.incomplete !== undefined) a.set(K.incomplete, conn.incomplete);
}

/** TLS facts from picotls (QUIC connections, and TCP ones where the handshake could be tied to them). */
function addTls(a: AttributeList, t: TlsFacts): void {
  if (t.start !== undefined && t.done !== undefined) a.set(K.tlsHandshakeMs, durationMs(t.start, t.done));
  if (t.lastResult !== undefined) a.set(K.tlsHandshakeResult, t.lastResult);
  if (t.ech !== undefined) a.set(K.tlsEch, t.ech);
  if (t.earlyData) a.set(K.tlsEarlyData, true);
}

const h3Names = new Map<string, AttrKey>();

/**
 * `h2o.h3.<key>`, built once per key: a name built per span is a new string that V8 hashes and internalizes again
 * as a property key (with the QUIC statistics' names built once too, mapping takes 15 % less time). H2O's keys are
 * a small fixed set; the cache is bounded all the same.
 */
function h3Attribute(key: string): AttrKey {
  let name = h3Names.get(key);
  if (name === undefined) {
    name = attrKey(`h2o.h3.${key}`);
    if (h3Names.size < 1024) h3Names.set(key, name);
  }
  return name;
}

/** The peer's address and port, also the client's unless a proxy header named it already. */
export function addPeer(a: AttributeList, remote: string): void {
  const peer = parseSocketAddress(remote);
  if (peer === undefined) return;
  a.push(K.networkPeerAddress, peer.host);
  if (peer.port !== undefined) a.push(K.networkPeerPort, peer.port);
  if (a.get(K.clientAddress) === undefined) {
    a.push(K.clientAddress, peer.host);
    if (peer.port !== undefined) a.push(K.clientPort, peer.port);
  }
}
