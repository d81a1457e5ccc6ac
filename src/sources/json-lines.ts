/** h2olog JSON lines of one session (a socket connection, a replay): bytes → decoded event batches → its sink. */
import { JsonLineDecoder } from '../events/decode-json.js';
import type { ProbeEvent } from '../events/types.js';
import type { Sessions, SourceSink } from './sink.js';

export class JsonLinesSession {
  private readonly _decoder: JsonLineDecoder;
  private readonly _sink: SourceSink;
  /** Reused for every chunk: one array per session, not per event or chunk. */
  private readonly _batch: ProbeEvent[] = [];
  private _ended = false;

  constructor(sessions: Sessions) {
    this._decoder = new JsonLineDecoder(sessions.decode.json, sessions.decode.stats);
    this._sink = sessions.open();
  }

  push(chunk: Buffer): void {
    if (this._ended) return;
    this._batch.length = 0;
    this._decoder.push(chunk, this._batch);
    if (this._batch.length > 0) this._sink.pushEvents(this._batch);
  }

  /** The input ended: its last partial line is decoded, then the session ends. */
  end(): void {
    if (this._ended) return;
    this._ended = true;
    this._batch.length = 0;
    this._decoder.end(this._batch);
    if (this._batch.length > 0) this._sink.pushEvents(this._batch);
    this._sink.end();
  }
}
