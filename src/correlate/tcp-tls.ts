/**
 * TLS over TCP: picotls logs no conn id, only its `ptls_t` pointer. A handshake is tied to the connection that
 * starts on the same worker thread next (`h1_accept`, or the first request of an HTTP/2 connection), and only when
 * exactly one unclaimed handshake is waiting there: ambiguous ones are left out rather than guessed.
 */
import type { FieldValue, ProbeEvent } from '../events/types.js';
import type { ConnState } from './conn-state.js';
import type { CorrelatorStats } from './options.js';
import { applyTlsEvent, newTlsFacts } from './quic.js';
import type { TlsFacts } from './records.js';

/** A server-side TLS handshake over TCP, from `picotls:new` to `free`. */
interface TcpTls {
  readonly tid: number;
  readonly facts: TlsFacts;
}

/** TCP TLS handshakes tracked at most. */
const MAX_TCP_TLS = 4096;

export class TcpTlsBinder {
  /** Every tracked handshake by `ptls_t` pointer, oldest first. */
  private readonly _byPtr = new Map<FieldValue, TcpTls>();
  /** The tracked handshakes no connection has claimed, per worker thread (threads are few: their sets stay). */
  private readonly _unclaimedByTid = new Map<number, Set<TcpTls>>();

  constructor(private readonly _stats: CorrelatorStats) {}

  /** A picotls event without conn id. */
  event(ev: ProbeEvent): void {
    const ptr = ev.fields.tls;
    if (ptr === undefined) return void this._stats.ignoredEvents++;
    let t = this._byPtr.get(ptr);
    if (ev.type === 'new') {
      if (ev.fields.is_server === false) return; // h2o's own outgoing TLS
      if (this._byPtr.size >= MAX_TCP_TLS) this._drop(this._byPtr.keys().next().value!);
      if (t !== undefined) this._unclaimedByTid.get(t.tid)?.delete(t);
      t = { tid: ev.tid, facts: newTlsFacts() };
      this._byPtr.set(ptr, t);
      this._unclaimed(t.tid).add(t);
    }
    if (t === undefined) return void this._stats.ignoredEvents++;
    if (ev.type === 'free') return this._drop(ptr);
    applyTlsEvent(t.facts, ev);
  }

  /** Tie the single unclaimed handshake of worker thread `tid` (finished ones only if `needDone`) to `conn`. */
  claim(conn: ConnState, tid: number, needDone: boolean): void {
    const waiting = this._unclaimedByTid.get(tid);
    if (waiting === undefined) return;
    let found: TcpTls | undefined;
    for (const t of waiting) {
      if (needDone && t.facts.done === undefined) continue;
      if (found !== undefined) return; // ambiguous
      found = t;
    }
    if (found === undefined) return;
    waiting.delete(found);
    conn.record.tls = found.facts;
    // The connection began with its TLS handshake, before H2O gave it an id.
    const start = found.facts.start;
    if (start !== undefined && start.timeMs <= conn.record.start.timeMs) conn.record.start = start;
  }

  private _unclaimed(tid: number): Set<TcpTls> {
    let set = this._unclaimedByTid.get(tid);
    if (set === undefined) {
      set = new Set();
      this._unclaimedByTid.set(tid, set);
    }
    return set;
  }

  private _drop(ptr: FieldValue): void {
    const t = this._byPtr.get(ptr);
    if (t === undefined) return;
    this._byPtr.delete(ptr);
    this._unclaimedByTid.get(t.tid)?.delete(t);
  }
}
