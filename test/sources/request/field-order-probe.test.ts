// The request probe on two builds of H2O's struct names in different field orders (test/fixtures/request): each
// build's offsets come from its own debug info by field name, and the records decode the same, value for value.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { btfFor } from '../../../src/sources/request/btf-cache.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { type Layout, readLayout } from '../../../src/sources/request/layout.js';
import { RequestProbe } from '../../../src/sources/request/request-probe.js';
import { type DisposedRequest } from '../../../src/sources/request/request-record.js';
import { CONFIG_FIELDS, OPTIONAL_CONFIG_FIELDS } from '../../../src/sources/request/request-config.js';
import {
  buildStructFixture,
  type FixtureOrder,
  startStructFixture,
} from '../../../harness/struct-fixture.js';
import { requestReader } from '../../../harness/request-poll.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

/** What struct-layouts.c's script disposes: four calls of h2o_dispose_request. */
const SCRIPT_CALLS = 4;

interface Capture {
  readonly layout: Layout;
  readonly pid: number;
  readonly records: readonly DisposedRequest[];
}

const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-field-order-'));

/** Run the fixture's script under the probe, fed the build's own layout or `wrong` (another build's). */
async function capture(order: FixtureOrder, wrong?: Layout): Promise<Capture> {
  const binary = buildStructFixture(dir, order);
  const btf = await btfFor(findDebugInfo(binary), { cacheDir: join(dir, 'cache') });
  const layout = wrong ?? readLayout(btf.path, CONFIG_FIELDS, OPTIONAL_CONFIG_FIELDS);
  const fixture = await startStructFixture(binary);
  const records: DisposedRequest[] = [];
  let probe: RequestProbe | undefined;
  try {
    probe = RequestProbe.attach({ binary, pid: fixture.pid, layout, ringBytes: 1 << 20 });
    await fixture.run();
    const read = requestReader(probe);
    await waitFor(
      () => (read((r) => records.push(r)), records.length >= SCRIPT_CALLS),
      `${SCRIPT_CALLS} records from order ${order}`,
      10_000,
      () => records.map((r) => `${r.version.toString(16)} ${r.method} ${r.path}`).join('\n'),
    );
  } finally {
    probe?.close();
    fixture.stop();
  }
  return { layout, pid: fixture.pid, records };
}

/** Seconds and microseconds as the record gives them: µs since the epoch. */
const us = (sec: number, usec: number): number => sec * 1e6 + usec;

/** The headers as the fixture set them (names lowercase, as H2O holds them), true lengths being the strings'. */
function headers(pairs: readonly (readonly [string, string])[]): unknown[] {
  return pairs.map(([name, value]) => ({ name, value, nameLen: name.length, valueLen: value.length }));
}

const PEER_H1 = '127.0.0.1:54321';
const CONNECTED_H1 = us(1700000000, 250000);

/** Every field but those that differ between runs (pid, kernel time, the h2o_req_t address) and proxy (B alone). */
const EXPECTED = [
  {
    version: 0x101,
    connId: 7n,
    connectedAtUs: CONNECTED_H1,
    requestBeginAtUs: us(1700000001, 100),
    responseStartAtUs: us(1700000001, 2000),
    responseEndAtUs: us(1700000001, 3500),
    bytesSent: 1234n,
    status: 200,
    method: 'GET',
    authority: 'example.test',
    path: '/a?x=1',
    methodLen: 3,
    authorityLen: 12,
    pathLen: 6,
    headerCount: 4,
    headers: headers([
      ['user-agent', 'fixture-agent/1.0'],
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
      ['cookie', 'session=secret'],
      ['x-custom', 'custom-value'],
    ]),
    scheme: 'http',
    peer: PEER_H1,
    http1Persistent: true,
    streamId: undefined,
  },
  {
    version: 0x200,
    connId: 8n,
    connectedAtUs: us(1700000002, 5),
    requestBeginAtUs: us(1700000002, 10),
    responseStartAtUs: us(1700000002, 60),
    responseEndAtUs: us(1700000002, 70),
    bytesSent: 9n,
    status: 404,
    method: 'POST',
    authority: 'example.test:8443',
    path: '/b',
    methodLen: 4,
    authorityLen: 17,
    pathLen: 2,
    headerCount: 2,
    headers: headers([
      ['content-type', 'text/plain'],
      ['user-agent', 'h2-client/2'],
    ]),
    scheme: 'https',
    peer: '[::1]:443',
    http1Persistent: false,
    // Read from the HTTP/2 stream struct the request is embedded in, by name in each build.
    streamId: 5,
  },
  {
    version: 0x101,
    connId: 7n,
    connectedAtUs: CONNECTED_H1,
    requestBeginAtUs: us(1700000004, 1),
    responseStartAtUs: us(1700000004, 2),
    responseEndAtUs: us(1700000004, 3),
    bytesSent: 5n,
    status: 200,
    method: 'GET',
    // Capped at 128 and 256 bytes; the lengths stay H2O's.
    authority: `long.${'a'.repeat(123)}`,
    path: `/long/${'p'.repeat(250)}`,
    methodLen: 3,
    authorityLen: 200,
    pathLen: 300,
    headerCount: 1,
    headers: [
      {
        name: `x-long-name-${'n'.repeat(52)}`,
        value: `value:${'v'.repeat(250)}`,
        nameLen: 70,
        valueLen: 300,
      },
    ],
    scheme: 'http',
    peer: PEER_H1,
    http1Persistent: false,
    streamId: undefined,
  },
  {
    // The HTTP/1 connection's close: its spare request struct, empty but for the connection.
    version: 0,
    connId: 7n,
    connectedAtUs: CONNECTED_H1,
    requestBeginAtUs: 0,
    responseStartAtUs: 0,
    responseEndAtUs: 0,
    bytesSent: 0n,
    status: 0,
    method: '',
    authority: '',
    path: '',
    methodLen: 0,
    authorityLen: 0,
    pathLen: 0,
    headerCount: 0,
    headers: [],
    scheme: '',
    peer: PEER_H1,
    http1Persistent: false,
    streamId: undefined,
  },
];

/** The record without what differs between runs and builds. */
const VARYING = new Set(['pid', 'ktimeNs', 'req', 'proxy']);
function comparable(r: DisposedRequest): Record<string, unknown> {
  return Object.fromEntries(Object.entries(r).filter(([key]) => !VARYING.has(key)));
}

describe(
  'the request probe relocates fields by name: two field orders decode the same',
  { skip: skipBpf },
  () => {
    const runs = new Map<FixtureOrder, Capture>();
    const run = (order: FixtureOrder): Capture => {
      const c = runs.get(order);
      assert.ok(c !== undefined, order);
      return c;
    };

    before(
      async () => {
        runs.set('A', await capture('A'));
        runs.set('B', await capture('B'));
      },
      { timeout: 120_000 },
    );

    test('the two builds place the fields the probe reads at different offsets', () => {
      const [a, b] = [run('A').layout, run('B').layout];
      const moved: readonly string[] = CONFIG_FIELDS.filter((path) => a[path]?.offset !== b[path]?.offset);
      for (const path of [
        'st_h2o_req_t.conn',
        'st_h2o_req_t.version',
        'st_h2o_req_t.input.path',
        'st_h2o_req_t.input.scheme',
        'st_h2o_req_t.headers.entries',
        'st_h2o_conn_t.id',
        'st_h2o_header_t.name',
        'st_h2o_url_scheme_t.name',
      ])
        assert.ok(moved.includes(path), `${path} moves`);
      assert.notEqual(a['st_h2o_header_t']?.size, b['st_h2o_header_t']?.size, 'the header stride differs');
      for (const path of [
        'st_h2o_http1_conn_t.sock',
        'st_h2o_http2_conn_t.sock',
        'st_h2o_socket_t._peername',
      ])
        assert.notEqual(a[path]?.offset, b[path]?.offset, path);
      assert.equal(
        a['st_h2o_req_t.proxy_stats.timestamps.start_at'],
        undefined,
        'A (2.2.5) has no proxy_stats',
      );
      assert.deepEqual(b['st_h2o_req_t.proxy_stats.timestamps.start_at']?.size, 16, 'B has its timevals');
      // A one-bit flag, at another byte and bit in each build.
      assert.equal(a['st_h2o_req_t.http1_is_persistent']?.size, 1);
      assert.notDeepEqual(a['st_h2o_req_t.http1_is_persistent'], b['st_h2o_req_t.http1_is_persistent']);
    });

    test('each record holds what the fixture set, in the order it was disposed', () => {
      for (const order of ['A', 'B'] as const) {
        const { records, pid } = run(order);
        assert.equal(records.length, SCRIPT_CALLS, order);
        records.forEach((r, i) => {
          assert.deepEqual(comparable(r), EXPECTED[i], `${order} record ${i}`);
          assert.equal(r.pid, pid, `${order} record ${i}: pid`);
          assert.ok(r.ktimeNs > 0n, `${order} record ${i}: kernel time`);
        });
        assert.equal(records[0]?.req, records[2]?.req, `${order}: HTTP/1 reuses its request struct`);
        assert.equal(records[0]?.req, records[3]?.req, `${order}: and disposes it once more on close`);
      }
    });

    test('both orders decode identically but for pid, kernel time, h2o_req_t address and proxy_stats', () => {
      const [a, b] = [run('A').records, run('B').records];
      assert.deepEqual(a.map(comparable), b.map(comparable));
    });

    test("one build's offsets do not read the other build's values (so the comparison above can fail)", async () => {
      const { records } = await capture('B', run('A').layout);
      assert.equal(records.length, SCRIPT_CALLS);
      records.forEach((r, i) => assert.notDeepEqual(comparable(r), EXPECTED[i], `record ${i}`));
    });

    test('proxy_stats: read by name where the build has it, absent where it does not', () => {
      assert.deepEqual(
        run('A').records.map((r) => r.proxy),
        [undefined, undefined, undefined, undefined],
      );
      const b = run('B').records;
      assert.deepEqual(b[1]?.proxy, {
        startAtUs: us(1700000002, 20),
        requestBeginAtUs: us(1700000002, 30),
        requestEndAtUs: us(1700000002, 40),
        responseStartAtUs: us(1700000002, 50),
        responseEndAtUs: us(1700000002, 55),
        bytesWritten: 321n,
        bytesRead: 654n,
      });
      for (const i of [0, 2, 3]) assert.equal(b[i]?.proxy, undefined, `B record ${i} was not proxied`);
    });
  },
);
