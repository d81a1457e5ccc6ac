// Proves the test H2O: Debian's 2.2.5 built from its source package, with its debug info, serving the responses the
// request-probe tests trace (HTTP/1.1 200 and 404, HTTP/2 over TLS, a proxy's 502).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:http2';
import { after, before, test } from 'node:test';

import { buildDebianH2o } from '../../harness/debian-h2o.js';
import { startH2o, type H2oServer } from '../../harness/h2o-server.js';

/** A cold build takes tens of seconds, and the apt steps more on a slow mirror. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

let bin: string;
let h2o: H2oServer | undefined;

function server(): H2oServer {
  assert.ok(h2o, 'H2O did not start');
  return h2o;
}

before(
  async () => {
    bin = await buildDebianH2o();
    h2o = await startH2o(bin);
  },
  { timeout: BUILD_TIMEOUT_MS },
);

after(async () => {
  await h2o?.stop();
});

function http1Get(port: number, path: string): Promise<{ status: number; version: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion, body }));
    });
    req.on('error', reject).end();
  });
}

function http2Get(port: number, path: string): Promise<{ status: number; alpn: string; body: string }> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    session.on('error', reject);
    const stream = session.request({ ':path': path });
    let status = 0;
    let body = '';
    stream.on('response', (headers) => (status = Number(headers[':status'])));
    stream.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    stream.on('end', () => {
      const alpn = session.alpnProtocol ?? '';
      session.close();
      resolve({ status, alpn, body });
    });
    stream.on('error', reject);
  });
}

test('HTTP/1.1: the static file is 200, a missing one 404', async () => {
  const ok = await http1Get(server().httpPort, '/');
  assert.equal(ok.status, 200);
  assert.equal(ok.version, '1.1');
  assert.equal(ok.body, server().indexBody);
  const missing = await http1Get(server().httpPort, '/missing.txt');
  assert.equal(missing.status, 404);
});

test('HTTP/2 over TLS: the static file is 200', async () => {
  const res = await http2Get(server().httpsPort, '/');
  assert.equal(res.alpn, 'h2');
  assert.equal(res.status, 200);
  assert.equal(res.body, server().indexBody);
});

test('the reverse proxy to an unreachable upstream answers 502', async () => {
  const res = await http1Get(server().httpPort, '/proxy/anything');
  assert.equal(res.status, 502);
});

test('the binary keeps its DWARF: pahole lays out st_h2o_req_t with version and timestamps', async () => {
  const layout = await new Promise<string>((resolve, reject) => {
    execFile(
      'pahole',
      ['-C', 'st_h2o_req_t', bin],
      { maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`pahole failed: ${stderr || err.message}`));
        else resolve(stdout);
      },
    );
  });
  assert.match(layout, /^struct st_h2o_req_t \{/m);
  assert.match(layout, /\bint\s+version;/);
  assert.match(layout, /\}\s*timestamps;/);
});
