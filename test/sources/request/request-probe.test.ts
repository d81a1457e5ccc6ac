// The request probe on the real H2O 2.2.5: one uprobe at h2o_dispose_request, fed this build's field offsets from
// its own debug info, reads each finished request (HTTP/1.1 and HTTP/2 over TLS) and its headers from H2O's structs.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { btfFor } from '../../../src/sources/request/btf-cache.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { type Layout, readLayout } from '../../../src/sources/request/layout.js';
import { RequestProbe } from '../../../src/sources/request/request-probe.js';
import { type DisposedRequest } from '../../../src/sources/request/request-record.js';
import { CONFIG_FIELDS } from '../../../src/sources/request/request-config.js';
import { buildDebianH2o } from '../../../harness/debian-h2o.js';
import { startH2o, type H2oServer } from '../../../harness/h2o-server.js';
import { requestReader } from '../../../harness/request-poll.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

/** One HTTP/1.1 GET on its own connection (closed after), resolving to the status. */
function get1(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 GET over TLS, resolving to the status. */
function get2(port: number, path: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const stream = session.request({ ':path': path, ...headers });
    let status = 0;
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('error', reject);
    stream.resume();
    stream.on('end', () => {
      session.close();
      resolve(status);
    });
  });
}

describe('request probe on the Debian H2O 2.2.5', { skip: skipBpf }, () => {
  let h2o: H2oServer;
  let probe: RequestProbe;
  let layout: Layout;
  let bin: string;
  const records: DisposedRequest[] = [];
  let read: ReturnType<typeof requestReader>;
  const poll = (): number => read((r) => records.push(r));
  const seen = (): string =>
    records.map((r) => `${r.version.toString(16)} ${r.method} ${r.path} ${r.status}`).join('\n');

  before(
    async () => {
      bin = await buildDebianH2o();
      const btf = await btfFor(findDebugInfo(bin), {
        cacheDir: mkdtempSync(join(tmpdir(), 'h2o-otel-btf-')),
      });
      layout = readLayout(btf.path, CONFIG_FIELDS);
      h2o = await startH2o(bin);
      probe = RequestProbe.attach({ binary: bin, pid: h2o.pid, layout, ringBytes: 1 << 20 });
      read = requestReader(probe);
    },
    { timeout: 15 * 60_000 },
  );

  after(async () => {
    probe?.close();
    await h2o?.stop();
  });

  test('HTTP/1.1 200 and 404, HTTP/2 over TLS: one record each, read from H2O by field name', async () => {
    const began = Date.now() * 1000;
    assert.equal(await get1(h2o.httpPort, '/'), 200);
    assert.equal(await get1(h2o.httpPort, '/missing'), 404);
    assert.equal(await get2(h2o.httpsPort, '/index.html'), 200);
    const find = (version: number, path: string): DisposedRequest | undefined =>
      records.find((r) => r.version === version && r.path === path);
    await waitFor(
      () => {
        poll();
        return find(0x101, '/') && find(0x101, '/missing') && find(0x200, '/index.html') ? true : false;
      },
      'a record per request',
      10_000,
      seen,
    );
    const cases = [
      { r: find(0x101, '/')!, status: 200, authority: `127.0.0.1:${h2o.httpPort}` },
      { r: find(0x101, '/missing')!, status: 404, authority: `127.0.0.1:${h2o.httpPort}` },
      { r: find(0x200, '/index.html')!, status: 200, authority: `127.0.0.1:${h2o.httpsPort}` },
    ];
    for (const { r, status, authority } of cases) {
      const what = `${r.version.toString(16)} ${r.path}`;
      assert.equal(r.method, 'GET', what);
      assert.equal(r.methodLen, 3, what);
      assert.equal(r.pathLen, r.path.length, what);
      assert.equal(r.authority, authority, what);
      assert.equal(r.status, status, what);
      assert.equal(r.pid, h2o.pid, what);
      assert.ok(r.connId > 0n, `${what}: conn id`);
      assert.ok(r.ktimeNs > 0n, `${what}: kernel time`);
      assert.ok(r.connectedAtUs >= began - 1_000_000, `${what}: connected_at ${r.connectedAtUs}`);
      assert.ok(r.requestBeginAtUs >= r.connectedAtUs, `${what}: request begins after connect`);
      assert.ok(r.responseEndAtUs >= r.requestBeginAtUs, `${what}: response_end_at ≥ request_begin_at`);
      assert.ok(r.responseStartAtUs >= r.requestBeginAtUs, `${what}: response_start_at ≥ request_begin_at`);
    }
    for (const [version, path] of [
      [0x101, '/'],
      [0x101, '/missing'],
      [0x200, '/index.html'],
    ] as const)
      assert.equal(records.filter((r) => r.version === version && r.path === path).length, 1, `one ${path}`);
    assert.ok(cases[0]!.r.bytesSent >= BigInt(h2o.indexBody.length), 'bytes_sent counts the body');
    assert.notEqual(cases[0]!.r.connId, cases[1]!.r.connId, 'two HTTP/1 connections, two ids');
    // An HTTP/1 connection's close may also pass through h2o_dispose_request with version 0 (not a request).
    for (const r of records.filter((x) => x.version === 0)) {
      assert.equal(r.status, 0);
      assert.equal(r.methodLen, 0);
    }
  });

  test('request headers arrive with their request, names lowercase as H2O holds them', async () => {
    const sent = {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      'User-Agent': 'h2o-otel-test/1',
      'X-Allowed': 'yes',
      Authorization: 'secret',
    };
    assert.equal(await get1(h2o.httpPort, '/?h1-headers', sent), 200);
    assert.equal(await get2(h2o.httpsPort, '/index.html?h2-headers', sent), 200);
    const find = (path: string): DisposedRequest | undefined => records.find((r) => r.path === path);
    await waitFor(
      () => {
        poll();
        return find('/?h1-headers') && find('/index.html?h2-headers') ? true : false;
      },
      'both requests',
      10_000,
      seen,
    );
    for (const [path, version] of [
      ['/?h1-headers', 0x101],
      ['/index.html?h2-headers', 0x200],
    ] as const) {
      const r = find(path)!;
      assert.equal(r.version, version, path);
      const got = new Map(r.headers.map((h) => [h.name, h.value]));
      for (const [name, value] of Object.entries(sent))
        assert.equal(got.get(name.toLowerCase()), value, `${path}: ${name}`);
      assert.equal(r.headers.length, r.headerCount, `${path}: every header H2O holds`);
      for (const h of r.headers) {
        assert.equal(h.name, h.name.toLowerCase(), `${path}: ${h.name}`);
        assert.equal(h.valueLen, h.value.length, `${path}: ${h.name} length`);
      }
    }
  });

  test('with used header names, BPF sends only those request headers (H2O still counts them all)', async () => {
    const filtered = RequestProbe.attach({
      binary: bin,
      pid: h2o.pid,
      layout,
      ringBytes: 1 << 20,
      usedHeaderNames: { request: ['traceparent', 'user-agent', 'x-allowed'], response: 'all' },
    });
    const got: DisposedRequest[] = [];
    try {
      const sent = { 'User-Agent': 'ua', 'X-Allowed': 'yes', Authorization: 'secret', 'X-Other': 'no' };
      assert.equal(await get1(h2o.httpPort, '/?filtered', sent), 200);
      assert.equal(await get2(h2o.httpsPort, '/index.html?filtered', sent), 200);
      const done = (): boolean =>
        got.some((r) => r.path === '/?filtered') && got.some((r) => r.path === '/index.html?filtered');
      const readFiltered = requestReader(filtered);
      await waitFor(() => (readFiltered((r) => got.push(r)), done()), 'both requests', 10_000);
      for (const r of got.filter((x) => x.path.endsWith('filtered'))) {
        assert.deepEqual(r.headers.map((h) => h.name).sort(), ['user-agent', 'x-allowed'], r.path);
        assert.ok(r.headerCount >= 4, `${r.path}: H2O holds ${r.headerCount} headers`);
      }
    } finally {
      filtered.close();
    }
  });
});
