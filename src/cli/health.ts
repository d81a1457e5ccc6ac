/**
 * `--health-port`: GET /healthz and /readyz for Kubernetes probes, each a short JSON body of the reason. Answers
 * come from HealthState's getters only: a probe never waits on the pipeline, and a slow pipeline cannot make the
 * kubelet's probe time out for any reason other than a held event loop.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { H2ologSocketSource } from '../sources/socket.js';
import type { BpfSource } from './bpf-source.js';
import type { ExportStats } from '../export/batch-processor.js';
import { HEARTBEAT_STALE_MS, HealthState } from './health-state.js';
import type { HealthFacts, HealthOptions, SourceReadiness, Verdict } from './health-state.js';
import type { Source } from './options.js';

/** The sources as main holds them: created after the health server starts, so read when a probe comes. */
export interface LiveSources {
  socket(): H2ologSocketSource | undefined;
  bpf(): BpfSource | undefined;
}

/**
 * Ready means events reach the pipeline: subscribed to H2O's socket; BPF probes attached to the pid; for a
 * `--binary`, probes on the file, which trace every process of it from its first request, running yet or not —
 * whether H2O itself runs is H2O's own probe's question. A replay is ready once started.
 */
export function sourceReadiness(source: Source, live: LiveSources): () => SourceReadiness {
  switch (source.kind) {
    case 'replay':
      return () => ({ ready: true, detail: `replay ${source.path}` });
    case 'socket':
      return () => {
        const s = live.socket();
        if (s?.subscribed === true) return { ready: true, detail: `socket ${source.path} subscribed` };
        const problem = s?.lastProblem;
        return {
          ready: false,
          detail: `socket ${source.path} not subscribed` + (problem === undefined ? '' : `: ${problem}`),
        };
      };
    case 'usdt': {
      const t = source.target;
      const what =
        t.kind === 'pid' ? `H2O pid ${t.pid}` : `${t.path} (its processes, running or started later)`;
      return () =>
        live.bpf()?.attached === true
          ? { ready: true, detail: `bpf attached to ${what}` }
          : { ready: false, detail: `bpf not attached to ${what} yet` };
    }
  }
}

/** The facts main holds, as HealthState reads them. */
export function healthFacts(source: Source, live: LiveSources, exports: ExportStats): HealthFacts {
  return {
    source: sourceReadiness(source, live),
    exportFailingSince: () => exports.failingSince,
    lastExportError: () => exports.lastError,
  };
}

/** With `--health-port`, the state probes read, its server listening; throws a HealthListenError if it cannot. */
export async function startHealth(o: HealthOptions): Promise<HealthState | undefined> {
  if (o.port === undefined) return undefined;
  const state = new HealthState({ staleAfterMs: HEARTBEAT_STALE_MS, exportFailureMs: o.exportFailureMs });
  await serveHealth(state, o.host, o.port);
  return state;
}

/** The health server could not listen; the message names the flag and the port. */
export class HealthListenError extends Error {}

/** Listens on host:port; the server never keeps the process alive by itself. */
export async function serveHealth(state: HealthState, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => answer(state, req, res));
  // A probe is one small request: one that dawdles is cut rather than held.
  server.requestTimeout = PROBE_REQUEST_TIMEOUT_MS;
  server.headersTimeout = PROBE_REQUEST_TIMEOUT_MS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
    server.listen(port, host, () => resolve());
  });
  server.unref();
  return server;
}

const PROBE_REQUEST_TIMEOUT_MS = 5_000;
const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' };

function answer(state: HealthState, req: IncomingMessage, res: ServerResponse): void {
  const path = req.url?.split('?', 1)[0];
  const { code, body } = verdictFor(state, path, req.method);
  res.writeHead(code, code === 405 ? { ...JSON_HEADERS, allow: 'GET, HEAD' } : JSON_HEADERS);
  res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body) + '\n');
}

function verdictFor(
  state: HealthState,
  path: string | undefined,
  method: string | undefined,
): { code: number; body: Verdict['body'] } {
  if (path !== '/healthz' && path !== '/readyz')
    return { code: 404, body: { status: 'not found', paths: ['/healthz', '/readyz'] } };
  if (method !== 'GET' && method !== 'HEAD') return { code: 405, body: { status: 'method not allowed' } };
  const now = Date.now();
  const v = path === '/healthz' ? state.liveness(now) : state.readiness(now);
  return { code: v.ok ? 200 : 503, body: v.body };
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new HealthListenError(
        `--health-port ${port}: the port is in use on ${host} (another process listens)`,
      );
    case 'EACCES':
      return new HealthListenError(
        `--health-port ${port}: permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)`,
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new HealthListenError(`--health-host ${host}: not an address of this host`);
    default:
      return new HealthListenError(`--health-port ${port} on ${host}: ${err.message}`);
  }
}
