// Runs a real H2O (2.2.5 config syntax) in a temp dir for the tests: HTTP/1.1 and TLS (HTTP/2 by ALPN) listeners,
// a static file, a missing one, and a reverse proxy to an upstream nobody listens on.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { waitFor } from './wait.js';

export interface H2oServerOptions {
  /** Kept for inspection (logs, config) instead of removed by stop(). */
  keepDir?: boolean;
  /** How long H2O may take to accept connections on both ports. */
  startTimeoutMs?: number;
}

export interface H2oServer {
  pid: number;
  httpPort: number;
  httpsPort: number;
  /** Holds the config, the certificate, the document root and H2O's logs. */
  dir: string;
  /** The body `/` and `/index.html` serve. */
  indexBody: string;
  stop(): Promise<void>;
}

/** Upstream of `/proxy`: port 1 on loopback refuses connections, so H2O answers 502. */
const UNREACHABLE_UPSTREAM = 'http://127.0.0.1:1/';
const INDEX_BODY = 'hello from h2o\n';
const STOP_TIMEOUT_MS = 10_000;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function selfSignedCert(certFile: string, keyFile: string): Promise<void> {
  const args = ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1'];
  return new Promise((resolve, reject) => {
    execFile('openssl', [...args, '-keyout', keyFile, '-out', certFile], (err, _stdout, stderr) => {
      if (err) reject(new Error(`openssl req failed: ${stderr || err.message}`));
      else resolve();
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function config(dir: string, httpPort: number, httpsPort: number): string {
  // Run as root, H2O 2.2.5 switches to `nobody`, who cannot read the 0700 temp dir; staying root keeps it readable.
  const user = process.getuid?.() === 0 ? 'user: root\n' : '';
  return `${user}pid-file: ${join(dir, 'h2o.pid')}
error-log: ${join(dir, 'error.log')}
num-threads: 2
listen:
  host: 127.0.0.1
  port: ${httpPort}
listen:
  host: 127.0.0.1
  port: ${httpsPort}
  ssl:
    certificate-file: ${join(dir, 'cert.pem')}
    key-file: ${join(dir, 'key.pem')}
hosts:
  default:
    paths:
      /proxy:
        proxy.reverse.url: ${UNREACHABLE_UPSTREAM}
      /:
        file.dir: ${join(dir, 'www')}
    access-log: ${join(dir, 'access.log')}
`;
}

async function errorLogTail(dir: string): Promise<string> {
  const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '');
  return log.trimEnd().split('\n').slice(-20).join('\n');
}

/** Starts H2O `bin` on two free loopback ports; resolves once both accept connections. */
export async function startH2o(bin: string, opts: H2oServerOptions = {}): Promise<H2oServer> {
  const dir = await mkdtemp(join(tmpdir(), 'h2o-otel-h2o-'));
  const [httpPort, httpsPort] = [await freePort(), await freePort()];
  await mkdir(join(dir, 'www'));
  await writeFile(join(dir, 'www', 'index.html'), INDEX_BODY);
  await selfSignedCert(join(dir, 'cert.pem'), join(dir, 'key.pem'));
  const confFile = join(dir, 'h2o.conf');
  await writeFile(confFile, config(dir, httpPort, httpsPort));

  const child = spawn(bin, ['-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exit.then(() => (exited = true));

  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    }
    if (!opts.keepDir) await rm(dir, { recursive: true, force: true });
  };

  let up = false;
  const poll = async (): Promise<void> => {
    while (!exited && !up) {
      up = (await accepts(httpPort)) && (await accepts(httpsPort));
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
  };
  void poll();
  const started = await waitFor(
    () => up || exited,
    `H2O on ports ${httpPort} and ${httpsPort}`,
    opts.startTimeoutMs,
  ).then(
    () => up,
    () => false,
  );
  if (!started || child.pid === undefined) {
    const tail = await errorLogTail(dir);
    await stop();
    throw new Error(`H2O did not start (${bin} -c ${confFile}):\n${stderr}${tail}`);
  }
  return { pid: child.pid, httpPort, httpsPort, dir, indexBody: INDEX_BODY, stop };
}
