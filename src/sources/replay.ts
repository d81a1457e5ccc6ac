/** `--replay FILE|-`: h2olog JSON lines from a file or stdin, as fast as they can be read. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { JsonLinesSession } from './json-lines.js';
import type { Sessions } from './sink.js';

export class ReplayError extends Error {}

/** Open the input early so a missing or unreadable file is reported before anything starts. */
export async function openReplayInput(path: string): Promise<Readable> {
  if (path === '-') return process.stdin;
  try {
    const st = await stat(path);
    if (st.isDirectory())
      throw new ReplayError(`--replay ${path}: is a directory; give a file of h2olog JSON lines`);
  } catch (err) {
    if (err instanceof ReplayError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ReplayError(`--replay ${path}: no such file`);
    if (code === 'EACCES') throw new ReplayError(`--replay ${path}: permission denied`);
    throw new ReplayError(`--replay ${path}: ${(err as Error).message}`);
  }
  return createReadStream(path, { highWaterMark: 1 << 20 });
}

/**
 * Feed the whole input into one session, as fast as the pipeline takes it; resolves when it has been read, or
 * `signal` stopped it (the input may then be destroyed under it: that is a normal end, not an error), and the
 * session ended.
 */
export async function replay(input: Readable, sessions: Sessions, signal?: AbortSignal): Promise<void> {
  const sink = new JsonLinesSession(sessions);
  try {
    for await (const chunk of input) {
      if (signal?.aborted === true) break;
      sink.push(chunk as Buffer);
      const wait = sessions.ready?.();
      if (wait !== undefined) await untilAborted(wait, signal);
    }
  } catch (err) {
    if (signal?.aborted !== true) throw err;
  } finally {
    sink.end();
  }
}

/** `wait`, or the abort if it comes first: a collector that is away must not hold a signalled replay. */
function untilAborted(wait: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return wait;
  return new Promise((resolve) => {
    const done = (): void => {
      signal.removeEventListener('abort', done);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
    wait.then(done, done);
  });
}
