/**
 * The benchmark's input: the real captures (HTTP/1.1, HTTP/2 over TLS, HTTP/3 with every QUIC event), repeated
 * with fresh conn ids so the correlator does real work for every copy instead of hitting one connection.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { subscriptionFor } from '../src/events/catalogue.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const CAPTURES = ['http1.jsonl', 'http2.jsonl', 'http3.jsonl'];

export interface BenchStream {
  readonly bytes: Buffer;
  readonly events: number;
  readonly copies: number;
}

/** Only the points h2o-otel subscribes to by default: H2O writes nothing else to its h2olog client. */
function subscribed(text: string): string {
  const points = new Set(subscriptionFor({ responseHeaders: true, quicEvents: 'basic' }));
  return text
    .split('\n')
    .filter((line) => {
      const m = /^\{"module":"(\w+)","type":"(\w+)"/.exec(line);
      return m !== null && points.has(`${m[1]!}:${m[2]!}`);
    })
    .map((line) => line + '\n')
    .join('');
}

export function benchStream(targetEvents: number): BenchStream {
  const texts = CAPTURES.map((f) =>
    subscribed(readFileSync(join(repoRoot, 'test', 'fixtures', 'h2olog', f), 'latin1')),
  );
  const linesPerCopy = texts.reduce((n, t) => n + t.split('\n').filter((l) => l !== '').length, 0);
  const copies = Math.max(1, Math.ceil(targetEvents / linesPerCopy));
  const parts: string[] = [];
  let base = 0;
  for (let i = 0; i < copies; i++) {
    for (const t of texts) {
      parts.push(t.replace(/"conn_id":(\d+)/g, (_m, id: string) => `"conn_id":${base + Number(id)}`));
    }
    base += 1000;
  }
  // latin1 round-trips the captures' raw bytes exactly (some header values are not UTF-8).
  return { bytes: Buffer.from(parts.join(''), 'latin1'), events: copies * linesPerCopy, copies };
}
