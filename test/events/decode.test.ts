// The JSON-lines decoder against what real H2O and the old BPF h2olog write.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { JsonLineDecoder } from '../../src/events/decode-json.js';
import { encodeEvent } from '../../src/events/encode-json.js';
import { newDecodeStats } from '../../src/events/types.js';
import type { ProbeEvent } from '../../src/events/types.js';
import { fixture } from '../../harness/cli.js';

function decode(
  input: Buffer | string,
  chunk = 1 << 20,
): { events: ProbeEvent[]; stats: ReturnType<typeof newDecodeStats> } {
  const stats = newDecodeStats();
  const d = new JsonLineDecoder({ maxLineBytes: 1 << 20, now: () => 42 }, stats);
  const events: ProbeEvent[] = [];
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  for (let i = 0; i < buf.length; i += chunk) d.push(buf.subarray(i, i + chunk), events);
  d.end(events);
  return { events, stats };
}

test('integers above 2^53 stay exact; \\/ escapes decode', () => {
  const { events } = decode(
    '{"module":"quicly","type":"stream_on_destroy","tid":1,"time":5,"conn":140317319897568,"conn_id":19,"stream_id":0,"err":4611686018427584512}\n' +
      '{"module":"h2o","type":"receive_request_header","tid":1,"time":5,"conn_id":1,"req_id":1,"name":":path","name_len":5,"value":"\\/a:12345678901234567,","value_len":22}\n',
  );
  assert.equal(events[0]!.fields.err, 4611686018427584512n);
  assert.equal(events[0]!.fields.conn, 140317319897568);
  assert.equal(events[1]!.fields.value, '/a:12345678901234567,');
});

test('lines split across any chunk boundary decode the same', async () => {
  const input = await readFile(fixture('http3.jsonl'));
  const whole = decode(input).events;
  for (const size of [1, 7, 4096]) assert.deepEqual(decode(input, size).events, whole);
  assert.equal(whole.length, 148);
});

test('raw bytes >= 0x80 that are not UTF-8 are kept visible as \\xNN', () => {
  const line = Buffer.concat([
    Buffer.from(
      '{"module":"h2o","type":"receive_request_header","tid":1,"time":5,"conn_id":1,"req_id":1,"name":"x","name_len":1,"value":"a',
    ),
    Buffer.from([0xff, 0xc3, 0xa9, 0xe2]),
    Buffer.from('","value_len":5}\n'),
  ]);
  const { events, stats } = decode(line);
  assert.equal(events[0]!.fields.value, 'a\\xffé\\xe2');
  assert.equal(stats.nonUtf8Lines, 1);
});

test('the old BPF h2olog format: dashes, seq, no module, lost-event lines', () => {
  const { events, stats } = decode(
    '{"type":"h1-accept","tid":3211,"seq":1,"conn-id":12,"sock":9435,"conn":9436,"conn-uuid":"5f0e1c2a-7b3d-4e8f-9a10-3c2d4b5e6f70","time":1600000000123}\n' +
      '{"type":"receive-request","tid":3211,"seq":2,"conn-id":12,"req-id":1,"http-version":257,"time":1600000000124}\n' +
      '{"type":"packet-sent","tid":3212,"seq":41,"conn":3,"time":1600000000201,"pn":0,"len":1252,"packet-type":0,"ack-only":0}\n' +
      '{"type":"h2olog-event-lost","seq":42,"time":1600000000300,"lost":17}\n',
  );
  assert.deepEqual(
    events.map((e) => [e.module, e.type]),
    [
      ['h2o', 'h1_accept'],
      ['h2o', 'receive_request'],
      ['quicly', 'packet_sent'],
    ],
  );
  assert.deepEqual(events[0]!.fields, {
    conn_id: 12,
    sock: 9435,
    conn: 9436,
    uuid: '5f0e1c2a-7b3d-4e8f-9a10-3c2d4b5e6f70',
  });
  assert.equal(events[1]!.fields.http_version, 257);
  assert.equal(stats.reportedLost, 17);
});

test('the 2024 socket format without tid and time gets the receive time', () => {
  const { events } = decode('{"module":"h2o","type":"h1_close","conn_id":3}\n');
  assert.equal(events[0]!.timeMs, 42);
  assert.equal(events[0]!.tid, 0);
});

test('encodeEvent writes the socket format back, bigints and sub-ms time included', async () => {
  const input = await readFile(fixture('http3.jsonl'));
  const events = decode(input).events;
  const again = decode(events.map((e) => encodeEvent(e)).join('\n') + '\n').events;
  assert.deepEqual(again, events);
  const withNs = { ...events[0]!, timeSubNs: 123456 };
  assert.equal(decode(encodeEvent(withNs) + '\n').events[0]!.timeSubNs, 123456);
});

test('a chunk of many lines decodes the same whether or not all of it is UTF-8, CRLF included', () => {
  const good = (i: number): string =>
    `{"module":"h2o","type":"receive_request_header","tid":1,"time":5,"conn_id":${i},"req_id":1,"name":"x","name_len":1,"value":"é${i}","value_len":3}`;
  const lines = [good(1), good(2) + '\r', good(3)];
  const utf8 = decode(lines.join('\n') + '\n');
  assert.deepEqual(
    utf8.events.map((e) => [e.fields.conn_id, e.fields.value]),
    [
      [1, 'é1'],
      [2, 'é2'],
      [3, 'é3'],
    ],
  );
  // One raw byte in the middle line sends the chunk down the line-by-line path: same events around it.
  const [before, after] = lines[1]!.split('é2');
  const mixed = decode(
    Buffer.concat([
      Buffer.from(lines[0] + '\n' + before!),
      Buffer.from([0xff]),
      Buffer.from(after! + '\n' + lines[2] + '\n'),
    ]),
  );
  assert.deepEqual(
    mixed.events.map((e) => e.fields.value),
    ['é1', '\\xff', 'é3'],
  );
  assert.equal(mixed.stats.nonUtf8Lines, 1);
});

test('the line limit counts bytes, not characters, on the whole-chunk path', () => {
  const stats = newDecodeStats();
  const d = new JsonLineDecoder({ maxLineBytes: 200, now: () => 42 }, stats);
  const line = (value: string): string =>
    `{"module":"h2o","type":"receive_request_header","tid":1,"time":5,"conn_id":1,"req_id":1,"name":"x","value":"${value}"}\n`;
  const out: ProbeEvent[] = [];
  // 100 characters but 200 bytes of value: over the limit; 50 two-byte characters: within it.
  d.push(Buffer.from(line('é'.repeat(100)) + line('é'.repeat(20))), out);
  assert.equal(stats.tooLong, 1);
  assert.equal(out.length, 1);
  assert.equal(out[0]!.fields.value, 'é'.repeat(20));
});

test('a line nested too deep is counted as tooDeep whatever else is wrong with it, long or short', () => {
  const deep = '[[[1]]]';
  const long = ',"pad":"' + 'x'.repeat(2048) + '"';
  const ok = '"module":"h2o","type":"h1_close","tid":1,"time":5,"conn_id":1';
  const lines = [
    `{${ok},"a":${deep}}`, // an event otherwise
    `{${ok},"a":${deep}${long}}`, // long: judged before the parse
    `{"tid":1,"a":${deep}}`, // no type
    `{"type":"h2olog-event-lost","lost":3,"a":${deep}}`, // the old format's lost marker
    `{${ok},"status":"x","a":${deep}}`, // a field problem first
    `{"a":${deep},${ok},"req_id":-1}`, // a field problem after it
    `{${ok},"a":${deep}`, // cut: not JSON
    deep, // not an object
  ];
  const { events, stats } = decode(lines.join('\n') + '\n');
  assert.equal(events.length, 0);
  assert.equal(stats.tooDeep, lines.length);
  assert.equal(stats.reportedLost + stats.malformed + stats.notEvents + stats.badFields + stats.badIds, 0);
  // One level of nesting is judged as any other line.
  const flat = decode(
    `{${ok},"a":[1]}\n{"tid":1,"a":[1]}\n{${ok},"status":[200]}\n{${ok},"a":[1]\n[[1]]\n` +
      `{"type":"h2olog-event-lost","lost":3,"a":{"b":1}}\n`,
  );
  assert.equal(flat.events.length, 1);
  assert.deepEqual(
    [flat.stats.notEvents, flat.stats.badStatuses, flat.stats.malformed, flat.stats.reportedLost],
    [1, 1, 2, 3],
  );
});
