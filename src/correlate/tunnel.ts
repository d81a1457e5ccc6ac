/**
 * H2O's CONNECT handler probes (`connect_*`, USDT only) → the upstream side of a tunnel: one attempt per
 * `connect_*_start`, bytes each way, errors. Real H2O builds may lack `connect_success` (libbpf 1.1 cannot attach
 * it), so an attempt also counts as connected once data moves through it or the response is a 2xx.
 */
import { numberOf } from '../events/types.js';
import type { ProbeEvent } from '../events/types.js';
import type { RequestRecord, Stamp, TunnelRecord, UpstreamAttempt } from './records.js';

function newTunnel(ev: ProbeEvent): TunnelRecord {
  return {
    attempts: [],
    bytesSent: 0,
    bytesReceived: 0,
    error: undefined,
    problems: [],
    last: ev,
    disposed: undefined,
  };
}

function current(t: TunnelRecord): UpstreamAttempt | undefined {
  const a = t.attempts[t.attempts.length - 1];
  return a !== undefined && a.end === undefined ? a : undefined;
}

function bytes(ev: ProbeEvent): number {
  return numberOf(ev.fields.num_bytes) ?? 0;
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Apply one `connect_*` event to the request's tunnel (created by the first). */
export function applyConnectEvent(req: RequestRecord, ev: ProbeEvent): void {
  const t = (req.tunnel ??= newTunnel(ev));
  t.last = ev;
  const f = ev.fields;
  const open = current(t);
  switch (ev.type) {
    case 'connect_tcp_start':
    case 'connect_udp_start':
      if (open !== undefined) {
        // H2O moved on to the next address: the previous one did not work.
        open.end = ev;
        open.error ??= 'next address tried';
      }
      t.attempts.push({
        transport: ev.type === 'connect_tcp_start' ? 'tcp' : 'udp',
        start: ev,
        end: undefined,
        dest: text(f.dest),
        connected: false,
        error: undefined,
      });
      return;
    case 'connect_success':
      if (open !== undefined) {
        open.connected = true;
        open.dest = text(f.dest) ?? open.dest;
      }
      return;
    case 'connect_error': {
      t.error = text(f.error_type) ?? 'connect_error';
      const message = text(f.details) ?? t.error;
      if (open !== undefined && !open.connected) {
        open.end = ev;
        open.error = message;
      } else {
        t.problems.push({ at: ev, kind: 'connect_error', message });
      }
      return;
    }
    case 'connect_tcp_write':
    case 'connect_udp_write':
      t.bytesSent += bytes(ev);
      if (open !== undefined) open.connected = true;
      return;
    case 'connect_tcp_read':
    case 'connect_udp_read':
      t.bytesReceived += bytes(ev);
      if (open !== undefined) open.connected = true;
      return;
    case 'connect_tcp_read_error':
    case 'connect_tcp_write_error':
      t.problems.push({
        at: ev,
        kind: ev.type === 'connect_tcp_read_error' ? 'read_error' : 'write_error',
        message: text(f.err) ?? '',
      });
      return;
    case 'connect_io_timeout':
      t.problems.push({ at: ev, kind: 'io_timeout', message: 'no data either way within the I/O timeout' });
      return;
    case 'connect_dispose':
      t.disposed = ev;
      closeAttempts(t, ev, req.status);
      return;
  }
}

/** End every open attempt at `end`; one never known to be connected failed (or the request was answered 2xx). */
export function closeAttempts(t: TunnelRecord, end: Stamp, status: number | undefined): void {
  const open = current(t);
  if (open === undefined) return;
  open.end = end;
  if (!open.connected && status !== undefined && status >= 200 && status < 300) open.connected = true;
  if (!open.connected) open.error ??= t.error ?? 'not connected';
}

/** A tunnel still carrying data keeps its request (and connection) open. */
export function tunnelOpen(req: RequestRecord): boolean {
  return req.tunnel !== undefined && req.tunnel.disposed === undefined;
}
