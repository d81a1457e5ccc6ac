/** A USDT source attached in-process to a pid (the tests that watch the kernel path without the CLI). */
import type { ProbeEvent } from '../src/events/types.js';
import type { PollEnd } from '../src/sources/bpf/process-poller.js';
import { DEFAULT_BPF_OBJECT } from '../src/sources/usdt/defaults.js';
import { UsdtSource } from '../src/sources/usdt/usdt-source.js';
import { sessionsFor } from './probe-events.js';
import { waitFor } from './wait.js';

export interface AttachedUsdt {
  readonly source: UsdtSource;
  /** Its run, resolving when it stops. */
  readonly running: Promise<PollEnd>;
  /** What it said (info and warnings). */
  readonly said: string[];
}

/** Attach `points` of pid's probes and resolve once attached; events go to `onEvents`. */
export async function attachUsdt(
  pid: number,
  points: readonly string[],
  pollMs: number,
  onEvents: (events: readonly ProbeEvent[]) => void = () => undefined,
): Promise<AttachedUsdt> {
  const said: string[] = [];
  const source = new UsdtSource(
    {
      target: { kind: 'pid', pid },
      points,
      ringBytes: 1 << 20,
      pollMs,
      sampleRatio: undefined,
      maxValueBytes: 4096,
      objectPath: DEFAULT_BPF_OBJECT,
    },
    {
      sessions: sessionsFor(() => ({
        pushEvents: onEvents,
        pushRecords: () => {
          throw new Error('the USDT source pushes events, not records');
        },
        end: () => undefined,
      })),
      info: (m) => said.push(m),
      warn: (m) => said.push(m),
    },
  );
  const running = source.run();
  await waitFor(
    () => said.some((m) => m.startsWith('attached')),
    'attach',
    10_000,
    () => said.join('\n'),
  );
  return { source, running, said };
}
