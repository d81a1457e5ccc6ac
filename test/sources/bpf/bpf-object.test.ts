// The BPF object lifecycle against the real kernel (root): every failure, at any step, leaves nothing open and
// says what went wrong; a loaded, mapped and attached object gives everything back on close().
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { BpfObject } from '../../../src/sources/bpf/bpf-object.js';
import type { BpfObjectOptions } from '../../../src/sources/bpf/bpf-object.js';
import { BpfError } from '../../../src/sources/bpf/errors.js';
import { loadNative } from '../../../src/sources/bpf/native.js';
import type { Native } from '../../../src/sources/bpf/native.js';
import { COUNTERS } from '../../../src/sources/usdt/bpf-config.js';
import { DEFAULT_BPF_OBJECT } from '../../../src/sources/usdt/defaults.js';
import { UsdtSource } from '../../../src/sources/usdt/usdt-source.js';
import { buildUsdtFixture } from '../../../harness/usdt-fixture.js';
import { skipBpf } from '../../../harness/wait.js';
import { sessionsFor } from '../../../harness/probe-events.js';

/** File descriptors this process holds: BPF objects, maps, links and ring mappings all hold some. */
const openFds = (): number => readdirSync('/proc/self/fd').length;

const RING_BYTES = 1 << 20;
const sizeRing = (obj: BpfObject): void => obj.setMaxEntries('events', RING_BYTES);

describe('BPF object lifecycle', { skip: skipBpf }, () => {
  let native: Native;
  let fixture: string;
  let baseline: number;

  before(async () => {
    native = loadNative();
    fixture = await buildUsdtFixture();
    // Once, so whatever libbpf opens for good on first use (kernel BTF, feature probes) is in the baseline.
    BpfObject.load(native, { path: DEFAULT_BPF_OBJECT, configure: sizeRing }).close();
  });

  /** `opts` fails to load with a BpfError matching `message`, and leaves no file descriptor behind. */
  const failsCleanly = (opts: BpfObjectOptions, message: RegExp): void => {
    baseline = openFds();
    assert.throws(
      () => BpfObject.load(native, opts),
      (err: unknown) => err instanceof BpfError && message.test(err.message),
    );
    assert.equal(openFds(), baseline, 'every descriptor released');
  };

  test('a missing object file', () =>
    failsCleanly(
      { path: '/nonexistent/h2o_usdt.bpf.o', configure: sizeRing },
      /cannot open the BPF object \/nonexistent\/h2o_usdt\.bpf\.o \(errno \d+\).*npm run build:bpf/,
    ));

  test('a corrupt object file (cut short)', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'h2o-otel-bpf-')), 'cut.bpf.o');
    writeFileSync(path, readFileSync(DEFAULT_BPF_OBJECT).subarray(0, 2048));
    failsCleanly({ path, configure: sizeRing }, /cannot open the BPF object .*cut\.bpf\.o/);
  });

  test('a failure while configuring: the opened object is closed', () =>
    failsCleanly(
      { path: DEFAULT_BPF_OBJECT, configure: (obj) => obj.setMaxEntries('no_such_map', 1) },
      /is not h2o-otel's BPF program \(no no_such_map map\)/,
    ));

  test('a load the kernel refuses (a map of no entries): the opened object is closed', () =>
    failsCleanly(
      {
        path: DEFAULT_BPF_OBJECT,
        configure: (obj) => {
          sizeRing(obj);
          obj.setMaxEntries('header_names', 0);
        },
      },
      /loading the BPF program failed \(errno 22\): .*header_names/,
    ));

  test('loaded against a given BTF, mapped, attached: close() gives everything back', () => {
    baseline = openFds();
    const obj = BpfObject.load(native, {
      path: DEFAULT_BPF_OBJECT,
      btfCustomPath: '/sys/kernel/btf/vmlinux',
      configure: sizeRing,
    });
    const counters = obj.mapGlobal('.bss', COUNTERS.size, 'the BPF counters');
    assert.equal(counters.readBigUInt64LE(COUNTERS.emitted), 0n);
    const ring = obj.ring('events', RING_BYTES);
    assert.equal(ring.pending(), 0);
    const prog = obj.program('h2o_probe');
    assert.equal(obj.attachUsdt(prog, -1, fixture, 'h2o', 'receive_request', 0), undefined);
    const failed = obj.attachUsdt(prog, -1, fixture, 'h2o', 'no_such_probe', 1);
    assert.ok(failed !== undefined && failed.errno > 0, 'a probe the binary lacks is not attached');
    assert.equal(obj.links, 1);
    assert.ok(openFds() > baseline);
    obj.close();
    assert.equal(obj.links, 0);
    assert.equal(openFds(), baseline, 'every descriptor released');
    obj.close(); // a second close has nothing left to do
  });

  test('the USDT source: a bad object fails run() with a BpfError and leaves nothing attached or open', async () => {
    baseline = openFds();
    const source = new UsdtSource(
      {
        target: { kind: 'binary', path: fixture },
        points: ['h2o:receive_request'],
        ringBytes: RING_BYTES,
        pollMs: 10,
        sampleRatio: undefined,
        maxValueBytes: 100,
        objectPath: '/nonexistent/h2o_usdt.bpf.o',
      },
      {
        sessions: sessionsFor(() => assert.fail('no session without a load')),
        info: () => undefined,
        warn: () => undefined,
      },
    );
    await assert.rejects(
      source.run(),
      (err: unknown) => err instanceof BpfError && /cannot open the BPF object/.test(err.message),
    );
    assert.equal(source.attachedLinks, 0);
    assert.equal(openFds(), baseline);
  });
});
