// A span's attributes as interned keys and values: object semantics (a rewritten key keeps its place), the object
// form built once per change, and a bounded key registry.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AttributeList, attrKey } from '../../src/otel/attribute-list.js';

test('keys are interned: one key per name, ids dense and distinct', () => {
  const a = attrKey('test.interned.a');
  const b = attrKey('test.interned.b');
  assert.equal(attrKey('test.interned.a'), a);
  assert.notEqual(a.id, b.id);
  assert.ok(a.id >= 0 && b.id >= 0);
});

test('set rewrites a key in its first place, as an object property; push and set append new keys', () => {
  const list = new AttributeList();
  const [x, y, z] = [attrKey('test.x'), attrKey('test.y'), attrKey('test.z')];
  list.push(x, 1);
  list.push(y, 'two');
  list.set(x, 3);
  list.set(z, [true]);
  const object: Record<string, unknown> = { 'test.x': 1, 'test.y': 'two' };
  object['test.x'] = 3;
  object['test.z'] = [true];
  assert.deepEqual(
    list.keys.map((k) => k.name),
    Object.keys(object),
  );
  assert.deepEqual(list.values, [3, 'two', [true]]);
  assert.equal(list.get(x), 3);
  assert.equal(list.get(attrKey('test.absent')), undefined);
});

test('the object form is built once, and again after a write', () => {
  const list = AttributeList.from({ 'test.a': 1, 'test.b': 'b' });
  const first = list.toAttributes();
  assert.deepEqual(first, { 'test.a': 1, 'test.b': 'b' });
  assert.equal(list.toAttributes(), first);
  list.set(attrKey('test.a'), 2);
  const second = list.toAttributes();
  assert.notEqual(second, first);
  assert.deepEqual(Object.entries(second), [
    ['test.a', 2],
    ['test.b', 'b'],
  ]);
  list.push(attrKey('test.c'), undefined);
  assert.deepEqual(Object.keys(list.toAttributes()), ['test.a', 'test.b', 'test.c']);
});

test('assign is Object.assign: existing keys keep their place, new ones follow, undefined values kept', () => {
  const list = AttributeList.from({ 'test.p': 1, 'test.q': 2 });
  list.assign({ 'test.r': 3, 'test.p': 4, 'test.u': undefined });
  assert.deepEqual(Object.entries(list.toAttributes()), [
    ['test.p', 4],
    ['test.q', 2],
    ['test.r', 3],
    ['test.u', undefined],
  ]);
});

test('the registry is bounded: past it, names get keys of their own (id -1), still found by name', () => {
  let overflow = attrKey('test.fill.0');
  for (let i = 1; overflow.id >= 0; i++) {
    assert.ok(i <= 10_000, 'the registry never filled');
    overflow = attrKey(`test.fill.${i}`);
  }
  assert.equal(overflow.id, -1);
  const again = attrKey(overflow.name);
  assert.notEqual(again, overflow);
  assert.equal(again.id, -1);
  const list = new AttributeList();
  list.push(overflow, 'first');
  list.set(again, 'second');
  assert.deepEqual(list.toAttributes(), { [overflow.name]: 'second' });
  // Names interned before the bound keep their keys.
  assert.equal(attrKey('test.fill.0').id >= 0, true);
});
