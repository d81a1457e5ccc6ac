// The real H2O 2.2.5 the test set-up builds from Debian's source package: every field the request probe reads
// resolves by name from the binary's own debug info, at the offset pahole itself prints for it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { btfFor } from '../../../src/sources/request/btf-cache.js';
import { findDebugInfo } from '../../../src/sources/request/debug-info.js';
import { readLayout } from '../../../src/sources/request/layout.js';
import { CONFIG_FIELDS } from '../../../src/sources/request/request-config.js';
import type { Layout } from '../../../src/sources/request/layout.js';
import { buildDebianH2o } from '../../../harness/debian-h2o.js';

/** Top-level fields of st_h2o_req_t the request probe reads (reference/request-probe.md), in both versions. */
const REQ_FIELDS = [
  'conn',
  'input',
  'scheme',
  'authority',
  'method',
  'path',
  'version',
  'headers',
  'timestamps',
  'res',
  'bytes_sent',
];

let layout: Layout;
let bin: string;

before(
  async () => {
    bin = await buildDebianH2o();
    const btf = await btfFor(findDebugInfo(bin), { cacheDir: mkdtempSync(join(tmpdir(), 'h2o-otel-btf-')) });
    // Every field the probe's configuration names, and the top-level ones compared with pahole below.
    layout = readLayout(btf.path, [
      ...REQ_FIELDS.map((f) => `st_h2o_req_t.${f}`),
      ...CONFIG_FIELDS,
      'st_h2o_req_t.timestamps.response_end_at',
      'st_h2o_req_t.res.status',
    ]);
  },
  { timeout: 15 * 60_000 },
);

/** `NAME ...; /* OFFSET SIZE *\/` lines of pahole's C-like printout of one struct, top-level members only. */
function paholeOffsets(struct: string): Map<string, number> {
  const text = execFileSync('pahole', ['-C', struct, bin]).toString();
  const offsets = new Map<string, number>();
  for (const line of text.split('\n')) {
    // Top-level members are indented by exactly one tab.
    const m = /^\t(?:[^\t{}]*?[\s*])?(\w+)(?:\[\d+\])?;\s+\/\*\s+(\d+)\s+\d+\s+\*\//.exec(line);
    const closing = /^\t\} (\w+);\s+\/\*\s+(\d+)\s+\d+\s+\*\//.exec(line);
    const hit = m ?? closing;
    if (hit !== null) offsets.set(hit[1]!, Number(hit[2]));
  }
  return offsets;
}

test('every st_h2o_req_t field the probe reads resolves at the offset pahole prints', () => {
  const pahole = paholeOffsets('st_h2o_req_t');
  for (const f of REQ_FIELDS) {
    assert.ok(pahole.has(f), `pahole lists ${f}`);
    assert.equal(layout[`st_h2o_req_t.${f}`]?.offset, pahole.get(f), `st_h2o_req_t.${f}`);
  }
  assert.equal(layout['st_h2o_req_t.version']?.size, 4);
  assert.equal(
    layout['st_h2o_req_t.res.status']?.offset,
    pahole.get('res'),
    'status is the first field of res',
  );
  const ts = layout['st_h2o_req_t.timestamps'];
  const end = layout['st_h2o_req_t.timestamps.response_end_at'];
  assert.ok(
    ts !== undefined && end !== undefined && end.offset > ts.offset && end.size === 16,
    'a timeval inside',
  );
});

test('st_h2o_conn_t: id and connected_at at the offsets pahole prints', () => {
  const pahole = paholeOffsets('st_h2o_conn_t');
  assert.equal(layout['st_h2o_conn_t.id']?.offset, pahole.get('id'));
  assert.equal(layout['st_h2o_conn_t.connected_at']?.offset, pahole.get('connected_at'));
});

test('request headers: the vector in st_h2o_req_t, and st_h2o_header_t fields and size as pahole prints', () => {
  const headers = layout['st_h2o_req_t.headers']!;
  assert.equal(layout['st_h2o_req_t.headers.entries']?.offset, headers.offset, 'entries first');
  assert.equal(layout['st_h2o_req_t.headers.size']?.offset, headers.offset + 8, 'size after the pointer');
  const pahole = paholeOffsets('st_h2o_header_t');
  assert.equal(layout['st_h2o_header_t.name']?.offset, pahole.get('name'));
  assert.equal(layout['st_h2o_header_t.value']?.offset, pahole.get('value'));
  const size = /\/\* size: (\d+),/.exec(execFileSync('pahole', ['-C', 'st_h2o_header_t', bin]).toString());
  assert.equal(layout['st_h2o_header_t']?.size, Number(size?.[1]), 'the struct named alone gives its size');
});
