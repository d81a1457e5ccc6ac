/**
 * `--record FILE`: the decoded event stream as socket-format JSON lines, replayable with `--replay`. A recording
 * holds every header value and URL in clear (cookies, bearer tokens, signed URLs): it is created readable by its
 * owner only, and an existing file — another recording, or a link someone planted — is kept unless `overwrite`.
 */
import { closeSync, createWriteStream, fchmodSync, fstatSync, openSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { encodeEvent } from './encode-json.js';
import type { ProbeEvent } from './types.js';

const OWNER_ONLY = 0o600;

export class EventRecorder {
  private readonly _out: WriteStream;
  private _error: Error | undefined;
  recorded = 0;

  /** Throws when the file cannot be created; with `overwrite` false, an existing file is an `EEXIST` error. */
  constructor(path: string, overwrite = false) {
    // `wx` is O_EXCL: it fails on an existing file and does not follow a symbolic link.
    const fd = openSync(path, overwrite ? 'w' : 'wx', OWNER_ONLY);
    // An overwritten file keeps its mode: narrow it, unless it is no file of ours to change (a pipe, /dev/stdout).
    try {
      if (overwrite && fstatSync(fd).isFile()) fchmodSync(fd, OWNER_ONLY);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this._out = createWriteStream(path, { fd });
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
