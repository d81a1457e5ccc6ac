// A stand-in for H2O's h2olog handler, runnable on its own (in a test pod's "h2o" container):
//   node dist/harness/h2olog-standin.js SOCKET CAPTURE [ROUNDS]
// It listens on the unix socket SOCKET, answers the h2olog request as H2O does (HTTP/1.1 200, then the stream),
// and writes the capture's lines ROUNDS times (default 1) with fresh conn ids and the current time, then keeps the
// connection open as H2O does. Prints `READY` once listening and `SENT n` after each client got every line.
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

const [socketPath, capturePath, roundsArg] = process.argv.slice(2);
if (socketPath === undefined || capturePath === undefined) {
  process.stderr.write('usage: h2olog-standin.js SOCKET CAPTURE [ROUNDS]\n');
  process.exit(2);
}
const rounds = Number(roundsArg ?? '1');
const lines = readFileSync(capturePath, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '');
/** Conn ids of round r are moved past every id of the capture, so rounds never share a connection. */
const CONN_ID_STRIDE = 1_000_000;

function round(r: number): string {
  const now = Date.now();
  return (
    lines
      .map((l) =>
        l
          .replace(/"time":\d+/, `"time":${now}`)
          .replace(/"conn_id":(\d+)/g, (_m, id: string) => `"conn_id":${Number(id) + r * CONN_ID_STRIDE}`),
      )
      .join('\n') + '\n'
  );
}

rmSync(socketPath, { force: true });
const server = createServer({ allowHalfOpen: true }, (socket) => {
  socket.on('error', () => undefined);
  socket.once('data', () => {
    socket.write('HTTP/1.1 200 OK\r\n\r\n');
    let n = 0;
    for (let r = 0; r < rounds; r++) {
      socket.write(round(r));
      n += lines.length;
    }
    process.stdout.write(`SENT ${n}\n`);
  });
});
server.listen(socketPath, () => process.stdout.write('READY\n'));
const stop = (): void => {
  server.close();
  rmSync(socketPath, { force: true });
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
