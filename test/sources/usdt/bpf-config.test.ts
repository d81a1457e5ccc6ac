// The header-name filter BPF applies: which names go into its map, with which directions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HEADER_FILTER, HEADER_KEY_BYTES, headerNameEntries } from '../../../src/sources/usdt/bpf-config.js';

const decoded = (entries: { key: Buffer; value: Buffer }[]): [string, number][] =>
  entries.map((e) => [e.key.toString('latin1').replace(/\0+$/, ''), e.value[0]!]);

test('each used name is one key, with the bits of the directions it is used in', () => {
  const entries = headerNameEntries({ request: ['user-agent', 'content-type'], response: ['content-type'] });
  assert.deepEqual(decoded(entries), [
    ['user-agent', HEADER_FILTER.request],
    ['content-type', HEADER_FILTER.request | HEADER_FILTER.response],
  ]);
  for (const e of entries) assert.equal(e.key.length, HEADER_KEY_BYTES);
});

test('a direction whose names are all used adds nothing (BPF does not filter it)', () => {
  assert.deepEqual(decoded(headerNameEntries({ request: ['traceparent'], response: 'all' })), [
    ['traceparent', HEADER_FILTER.request],
  ]);
  assert.deepEqual(headerNameEntries({ request: 'all', response: 'all' }), []);
});

test('names longer than a key are left out: BPF sends them on and user space decides', () => {
  const long = 'x'.repeat(HEADER_KEY_BYTES + 1);
  const exact = 'y'.repeat(HEADER_KEY_BYTES);
  assert.deepEqual(decoded(headerNameEntries({ request: [long, exact], response: [] })), [
    [exact, HEADER_FILTER.request],
  ]);
});
