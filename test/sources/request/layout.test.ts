// Two builds of the same struct names with different field orders: their layouts, read by field name from each
// build's own debug info (DWARF → BTF by pahole), locate the same values in each build's struct bytes.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { BpfError } from '../../../src/sources/bpf/errors.js';
import { btfFor } from '../../../src/sources/request/btf-cache.js';
import { parseBtf } from '../../../src/sources/request/btf.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { type Layout, LayoutError, readLayout } from '../../../src/sources/request/layout.js';
import {
  buildStructFixture,
  type FixtureOrder,
  structFixtureBytes,
} from '../../../harness/struct-fixture.js';

const FIELDS = [
  'st_h2o_req_t.version',
  'st_h2o_req_t.timestamps.request_begin_at',
  'st_h2o_req_t.timestamps.response_end_at',
  'st_h2o_req_t.res.status',
  'st_h2o_req_t.bytes_sent',
  'st_h2o_req_t.conn',
  'st_h2o_conn_t.id',
  'st_h2o_conn_t.connected_at',
];

interface Build {
  readonly btf: string;
  readonly layout: Layout;
  readonly req: Buffer;
  readonly conn: Buffer;
}

const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-layout-'));
const builds = new Map<FixtureOrder, Build>();

async function build(order: FixtureOrder): Promise<Build> {
  const binary = buildStructFixture(dir, order);
  const { path } = await btfFor(findDebugInfo(binary), { cacheDir: join(dir, 'cache') });
  return { btf: path, layout: readLayout(path, FIELDS), ...structFixtureBytes(binary, dir) };
}

function get(order: FixtureOrder): Build {
  const b = builds.get(order);
  assert.ok(b !== undefined);
  return b;
}

function field(b: Build, path: string): Buffer {
  const f = b.layout[path];
  assert.ok(f !== undefined, path);
  const bytes = path.startsWith('st_h2o_conn_t.') ? b.conn : b.req;
  assert.ok(f.offset + f.size <= bytes.length, `${path} lies inside the struct`);
  return bytes.subarray(f.offset, f.offset + f.size);
}

describe('layouts resolved by field name', () => {
  before(async () => {
    builds.set('A', await build('A'));
    builds.set('B', await build('B'));
  });

  test('the two builds place the fields at different offsets', () => {
    const [a, b] = [get('A').layout, get('B').layout];
    for (const path of ['st_h2o_req_t.version', 'st_h2o_req_t.res.status', 'st_h2o_conn_t.id']) {
      assert.notEqual(a[path]?.offset, b[path]?.offset, path);
    }
    assert.deepEqual(a['st_h2o_req_t.timestamps.response_end_at'], { offset: 176, size: 16 });
    assert.deepEqual(b['st_h2o_req_t.timestamps.response_end_at'], { offset: 0, size: 16 });
  });

  test('reading each build at its own offsets gives the same values', () => {
    for (const order of ['A', 'B'] as const) {
      const b = get(order);
      assert.equal(field(b, 'st_h2o_req_t.version').readInt32LE(0), 0x200, order);
      assert.equal(field(b, 'st_h2o_req_t.res.status').readInt32LE(0), 404, order);
      assert.equal(field(b, 'st_h2o_req_t.bytes_sent').readBigUInt64LE(0), 987654321n, order);
      const end = field(b, 'st_h2o_req_t.timestamps.response_end_at');
      assert.deepEqual([end.readBigInt64LE(0), end.readBigInt64LE(8)], [1700000002n, 999999n], order);
      const begin = field(b, 'st_h2o_req_t.timestamps.request_begin_at');
      assert.deepEqual([begin.readBigInt64LE(0), begin.readBigInt64LE(8)], [1700000001n, 100n], order);
      assert.equal(field(b, 'st_h2o_req_t.conn').length, 8, order);
      assert.equal(field(b, 'st_h2o_conn_t.id').readBigUInt64LE(0), 42n, order);
      const at = field(b, 'st_h2o_conn_t.connected_at');
      assert.deepEqual([at.readBigInt64LE(0), at.readBigInt64LE(8)], [1700000000n, 250000n], order);
    }
  });

  test('a field only one build has: resolved there, a named error (with what exists) in the other', () => {
    assert.deepEqual(readLayout(get('B').btf, ['st_h2o_req_t.only_in_b']), {
      'st_h2o_req_t.only_in_b': { offset: 336, size: 8 },
    });
    assert.throws(
      () => readLayout(get('A').btf, ['st_h2o_req_t.version', 'st_h2o_req_t.only_in_b']),
      (err: unknown) =>
        err instanceof LayoutError &&
        err.message.includes('field st_h2o_req_t.only_in_b') &&
        err.message.includes(
          'st_h2o_req_t has: conn, input, authority, method, version, headers, timestamps, res, flags',
        ) &&
        err.message.includes('bytes_sent') &&
        err.missing.join() === 'st_h2o_req_t.only_in_b',
    );
    assert.throws(
      () => readLayout(get('A').btf, ['st_h2o_req_t.res.code']),
      /field st_h2o_req_t\.res\.code \(st_h2o_req_t\.res has: status, reason\)/,
    );
  });

  test('an optional field the build lacks is left out', () => {
    const layout = readLayout(get('A').btf, ['st_h2o_req_t.version'], ['st_h2o_req_t.only_in_b']);
    assert.deepEqual(Object.keys(layout), ['st_h2o_req_t.version']);
  });

  test('an unknown struct, a bitfield and a step through a pointer are named errors', () => {
    const { btf } = get('A');
    assert.throws(() => readLayout(btf, ['st_h2o_nope_t.x']), /lacks struct st_h2o_nope_t/);
    assert.throws(() => readLayout(btf, ['st_h2o_req_t.flags']), /st_h2o_req_t\.flags is a bitfield/);
    assert.throws(() => readLayout(btf, ['st_h2o_req_t.conn.id']), /st_h2o_req_t\.conn is a pointer/);
  });

  test('a->b names a field of the struct a points to, whatever that struct is called in this build', () => {
    for (const order of ['A', 'B'] as const) {
      const { btf, layout } = get(order);
      const through = readLayout(btf, [
        'st_h2o_req_t.conn->id',
        'st_h2o_socket_t._peername->addr',
        'st_h2o_socket_peername_t.addr',
      ]);
      assert.deepEqual(through['st_h2o_req_t.conn->id'], layout['st_h2o_conn_t.id'], order);
      assert.deepEqual(
        through['st_h2o_socket_t._peername->addr'],
        through['st_h2o_socket_peername_t.addr'],
        order,
      );
    }
    assert.throws(
      () => readLayout(get('A').btf, ['st_h2o_req_t.version->x']),
      /not a struct or union|names nothing/,
    );
  });

  test('a typedef name stands for its struct', () => {
    const { btf, layout } = get('B');
    assert.deepEqual(
      readLayout(btf, ['h2o_req_t.version'])['h2o_req_t.version'],
      layout['st_h2o_req_t.version'],
    );
  });

  test('a file that is not BTF is refused', () => {
    assert.throws(
      () => parseBtf(Buffer.alloc(32), 'x.btf'),
      (err: unknown) => err instanceof BpfError && /x\.btf: not a BTF file/.test(err.message),
    );
  });

  test('a type section cut anywhere is a BpfError or fewer types, never a crash or garbage', () => {
    const whole = readFileSync(get('A').btf);
    const typeLen = whole.readUInt32LE(12);
    let refused = 0;
    for (let cut = 1; cut < 400; cut += 3) {
      // The header says the type section ends `cut` bytes early; the strings after it are still there.
      const bytes = Buffer.from(whole);
      bytes.writeUInt32LE(typeLen - cut, 12);
      try {
        const btf = parseBtf(bytes, 'cut.btf');
        assert.ok(btf.types.length > 1, `cut ${cut}: parsed at a type boundary`);
      } catch (err) {
        assert.ok(
          err instanceof BpfError && /cut\.btf: truncated/.test(err.message),
          `cut ${cut}: ${String(err)}`,
        );
        refused++;
      }
    }
    assert.ok(refused > 100, `most cuts fall inside a type (${refused})`);
  });
});

// The running kernel's BTF is large and has every kind (decl and type tags, 64-bit enums): the reader must walk it
// and agree with pahole, as it will on an H2O built by a newer toolchain.
const VMLINUX = '/sys/kernel/btf/vmlinux';
test('the kernel BTF parses and agrees with pahole', { skip: !existsSync(VMLINUX) }, () => {
  const pahole = execFileSync('pahole', ['-C', 'task_struct', VMLINUX], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const m = /\spid_t\s+tgid;\s+\/\*\s+(\d+)\s+(\d+)\s+\*\//.exec(pahole.toString());
  assert.ok(m !== null);
  assert.deepEqual(readLayout(VMLINUX, ['task_struct.tgid']), {
    'task_struct.tgid': { offset: Number(m[1]), size: Number(m[2]) },
  });
});
