/** `--record FILE`: the decoded event stream as socket-format JSON lines, replayable with `--replay`. */
import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { encodeEvent } from './encode-json.js';
import type { ProbeEvent } from './types.js';

export class EventRecorder {
  private readonly _out: WriteStream;
  private _error: Error | undefined;
  recorded = 0;

  constructor(path: string) {
    this._out = createWriteStream(path, { flags: 'w' });
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
