// The quicly probes the QUIC issue builds on, attached in-process through the kernel to the fixture: every one
// decodes to the socket format's fields, with the quicly connection pointer mapped to H2O's conn id.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { ProbeEvent } from '../../../src/events/types.js';
import { buildUsdtFixture, get, startUsdtFixture } from '../../../harness/usdt-fixture.js';
import type { UsdtFixture } from '../../../harness/usdt-fixture.js';
import { attachUsdt } from '../../../harness/usdt-attach.js';
import { skipBpf, waitFor } from '../../../harness/wait.js';

const QUIC_POINTS = [
  'h2o:h3s_accept',
  'h2o:h3s_destroy',
  'h2o:h3s_stream_set_state',
  'quicly:accept',
  'quicly:free',
  'quicly:new_path',
  'quicly:crypto_handshake',
  'quicly:packet_received',
  'quicly:packet_sent',
  'quicly:packet_lost',
  'quicly:pto',
  'quicly:cc_congestion',
  'quicly:handshake_done_send',
  'quicly:transport_close_receive',
  'quicly:stream_on_open',
  'quicly:stream_on_destroy',
];

describe('quicly probes through the kernel', { skip: skipBpf }, () => {
  let fx: UsdtFixture;
  const events: ProbeEvent[] = [];
  let connId = 0;

  before(async () => {
    fx = await startUsdtFixture(await buildUsdtFixture());
    const { source, running } = await attachUsdt(fx.pid, QUIC_POINTS, 5, (batch) => events.push(...batch));
    connId = Number(/C=(\d+)/.exec((await get(fx.port, '/fire/h3')).body)![1]);
    await waitFor(() => events.some((e) => e.type === 'free'), 'quicly:free', 5000);
    source.stop();
    assert.equal(await running, 'stopped');
    source.close();
  });

  after(async () => {
    await fx?.stop();
  });

  const one = (type: string, pred: (e: ProbeEvent) => boolean = () => true): ProbeEvent => {
    const found = events.filter((e) => e.type === type && pred(e));
    assert.equal(found.length, 1, `one ${type}, got ${found.length}`);
    return found[0]!;
  };

  test('every quicly event carries the conn id of its h3s_accept, even those fired before it', () => {
    const quic = events.filter((e) => e.module === 'quicly');
    assert.ok(quic.length >= 15, `${quic.length} quicly events`);
    for (const e of quic) assert.equal(e.fields.conn_id, connId, `${e.type} conn_id`);
    const accept = one('h3s_accept');
    assert.equal(accept.fields.quic, quic[0]!.fields.conn);
    // Released in order, before h3s_accept.
    assert.ok(events.indexOf(one('accept')) < events.indexOf(accept));
    assert.ok(events.indexOf(one('new_path')) < events.indexOf(one('accept')));
  });

  test('fields decode as the socket logs them (names, signedness, strings, stream ids)', () => {
    assert.deepEqual(one('new_path').fields, {
      conn: one('new_path').fields.conn,
      conn_id: connId,
      path_index: 0,
      remote: '127.0.0.1:54321',
    });
    assert.match(one('accept').fields.dcid as string, /^[0-9a-f]{16}$/);
    assert.equal(one('crypto_handshake').fields.ret, 0);
    const lost = one('packet_lost');
    assert.equal(lost.fields.pn, 2);
    assert.equal(lost.fields.packet_type, 3);
    const pto = one('pto');
    assert.deepEqual([pto.fields.inflight, pto.fields.cwnd, pto.fields.pto_count], [1200, 12000, 1]);
    const cc = one('cc_congestion');
    assert.deepEqual([cc.fields.max_lost_pn, cc.fields.flight, cc.fields.cwnd], [2, 2400, 12000]);
    assert.equal(one('packet_sent', (e) => e.fields.pn === 0).fields.ack_only, false);
    assert.equal(one('packet_received').fields.decrypted_len, 1200);
    const opened = events.filter((e) => e.type === 'stream_on_open').map((e) => e.fields.stream_id);
    assert.deepEqual(opened.sort(), [0, 2, 3, 7]);
    assert.deepEqual(one('stream_on_destroy').fields.stream_id, 0);
    assert.equal(one('stream_on_destroy').fields.err, 0);
    const close = one('transport_close_receive');
    assert.deepEqual(
      [close.fields.error_code, close.fields.frame_type, close.fields.reason_phrase],
      [0, 0, ''],
    );
    assert.equal(one('h3s_stream_set_state').fields.state, 7);
    assert.equal(one('h3s_destroy').fields.num_requests, 1);
    one('handshake_done_send');
  });

  test('times are epoch nanoseconds in event order', () => {
    const now = Date.now();
    for (const e of events) {
      assert.ok(Math.abs(now - e.timeMs) < 60_000);
      assert.ok(e.timeSubNs >= 0 && e.timeSubNs < 1e6);
    }
    const free = one('free');
    const accept = one('accept');
    assert.ok(free.timeMs * 1e6 + free.timeSubNs > accept.timeMs * 1e6 + accept.timeSubNs);
  });
});
