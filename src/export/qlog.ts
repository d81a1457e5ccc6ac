/**
 * `--qlog-dir DIR`: one streaming qlog file per QUIC connection (`.sqlog`, JSON text sequences: each record is RS,
 * JSON, LF), in the QUIC event schema of the current qlog drafts, for qvis and other qlog tools. The file's
 * group_id is the connection's original destination CID. Files are appended as events arrive, finished when quicly
 * frees the connection, and the directory is kept under a size bound by deleting the oldest finished files.
 */
import { appendFile, mkdir, readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { numberOr0 } from '../events/types.js';
import type { FieldValue, ProbeEvent } from '../events/types.js';

/** Event names h2o-otel writes, all from draft-ietf-quic-qlog-quic-events. */
export const QLOG_EVENT_NAMES: ReadonlySet<string> = new Set([
  'quic:connection_started',
  'quic:connection_closed',
  'quic:connection_state_updated',
  'quic:path_assigned',
  'quic:packet_sent',
  'quic:packet_received',
  'quic:packets_acked',
  'quic:packet_lost',
  'quic:stream_state_updated',
  'quic:stream_data_moved',
  'quic:key_updated',
  'quic:recovery_metrics_updated',
  'quic:congestion_state_updated',
  'quic:timer_updated',
  'quic:ecn_state_updated',
]);

const RS = '\u001e';
const PACKET_TYPES = ['initial', '0RTT', 'handshake', '1RTT'] as const;
/** quicly's ECN validation states (quicly.c): testing, then capable or failed. */
const ECN_STATES = ['testing', 'unknown', 'failed', 'capable'] as const;
/** Events held for a connection until `accept` gives its original DCID (quicly logs `new_path` first). */
const MAX_EARLY_EVENTS = 16;

export interface QlogStats {
  files: number;
  events: number;
  /** Files deleted to keep the directory under its size bound. */
  rotated: number;
  writeErrors: number;
}

/** qlog files hold client addresses and connection ids: readable by their owner only. */
const OWNER_ONLY_DIR = 0o700;
const OWNER_ONLY_FILE = 0o600;

/** Bytes of qlog text waiting for the disk at most; beyond it records are dropped and counted as write errors. */
const MAX_QUEUED_BYTES = 64 << 20;

/**
 * The directory and its size bound; shared by every session (each traced process or socket connection). Files are
 * written asynchronously, one write at a time in order, so the event loop never waits for the disk.
 */
export class QlogDirectory {
  readonly stats: QlogStats = { files: 0, events: 0, rotated: 0, writeErrors: 0 };
  private readonly _finished: { path: string; bytes: number }[] = [];
  private _bytes = 0;
  private _sessions = 0;
  private _lastError: string | undefined;
  /** The end of the write queue: appends and deletions run in the order they were asked for. */
  private _tail: Promise<void> = Promise.resolve();
  private _queuedBytes = 0;

  private constructor(
    readonly dir: string,
    private readonly _maxBytes: number,
  ) {}

  /**
   * The directory, created if missing (owner only: file names show who connected when); an existing one keeps
   * the mode its owner gave it. Files a previous run left count towards the bound, oldest deleted first.
   */
  static async open(dir: string, maxBytes: number): Promise<QlogDirectory> {
    await mkdir(dir, { recursive: true, mode: OWNER_ONLY_DIR });
    const q = new QlogDirectory(dir, maxBytes);
    const names = (await readdir(dir)).filter((f) => f.endsWith('.sqlog'));
    const old = await Promise.all(
      names.map(async (f) => {
        const st = await stat(join(dir, f));
        return { path: join(dir, f), bytes: st.size, mtime: st.mtimeMs };
      }),
    );
    old.sort((a, b) => a.mtime - b.mtime);
    for (const f of old) {
      q._finished.push({ path: f.path, bytes: f.bytes });
      q._bytes += f.bytes;
    }
    return q;
  }

  get lastError(): string | undefined {
    return this._lastError;
  }

  session(): QlogSession {
    return new QlogSession(this, ++this._sessions);
  }

  /** Queue `text` for the end of `path`; false (and counted) when the disk is too far behind to take more. */
  append(path: string, text: string): boolean {
    const bytes = Buffer.byteLength(text);
    if (this._queuedBytes + bytes > MAX_QUEUED_BYTES) {
      this._failed(new Error(`the disk fell ${MAX_QUEUED_BYTES >> 20} MiB behind; qlog records dropped`));
      return false;
    }
    this._queuedBytes += bytes;
    this._bytes += bytes;
    this._tail = this._tail.then(() =>
      appendFile(path, text, { mode: OWNER_ONLY_FILE }).then(
        () => void (this._queuedBytes -= bytes),
        (err: unknown) => {
          // `_bytes` keeps them: the file is subtracted whole when it rotates out, and a size estimated too
          // high only rotates a little early.
          this._queuedBytes -= bytes;
          this._failed(err as Error);
        },
      ),
    );
    return true;
  }

  /** A connection's file is complete: it may be rotated out from now on. */
  finished(path: string, bytes: number): void {
    this._finished.push({ path, bytes });
    while (this._bytes > this._maxBytes && this._finished.length > 0) {
      const oldest = this._finished.shift()!;
      // Already gone is fine: someone cleaned the directory.
      this._tail = this._tail.then(() => unlink(oldest.path).catch(() => undefined));
      this._bytes -= oldest.bytes;
      this.stats.rotated++;
    }
  }

  /** Every queued write done (or failed and counted). */
  drain(): Promise<void> {
    return this._tail;
  }

  private _failed(err: Error): void {
    this.stats.writeErrors++;
    this._lastError = err.message;
  }
}

interface Conn {
  readonly path: string | undefined;
  bytes: number;
  /** Records waiting for `accept` (before the file exists). */
  early: string[] | undefined;
  pending: string;
  freed: boolean;
  remote: string | undefined;
}

/** One source session's QUIC connections (conn ids are unique within it). */
export class QlogSession {
  private readonly _conns = new Map<number, Conn>();
  private readonly _touched = new Set<Conn>();

  constructor(
    private readonly _dir: QlogDirectory,
    private readonly _session: number,
  ) {}

  write(events: readonly ProbeEvent[]): void {
    for (const ev of events) {
      if (ev.module !== 'quicly') continue;
      const connId = ev.fields.conn_id;
      if (typeof connId !== 'number') continue;
      this._event(connId, ev);
    }
    for (const c of this._touched) this._flush(c);
    this._touched.clear();
    for (const [id, c] of this._conns) if (c.freed) this._finish(id, c);
  }

  /** The session ended: finish every file. */
  end(): void {
    for (const [id, c] of this._conns) {
      this._flush(c);
      this._finish(id, c);
    }
  }

  private _event(connId: number, ev: ProbeEvent): void {
    let c = this._conns.get(connId);
    if (ev.type === 'accept') {
      const early = c?.early ?? [];
      c = this._open(connId, ev, c?.remote);
      for (const r of early) c.pending += r;
    }
    if (c === undefined) {
      // Only a connection's first events open it: the ones quicly logs after `free` must not.
      if (ev.type !== 'new_path') return;
      c = { path: undefined, bytes: 0, early: [], pending: '', freed: false, remote: undefined };
      this._conns.set(connId, c);
    }
    if (ev.type === 'new_path' && ev.fields.path_index === 0 && typeof ev.fields.remote === 'string')
      c.remote = ev.fields.remote;
    if (ev.type === 'free') c.freed = true;
    const record = qlogRecord(ev);
    if (record === undefined) return;
    this._dir.stats.events++;
    const text = RS + JSON.stringify(record) + '\n';
    if (c.path === undefined) {
      if (c.early !== undefined && c.early.length < MAX_EARLY_EVENTS) c.early.push(text);
      return;
    }
    c.pending += text;
    this._touched.add(c);
  }

  private _open(connId: number, accept: ProbeEvent, remote: string | undefined): Conn {
    const odcid = typeof accept.fields.dcid === 'string' ? accept.fields.dcid : `conn${connId}`;
    const name = `${stampName(accept)}-${this._session}-${connId}-${odcid}.sqlog`;
    const path = join(this._dir.dir, name);
    const header = {
      file_schema: 'urn:ietf:params:qlog:file:sequential',
      serialization_format: 'application/qlog+json-seq',
      // Older readers (qvis) look for these.
      qlog_version: '0.4',
      qlog_format: 'JSON-SEQ',
      title: `h2o-otel: H2O QUIC connection ${connId}`,
      trace: {
        title: `conn_id ${connId}`,
        vantage_point: { type: 'server', name: 'h2o' },
        common_fields: {
          group_id: odcid,
          protocol_types: ['QUIC', 'HTTP3'],
          time_format: 'relative_to_epoch',
          reference_time: { clock_type: 'system', epoch: '1970-01-01T00:00:00.000Z' },
        },
        event_schemas: ['urn:ietf:params:qlog:events:quic'],
      },
    };
    const c: Conn = {
      path,
      bytes: 0,
      early: undefined,
      pending: RS + JSON.stringify(header) + '\n',
      freed: false,
      remote,
    };
    this._conns.set(connId, c);
    this._dir.stats.files++;
    this._touched.add(c);
    return c;
  }

  private _flush(c: Conn): void {
    if (c.path === undefined || c.pending === '') return;
    if (this._dir.append(c.path, c.pending)) c.bytes += Buffer.byteLength(c.pending);
    c.pending = '';
  }

  private _finish(connId: number, c: Conn): void {
    this._conns.delete(connId);
    if (c.path !== undefined) this._dir.finished(c.path, c.bytes);
  }
}

function stampName(ev: ProbeEvent): string {
  return new Date(ev.timeMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

function packetHeader(f: Record<string, FieldValue>): { packet_type: string; packet_number: number } {
  const t = numberOr0(f.packet_type);
  return { packet_type: PACKET_TYPES[t] ?? 'unknown', packet_number: numberOr0(f.pn) };
}

/** `1.2.3.4:443` / `[::1]:443` → a qlog path endpoint. */
function endpoint(text: unknown): Record<string, string | number> | undefined {
  if (typeof text !== 'string') return undefined;
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(text);
  if (m === null) return undefined;
  return m[1]!.includes(':')
    ? { ip_v6: m[1]!, port_v6: Number(m[2]) }
    : { ip_v4: m[1]!, port_v4: Number(m[2]) };
}

interface QlogEvent {
  readonly time: number;
  readonly name: string;
  readonly data: object;
}

function event(time: number, name: string, data: object): QlogEvent {
  return { time, name, data };
}

/** One quicly event → a qlog event record (time in ms since the epoch, with the source's sub-ms precision). */
export function qlogRecord(ev: ProbeEvent): QlogEvent | undefined {
  const f = ev.fields;
  const time = ev.timeMs + ev.timeSubNs / 1e6;
  switch (ev.type) {
    case 'accept':
      return event(time, 'quic:connection_started', { dst_cid: f.dcid, protocol: 'QUIC' });
    case 'new_path':
      return event(time, 'quic:path_assigned', {
        path_id: String(numberOr0(f.path_index)),
        path_remote: endpoint(f.remote) ?? {},
      });
    case 'crypto_handshake':
      return numberOr0(f.ret) === 0
        ? event(time, 'quic:connection_state_updated', { new: 'handshake_complete' })
        : undefined;
    case 'handshake_done_send':
      return event(time, 'quic:connection_state_updated', { new: 'handshake_confirmed' });
    case 'packet_sent':
      return event(time, 'quic:packet_sent', {
        header: packetHeader(f),
        raw: { length: numberOr0(f.len) },
        is_ack_only: f.ack_only === true,
      });
    case 'packet_received':
      return event(time, 'quic:packet_received', {
        header: packetHeader(f),
        raw: { payload_length: numberOr0(f.decrypted_len) },
      });
    case 'packet_acked':
      return event(time, 'quic:packets_acked', { packet_numbers: [numberOr0(f.pn)] });
    case 'packet_lost':
      return event(time, 'quic:packet_lost', { header: packetHeader(f), trigger: 'reordering_threshold' });
    case 'cc_ack_received':
      return event(time, 'quic:recovery_metrics_updated', {
        congestion_window: numberOr0(f.cwnd),
        bytes_in_flight: numberOr0(f.inflight),
      });
    case 'cc_congestion':
      return event(time, 'quic:congestion_state_updated', { new: 'recovery', trigger: 'loss' });
    case 'pto':
      return event(time, 'quic:timer_updated', {
        timer_type: 'pto',
        event_type: 'expired',
        pto_count: numberOr0(f.pto_count),
      });
    case 'ecn_validation':
      return event(time, 'quic:ecn_state_updated', { new: ECN_STATES[numberOr0(f.state)] ?? 'unknown' });
    case 'crypto_send_key_update':
    case 'crypto_receive_key_update':
      return event(time, 'quic:key_updated', {
        key_type: ev.type === 'crypto_send_key_update' ? 'server_1rtt_secret' : 'client_1rtt_secret',
        key_phase: numberOr0(f.phase),
        trigger: ev.type === 'crypto_send_key_update' ? 'local_update' : 'remote_update',
      });
    case 'stream_on_open':
      return event(time, 'quic:stream_state_updated', { stream_id: numberOr0(f.stream_id), new: 'open' });
    case 'stream_on_destroy':
      return event(time, 'quic:stream_state_updated', {
        stream_id: numberOr0(f.stream_id),
        new: 'destroyed',
      });
    case 'stream_send':
      return event(time, 'quic:stream_data_moved', {
        stream_id: numberOr0(f.stream_id),
        offset: numberOr0(f.off),
        length: numberOr0(f.data_len),
        from: 'application',
        to: 'transport',
      });
    case 'transport_close_send':
    case 'transport_close_receive':
    case 'application_close_send':
    case 'application_close_receive':
      return event(time, 'quic:connection_closed', {
        owner: ev.type.endsWith('_send') ? 'local' : 'remote',
        [ev.type.startsWith('transport') ? 'connection_code' : 'application_code']: numberOr0(f.error_code),
        reason: f.reason_phrase ?? '',
      });
    case 'idle_timeout':
      return event(time, 'quic:connection_closed', { owner: 'local', trigger: 'idle_timeout' });
    case 'conn_stats':
      return event(time, 'quic:recovery_metrics_updated', {
        min_rtt: numberOr0(f['rtt.minimum']),
        smoothed_rtt: numberOr0(f['rtt.smoothed']),
        latest_rtt: numberOr0(f['rtt.latest']),
        rtt_variance: numberOr0(f['rtt.variance']),
        congestion_window: numberOr0(f['cc.cwnd']),
      });
    default:
      return undefined;
  }
}
