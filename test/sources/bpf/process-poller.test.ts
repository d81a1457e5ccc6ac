// The poll loop on a fake ring of plain records: one session per process, flushed after every drain, ended when
// its process exits or tracing stops.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProcessPoller } from '../../../src/sources/bpf/process-poller.js';
import type { ProcessPollerListener, ProcessSession } from '../../../src/sources/bpf/process-poller.js';
import { waitFor } from '../../../harness/wait.js';

/** A pid no process has (above the kernel's pid_max limit of 2^22). */
const GONE = 999_999_999;

/** Records of `[pid u32][payload u32]`; pushed ones are handed out at the next drain. */
class FakeRing {
  readonly size = 1 << 20;
  private readonly _records: Buffer[] = [];

  push(pid: number, payload: number): void {
    const b = Buffer.alloc(8);
    b.writeUInt32LE(pid, 0);
    b.writeUInt32LE(payload, 4);
    this._records.push(b);
  }

  pushShort(): void {
    this._records.push(Buffer.alloc(3));
  }

  pending(): number {
    return this._records.length * 8;
  }

  drain(onRecord: (data: Buffer, off: number, len: number) => void, max: number): number {
    const taken = this._records.splice(0, max);
    for (const r of taken) onRecord(r, 0, r.length);
    return taken.length;
  }
}

interface Seen {
  readonly sessions: Map<number, { records: number[]; flushed: number[]; ended: boolean }>;
  readonly said: string[];
  bad: number;
  drains: number;
}

function poller(ring: FakeRing, pid: number | undefined): { poller: ProcessPoller; seen: Seen } {
  const seen: Seen = { sessions: new Map(), said: [], bad: 0, drains: 0 };
  const listener: ProcessPollerListener = {
    open(p): ProcessSession {
      const s = { records: [] as number[], flushed: [] as number[], ended: false };
      seen.sessions.set(p, s);
      let pending: number[] = [];
      return {
        record: (data, off) => void pending.push(data.readUInt32LE(off + 4)),
        flush: () => {
          s.records.push(...pending);
          s.flushed.push(pending.length);
          pending = [];
        },
        end: () => void (s.ended = true),
      };
    },
    badRecord: () => void seen.bad++,
    drained: () => void seen.drains++,
    tick: () => undefined,
    info: (m) => void seen.said.push(m),
    warn: (m) => void seen.said.push(m),
  };
  const p = new ProcessPoller(
    { ring, pollMs: 5, pid, pidOffset: 0, minRecordBytes: 4, targetName: 'every process of /usr/bin/h2o' },
    listener,
  );
  return { poller: p, seen };
}

test('each process gets its own session, flushed after every drain; short records are counted', async () => {
  const ring = new FakeRing();
  const { poller: p, seen } = poller(ring, undefined);
  const running = p.run();
  ring.push(process.pid, 1);
  ring.push(process.ppid, 2);
  ring.push(process.pid, 3);
  ring.pushShort();
  await waitFor(() => seen.drains >= 2 && seen.sessions.size === 2, 'a drain');
  assert.deepEqual(seen.sessions.get(process.pid)!.records, [1, 3]);
  assert.deepEqual(seen.sessions.get(process.ppid)!.records, [2]);
  assert.equal(seen.bad, 1);
  assert.equal(p.processes, 2);
  assert.ok(seen.said.includes(`tracing H2O pid ${process.pid}`));
  ring.push(process.pid, 4);
  p.stop();
  assert.equal(await running, 'stopped');
  assert.deepEqual(seen.sessions.get(process.pid)!.records, [1, 3, 4], 'the ring is drained before the end');
  for (const s of seen.sessions.values()) assert.equal(s.ended, true);
  assert.equal(p.processes, 0);
});

test('with every process of a binary, a process that exits ends its session only', async () => {
  const ring = new FakeRing();
  const { poller: p, seen } = poller(ring, undefined);
  const running = p.run();
  ring.push(GONE, 1);
  ring.push(process.pid, 2);
  await waitFor(() => seen.sessions.get(GONE)?.ended === true, 'the exited process', 2000);
  assert.deepEqual(seen.sessions.get(GONE)!.records, [1]);
  assert.equal(seen.sessions.get(process.pid)!.ended, false);
  assert.ok(seen.said.includes(`H2O pid ${GONE} exited; still tracing every process of /usr/bin/h2o`));
  p.stop();
  assert.equal(await running, 'stopped');
});

test('with one pid, its session is open from the start and its exit ends the run', async () => {
  const ring = new FakeRing();
  const { poller: p, seen } = poller(ring, GONE);
  const running = p.run();
  assert.equal(p.processes, 1);
  ring.push(GONE, 7);
  assert.equal(await running, 'target-exited');
  assert.deepEqual(seen.sessions.get(GONE)!.records, [7], "the process's last records are delivered");
  assert.equal(seen.sessions.get(GONE)!.ended, true);
  assert.ok(seen.said.includes(`H2O pid ${GONE} exited; flushing and stopping`));
  assert.ok(!seen.said.some((m) => m.startsWith('tracing')), 'the one pid is not announced as new');
});
