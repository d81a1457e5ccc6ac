// The resource from OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME and --service-name, on plain data.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildCommand, resolveOptions } from '../../src/cli/options.js';
import { resourceAttributeList, resourceAttributes } from '../../src/cli/resource.js';

test('OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value, trimmed, percent-decoded, empty entries skipped', () => {
  assert.deepEqual(resourceAttributeList(' team = web ,, region=eu%2Cwest,note=a%3Db%20c,'), {
    team: 'web',
    region: 'eu,west',
    note: 'a=b c',
  });
  assert.deepEqual(resourceAttributeList('k%20ey=v'), { 'k ey': 'v' });
  assert.deepEqual(resourceAttributeList('empty='), { empty: '' });
});

test('OTEL_RESOURCE_ATTRIBUTES: an unencoded "=", a missing key, bad percent-encoding or a long value is refused', () => {
  for (const raw of ['a=b=c', 'novalue', '=v', 'a=%E0%A4%A', `k=${'v'.repeat(256)}`])
    assert.throws(
      () => resourceAttributeList(raw),
      /must (be key=value pairs|have keys and values of at most 255)/,
      raw,
    );
});

test('service.name: the one given, else the attributes\', else "h2o"', () => {
  assert.deepEqual(resourceAttributes({}, undefined), { 'service.name': 'h2o' });
  assert.deepEqual(resourceAttributes({ 'service.name': 'attr', team: 'web' }, undefined), {
    'service.name': 'attr',
    team: 'web',
  });
  assert.deepEqual(resourceAttributes({ 'service.name': 'attr' }, 'given'), { 'service.name': 'given' });
});

test('through the options: OTEL_SERVICE_NAME wins over the attributes, --service-name over both', () => {
  const env = { OTEL_RESOURCE_ATTRIBUTES: 'service.name=attr,team=web', OTEL_SERVICE_NAME: 'env' };
  const resolve = (args: string[]) =>
    resolveOptions(buildCommand().exitOverride(), ['node', 'h2o-otel', '--replay', 'x', ...args], env);
  assert.deepEqual(resolve([]).resourceAttributes, { 'service.name': 'env', team: 'web' });
  assert.deepEqual(resolve(['--service-name', 'flag']).resourceAttributes, {
    'service.name': 'flag',
    team: 'web',
  });
});
