// Request records built by hand → the request span's attributes (HTTP server semantic conventions).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { headerPolicy } from '../../src/otel/header-policy.js';
import type { HeaderPolicyOptions } from '../../src/otel/header-policy.js';
import { requestAttributes } from '../../src/otel/request-attributes.js';
import { SensitiveQueryParams } from '../../src/otel/url.js';
import type { RequestRecord } from '../../src/correlate/records.js';
import { NO_CAPTURE, connection, request } from '../../harness/records.js';

function attributesOf(req: RequestRecord, headers: HeaderPolicyOptions = NO_CAPTURE) {
  return requestAttributes(req, {
    headers: headerPolicy(headers),
    sensitiveQueryParams: new SensitiveQueryParams(['token']),
  }).toAttributes();
}

test('HTTP/1.1: method, path, query with secrets redacted, scheme, server with its default port, status', () => {
  const conn = connection({ protocol: 'http/1', connId: 3 });
  const req = request(
    conn,
    {
      ':method': 'GET',
      ':path': '/search?q=h2o&token=s3cret#top',
      ':scheme': 'https',
      ':authority': 'example.com',
      'user-agent': 'curl/8.5.0',
    },
    { reqId: 2, httpVersion: 257, status: 200 },
  );
  assert.deepEqual(attributesOf(req), {
    'user_agent.original': 'curl/8.5.0',
    'http.request.method': 'GET',
    'url.path': '/search',
    'url.query': 'q=h2o&token=REDACTED',
    'url.scheme': 'https',
    'server.address': 'example.com',
    'server.port': 443,
    'http.response.status_code': 200,
    'network.protocol.name': 'http',
    'network.protocol.version': '1.1',
    'network.transport': 'tcp',
    'h2o.conn_id': 3,
    'h2o.req_id': 2,
  });
});

test('a method outside RFC 9110 is _OTHER, with the original kept; HTTP/1.0 is version 1.0', () => {
  const a = attributesOf(
    request(connection(), { ':method': 'PROPFIND', ':path': '/' }, { httpVersion: 256 }),
  );
  assert.equal(a['http.request.method'], '_OTHER');
  assert.equal(a['http.request.method_original'], 'PROPFIND');
  assert.equal(a['network.protocol.version'], '1.0');
  assert.equal(a['url.query'], undefined);
});

test('HTTP/2: version from the connection, explicit port, client address from X-Forwarded-For', () => {
  const req = request(
    connection({ protocol: 'http/2' }),
    {
      ':method': 'POST',
      ':path': '/api',
      ':scheme': 'http',
      ':authority': '[2001:db8::1]:8080',
      'x-forwarded-for': ' 203.0.113.9 , 10.0.0.1',
      forwarded: 'for=198.51.100.1',
    },
    { status: 201 },
  );
  const a = attributesOf(req);
  assert.equal(a['network.protocol.version'], '2');
  assert.equal(a['server.address'], '2001:db8::1');
  assert.equal(a['server.port'], 8080);
  assert.equal(a['client.address'], '203.0.113.9');
  assert.equal(a['client.port'], undefined);
  assert.equal(a['network.transport'], 'tcp');
});

test('h2c: a request upgraded to HTTP/2 says so and is version 2', () => {
  const a = attributesOf(
    request(connection(), { ':method': 'GET' }, { httpVersion: 257, upgradedToHttp2: true }),
  );
  assert.equal(a['network.protocol.version'], '2');
  assert.equal(a['h2o.upgrade'], 'h2c');
});

test('HTTP/3: QUIC transport, peer and client from the QUIC path, body sizes from the stream statistics', () => {
  const conn = connection({ protocol: 'http/3', remote: '[::1]:50123' });
  const req = request(
    conn,
    { ':method': 'PUT', ':path': '/upload', ':scheme': 'https', ':authority': 'h3.example:4433' },
    {
      httpVersion: 768,
      streamStats: { request_body_bytes: 5000, response_body_bytes: 12 },
      responseHeaders: [{ name: 'content-length', value: '99' }],
    },
  );
  const a = attributesOf(req);
  assert.equal(a['network.transport'], 'quic');
  assert.equal(a['network.protocol.version'], '3');
  assert.equal(a['network.peer.address'], '::1');
  assert.equal(a['network.peer.port'], 50123);
  assert.equal(a['client.address'], '::1');
  assert.equal(a['client.port'], 50123);
  assert.equal(a['server.port'], 4433);
  assert.equal(a['http.request.body.size'], 5000);
  // The stream's own count wins over the header.
  assert.equal(a['http.response.body.size'], 12);
});

test('a Forwarded header names the client over the QUIC path (quotes, brackets and port removed)', () => {
  const conn = connection({ protocol: 'http/3', remote: '192.0.2.7:443' });
  const v6 = attributesOf(request(conn, { forwarded: 'for="[2001:db8:cafe::17]:4711";proto=https' }));
  assert.equal(v6['client.address'], '2001:db8:cafe::17');
  assert.equal(v6['client.port'], undefined);
  assert.equal(v6['network.peer.address'], '192.0.2.7');
  const v4 = attributesOf(request(conn, { forwarded: 'proto=http; For=192.0.2.60:8080' }));
  assert.equal(v4['client.address'], '192.0.2.60');
});

test('the response body size comes from content-length when nothing better is known', () => {
  const req = request(connection(), {}, { responseHeaders: [{ name: 'content-length', value: '41' }] });
  assert.equal(attributesOf(req)['http.response.body.size'], 41);
  const bad = request(connection(), {}, { responseHeaders: [{ name: 'content-length', value: 'x' }] });
  assert.equal(attributesOf(bad)['http.response.body.size'], undefined);
});

test('captured headers: lists per name, sensitive values redacted, long ones cut and listed as truncated', () => {
  const req = request(
    connection(),
    {
      ':method': 'GET',
      'x-request-id': ['a', 'b'],
      authorization: 'Bearer abc',
      'x-long': 'y'.repeat(20),
      'x-ignored': 'z',
    },
    {
      responseHeaders: [
        { name: 'content-type', value: 'text/css' },
        { name: 'set-cookie', value: 'sid=1' },
        { name: 'x-cut', value: 'partial', truncated: true },
      ],
      hiddenHeaders: 2,
      droppedHeaders: 1,
      incomplete: 'attached_mid_flight',
    },
  );
  const a = attributesOf(req, {
    request: ['x-request-id', 'authorization', 'x-long'],
    response: ['content-type', 'set-cookie', 'x-cut'],
    sanitize: [],
    maxValueLength: 8,
  });
  assert.deepEqual(a['http.request.header.x-request-id'], ['a', 'b']);
  assert.deepEqual(a['http.request.header.authorization'], ['REDACTED']);
  assert.deepEqual(a['http.request.header.x-long'], ['yyyyyyyy']);
  assert.equal(a['http.request.header.x-ignored'], undefined);
  assert.deepEqual(a['http.response.header.content-type'], ['text/css']);
  assert.deepEqual(a['http.response.header.set-cookie'], ['REDACTED']);
  assert.deepEqual(a['http.response.header.x-cut'], ['partial']);
  assert.deepEqual(a['h2o.truncated_headers'], ['x-long', 'x-cut']);
  assert.equal(a['h2o.hidden_headers'], 2);
  assert.equal(a['h2o.dropped_headers'], 1);
  assert.equal(a['h2o.incomplete'], 'attached_mid_flight');
});

test('"*" captures every header but the pseudo-headers', () => {
  const req = request(connection(), { ':method': 'GET', ':path': '/', accept: '*/*' });
  const a = attributesOf(req, { request: ['*'], response: [], sanitize: [], maxValueLength: 64 });
  assert.deepEqual(a['http.request.header.accept'], ['*/*']);
  assert.equal(a['http.request.header.:method'], undefined);
});
