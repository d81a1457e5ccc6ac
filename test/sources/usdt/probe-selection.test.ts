// Probe selection is a pure function of the binary's USDT notes and the points the output needs: what is attached,
// what is missing from the build, and which sites libbpf 1.1 cannot read are known before touching the kernel.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UsdtNote } from '../../../src/sources/usdt/elf-notes.js';
import { selectProbes } from '../../../src/sources/usdt/probe-selection.js';

const note = (provider: string, name: string, args = '8@%rdi 8@%rsi', semaphore = 0n): UsdtNote => ({
  provider,
  name,
  args,
  semaphore,
});

const names = (probes: readonly { provider: string; name: string }[]): string[] =>
  probes.map((p) => `${p.provider}:${p.name}`);

test('the points asked for select their probes, in the order asked, with every site of each', () => {
  const notes = [
    note('h2o', 'send_response'),
    note('h2o', 'receive_request', '8@%rdi 8@%rsi -4@%edx'),
    note('h2o', 'receive_request', '8@%rbx 8@%r12 -4@%eax'),
    note('h2o', 'h1_close'),
  ];
  const s = selectProbes(notes, ['h2o:receive_request', 'h2o:send_response']);
  assert.equal(s.noH2oProbes, false);
  assert.deepEqual(names(s.selected.map((x) => x.probe)), ['h2o:receive_request', 'h2o:send_response']);
  assert.deepEqual(
    s.selected[0]!.sites.map((x) => x.args),
    ['8@%rdi 8@%rsi -4@%edx', '8@%rbx 8@%r12 -4@%eax'],
  );
  assert.equal(s.selected[0]!.probe.id, 0, "a probe's catalogue index is its id in records and its cookie");
  assert.deepEqual(s.missing, []);
});

test('probes the build lacks are reported missing; the others are still selected', () => {
  const s = selectProbes([note('h2o', 'receive_request')], ['h2o:receive_request', 'h2o:h3s_accept']);
  assert.deepEqual(names(s.selected.map((x) => x.probe)), ['h2o:receive_request']);
  assert.deepEqual(names(s.missing), ['h2o:h3s_accept']);
});

test('a binary without any h2o probe was built without DTrace: nothing selected, nothing reported missing', () => {
  const s = selectProbes([note('libc', 'setjmp'), note('quicly', 'accept')], ['quicly:accept']);
  assert.equal(s.noH2oProbes, true);
  assert.deepEqual(s.selected, []);
  assert.deepEqual(s.missing, []);
});

test('socket-only points are ignored, and both spellings of one probe select it once', () => {
  const notes = [note('h2o', 'socket_write'), note('h2o', 'receive_request')];
  const s = selectProbes(notes, [
    'h2o:socket_write',
    'h2o:write', // the socket's name for the same probe
    'h2o:receive_request',
    'picotls:new',
    'picotls:free',
  ]);
  assert.deepEqual(names(s.selected.map((x) => x.probe)), ['h2o:socket_write', 'h2o:receive_request']);
  assert.deepEqual(s.missing, []);
});

test('a site with a scale-index-base argument is named, since libbpf 1.1 cannot attach it', () => {
  const s = selectProbes(
    [
      note('h2o', 'connect_success', '8@%rdi 8@%rsi'),
      note('h2o', 'connect_success', '8@%rdi 8@%rsi 8@0(%rbp,%rdx)'),
      note('h2o', 'receive_request', '8@%rdi -4@-12(%rbp)'),
    ],
    ['h2o:connect_success', 'h2o:receive_request'],
  );
  assert.equal(s.selected[0]!.indexedArgs, '8@%rdi 8@%rsi 8@0(%rbp,%rdx)');
  assert.equal(s.selected[1]!.indexedArgs, undefined, 'a plain memory operand is readable');
});

test('probes gated by a semaphore are selected like the others (libbpf raises the semaphore)', () => {
  const s = selectProbes(
    [note('h2o', 'receive_request', '8@%rdi', 0x4a10n), note('h2o', 'send_response', '8@%rdi', 0n)],
    ['h2o:receive_request', 'h2o:send_response'],
  );
  assert.deepEqual(
    s.selected.map((x) => x.sites[0]!.semaphore),
    [0x4a10n, 0n],
  );
  assert.deepEqual(s.missing, []);
});

test('quicly probes are selected from their own provider', () => {
  const s = selectProbes(
    [note('h2o', 'h3s_accept'), note('quicly', 'free')],
    ['quicly:free', 'quicly:accept'],
  );
  assert.deepEqual(names(s.selected.map((x) => x.probe)), ['quicly:free']);
  assert.deepEqual(names(s.missing), ['quicly:accept']);
});
