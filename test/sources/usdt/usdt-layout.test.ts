// The record, configuration and counter layouts are defined once in native/h2o_usdt.h; the TypeScript side
// mirrors them. Compile the header with gcc and compare every offset, so the two cannot drift.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { USDT_PROBES } from '../../../src/events/usdt-probes.js';
import {
  CONFIG,
  COUNTERS,
  HEADER_FILTER,
  HEADER_KEY_BYTES,
  ID_KIND,
  PROBE_DESC,
  ROLE,
  STR_KIND,
} from '../../../src/sources/usdt/bpf-config.js';
import {
  MAX_ARGS,
  MAX_PROBES,
  MAX_STRING,
  MAX_STRINGS,
  RECORD,
} from '../../../src/sources/usdt/record-decoder.js';
import { repoRoot } from '../../../harness/cli.js';

const PROGRAM = `
#include <stdio.h>
#include <stddef.h>
#include <linux/types.h>
#include "h2o_usdt.h"
#define F(T, f) printf("\\"%s.%s\\":%zu,", #T, #f, offsetof(struct T, f))
#define S(T) printf("\\"%s\\":%zu,", #T, sizeof(struct T))
#define C(name) printf("\\"%s\\":%d,", #name, (int)(name))
int main(void) {
  printf("{");
  F(h2o_usdt_record, ts_ns); F(h2o_usdt_record, pid); F(h2o_usdt_record, tid); F(h2o_usdt_record, probe);
  F(h2o_usdt_record, size); F(h2o_usdt_record, nargs); F(h2o_usdt_record, flags); F(h2o_usdt_record, str_len);
  F(h2o_usdt_record, args);
  F(h2o_usdt_config, sample_threshold); F(h2o_usdt_config, pidns_dev); F(h2o_usdt_config, pidns_ino);
  F(h2o_usdt_config, ringbuf_flags); F(h2o_usdt_config, count_only); F(h2o_usdt_config, header_filter);
  F(h2o_usdt_config, probes);
  S(h2o_usdt_config);
  F(h2o_usdt_probe_desc, nargs); F(h2o_usdt_probe_desc, id_kind); F(h2o_usdt_probe_desc, role);
  F(h2o_usdt_probe_desc, stream_arg); F(h2o_usdt_probe_desc, str); S(h2o_usdt_probe_desc);
  F(h2o_usdt_str_desc, kind); F(h2o_usdt_str_desc, ptr_arg); F(h2o_usdt_str_desc, len_arg); F(h2o_usdt_str_desc, cap);
  S(h2o_usdt_str_desc);
  F(h2o_usdt_counters, emitted); F(h2o_usdt_counters, lost); F(h2o_usdt_counters, read_failures);
  F(h2o_usdt_counters, truncated); F(h2o_usdt_counters, sampled_out); F(h2o_usdt_counters, skipped_headers);
  F(h2o_usdt_counters, hits);
  S(h2o_usdt_counters);
  C(H2O_USDT_MAX_ARGS); C(H2O_USDT_MAX_STRINGS); C(H2O_USDT_MAX_STRING); C(H2O_USDT_MAX_PROBES);
  C(H2O_USDT_ID_CONN); C(H2O_USDT_ID_SOCK); C(H2O_USDT_ID_QUIC);
  C(H2O_USDT_ROLE_H1_ACCEPT); C(H2O_USDT_ROLE_H3_ACCEPT); C(H2O_USDT_ROLE_CONN_END); C(H2O_USDT_ROLE_QUIC_END);
  C(H2O_USDT_ROLE_REQUEST_HEADER); C(H2O_USDT_ROLE_RESPONSE_HEADER);
  C(H2O_USDT_FILTER_REQUEST_HEADERS); C(H2O_USDT_FILTER_RESPONSE_HEADERS); C(H2O_USDT_HEADER_KEY);
  S(h2o_usdt_header_key);
  C(H2O_USDT_STR_PTRLEN); C(H2O_USDT_STR_CSTR); C(H2O_USDT_STR_SOCKADDR);
  printf("\\"end\\":0}");
  return 0;
}
`;

test('TypeScript offsets match native/h2o_usdt.h as compiled by gcc', () => {
  const dir = mkdtempSync(join(tmpdir(), 'h2o-otel-layout-'));
  writeFileSync(join(dir, 'layout.c'), PROGRAM);
  execFileSync('gcc', ['-I', join(repoRoot, 'native'), '-o', join(dir, 'layout'), join(dir, 'layout.c')]);
  const c = JSON.parse(execFileSync(join(dir, 'layout')).toString()) as Record<string, number>;
  const expect: Record<string, number> = {
    'h2o_usdt_record.ts_ns': RECORD.tsNs,
    'h2o_usdt_record.pid': RECORD.pid,
    'h2o_usdt_record.tid': RECORD.tid,
    'h2o_usdt_record.probe': RECORD.probe,
    'h2o_usdt_record.size': RECORD.size,
    'h2o_usdt_record.nargs': RECORD.nargs,
    'h2o_usdt_record.flags': RECORD.flags,
    'h2o_usdt_record.str_len': RECORD.strLen,
    'h2o_usdt_record.args': RECORD.args,
    'h2o_usdt_config.sample_threshold': CONFIG.sampleThreshold,
    'h2o_usdt_config.pidns_dev': CONFIG.pidnsDev,
    'h2o_usdt_config.pidns_ino': CONFIG.pidnsIno,
    'h2o_usdt_config.ringbuf_flags': CONFIG.ringbufFlags,
    'h2o_usdt_config.count_only': CONFIG.countOnly,
    'h2o_usdt_config.header_filter': CONFIG.headerFilter,
    'h2o_usdt_config.probes': CONFIG.probes,
    h2o_usdt_config: CONFIG.size,
    'h2o_usdt_probe_desc.nargs': PROBE_DESC.nargs,
    'h2o_usdt_probe_desc.id_kind': PROBE_DESC.idKind,
    'h2o_usdt_probe_desc.role': PROBE_DESC.role,
    'h2o_usdt_probe_desc.stream_arg': PROBE_DESC.streamArg,
    'h2o_usdt_probe_desc.str': PROBE_DESC.str,
    h2o_usdt_probe_desc: PROBE_DESC.size,
    'h2o_usdt_str_desc.kind': PROBE_DESC.strKind,
    'h2o_usdt_str_desc.ptr_arg': PROBE_DESC.strPtrArg,
    'h2o_usdt_str_desc.len_arg': PROBE_DESC.strLenArg,
    'h2o_usdt_str_desc.cap': PROBE_DESC.strCap,
    h2o_usdt_str_desc: PROBE_DESC.strSize,
    'h2o_usdt_counters.emitted': COUNTERS.emitted,
    'h2o_usdt_counters.lost': COUNTERS.lost,
    'h2o_usdt_counters.read_failures': COUNTERS.readFailures,
    'h2o_usdt_counters.truncated': COUNTERS.truncated,
    'h2o_usdt_counters.sampled_out': COUNTERS.sampledOut,
    'h2o_usdt_counters.skipped_headers': COUNTERS.skippedHeaders,
    'h2o_usdt_counters.hits': COUNTERS.hits,
    h2o_usdt_counters: COUNTERS.size,
    H2O_USDT_MAX_ARGS: MAX_ARGS,
    H2O_USDT_MAX_STRINGS: MAX_STRINGS,
    H2O_USDT_MAX_STRING: MAX_STRING,
    H2O_USDT_MAX_PROBES: MAX_PROBES,
    H2O_USDT_ID_CONN: ID_KIND.conn,
    H2O_USDT_ID_SOCK: ID_KIND.sock,
    H2O_USDT_ID_QUIC: ID_KIND.quic,
    H2O_USDT_ROLE_H1_ACCEPT: ROLE.h1_accept,
    H2O_USDT_ROLE_H3_ACCEPT: ROLE.h3_accept,
    H2O_USDT_ROLE_CONN_END: ROLE.conn_end,
    H2O_USDT_ROLE_QUIC_END: ROLE.quic_end,
    H2O_USDT_ROLE_REQUEST_HEADER: ROLE.request_header,
    H2O_USDT_ROLE_RESPONSE_HEADER: ROLE.response_header,
    H2O_USDT_FILTER_REQUEST_HEADERS: HEADER_FILTER.request,
    H2O_USDT_FILTER_RESPONSE_HEADERS: HEADER_FILTER.response,
    H2O_USDT_HEADER_KEY: HEADER_KEY_BYTES,
    h2o_usdt_header_key: HEADER_KEY_BYTES,
    H2O_USDT_STR_PTRLEN: STR_KIND.str,
    H2O_USDT_STR_CSTR: STR_KIND.cstr,
    H2O_USDT_STR_SOCKADDR: STR_KIND.sockaddr,
  };
  for (const [key, value] of Object.entries(expect)) assert.equal(c[key], value, key);
});

test('the probe catalogue matches the argument lists of the declared probes (H2O names and types)', () => {
  const d = readFileSync(join(repoRoot, 'test', 'fixtures', 'usdt', 'probes.d'), 'utf8').replace(
    /\/\*[\s\S]*?\*\//g,
    '',
  );
  const declared = new Map<string, number>();
  let provider = '';
  for (const m of d.matchAll(/provider\s+(\w+)|probe\s+(\w+)\s*\(([^)]*)\)/g)) {
    if (m[1] !== undefined) provider = m[1];
    else declared.set(`${provider}:${m[2]!}`, m[3]!.trim() === '' ? 0 : m[3]!.split(',').length);
  }
  assert.ok(USDT_PROBES.length <= MAX_PROBES);
  for (const p of USDT_PROBES) {
    const n = declared.get(`${p.provider}:${p.name}`);
    if (n === undefined) continue; // probes the fixture does not declare (key updates, ECN) are checked by name only
    assert.equal(p.args.length, n, `${p.provider}:${p.name} argument count`);
    assert.ok(p.args.length <= MAX_ARGS);
  }
  assert.ok(declared.size >= 40, 'the fixture declares the probes the tests use');
});
