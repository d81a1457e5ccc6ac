/**
 * The benchmark's input: the real captures (HTTP/1.1, HTTP/2 over TLS, HTTP/3 with every QUIC event), repeated
 * with fresh conn ids so the correlator does real work for every copy instead of hitting one connection.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const CAPTURES = ['http1.jsonl', 'http2.jsonl', 'http3.jsonl'];

export interface BenchStream {
  readonly bytes: Buffer;
  readonly events: number;
  readonly copies: number;
}

export function benchStream(targetEvents: number): BenchStream {
  const texts = CAPTURES.map((f) => readFileSync(join(repoRoot, 'test', 'fixtures', 'h2olog', f), 'latin1'));
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
