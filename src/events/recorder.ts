/**
 * `--record FILE`: the decoded event stream as socket-format JSON lines, replayable with `--replay`. A recording
 * holds every header value and URL in clear (cookies, bearer tokens, signed URLs): it is created readable by its
 * owner only, and an existing file — another recording, or a link someone planted — is kept unless `overwrite`.
 */
import { createWriteStream, lstatSync, openSync, statSync, unlinkSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { encodeEvent } from './encode-json.js';
import type { ProbeEvent } from './types.js';

const OWNER_ONLY = 0o600;

/**
 * `wx` is O_EXCL: it fails on an existing file and does not follow a symbolic link. Overwriting replaces a file,
 * or a link to one (never writing through it), with a new owner-only file; a pipe or a device (`/dev/stdout`,
 * itself a link) is written to as it is.
 */
function openRecording(path: string, overwrite: boolean): number {
  if (overwrite && replaceable(path)) unlinkSync(path);
  else if (overwrite && exists(path)) return openSync(path, 'w');
  return openSync(path, 'wx', OWNER_ONLY);
}

function replaceable(path: string): boolean {
  try {
    const st = lstatSync(path);
    return st.isFile() || (st.isSymbolicLink() && (!exists(path) || statSync(path).isFile()));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** Whether `path` (followed) exists. */
function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

export class EventRecorder {
  private readonly _out: WriteStream;
  private _error: Error | undefined;
  recorded = 0;

  /** Throws when the file cannot be created; with `overwrite` false, an existing file is an `EEXIST` error. */
  constructor(path: string, overwrite = false) {
    this._out = createWriteStream(path, { fd: openRecording(path, overwrite) });
    this._out.on('error', (err) => {
      this._error = err;
    });
  }

  /** The first write error (e.g. disk full), so the CLI can report it instead of losing events silently. */
  get error(): Error | undefined {
    return this._error;
  }

  write(events: readonly ProbeEvent[]): void {
    if (events.length === 0 || this._error !== undefined) return;
    let text = '';
    for (const ev of events) text += encodeEvent(ev) + '\n';
    this._out.write(text);
    this.recorded += events.length;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this._out.end(resolve));
  }
}
