// Fields later stages read, by type and range; and the nesting bound checked before JSON.parse.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldProblem, fieldsProblem } from '../../src/events/field-checks.js';
import { nestedBeyond } from '../../src/events/json-depth.js';

test('H2O values pass: ids, negative quicly stream ids, pointers above 2^53, statuses, versions, strings, flags', () => {
  const good: [string, unknown][] = [
    ['conn_id', 0],
    ['req_id', Number.MAX_SAFE_INTEGER],
    ['stream_id', -3],
    ['sock', 94490340313184],
    ['tls', 18446744073709551615n],
    ['status', 100],
    ['status', 999],
    ['http_version', 768],
    ['ret', -1],
    ['off', 0],
    ['name', ':path'],
    ['is_fin', false],
    ['err', 'any other field is not judged'],
    ['rtt.smoothed', 1.5],
  ];
  for (const [key, v] of good) assert.equal(fieldProblem(key, v), undefined, `${key} ${String(v)}`);
});

test('values H2O never writes are problems, each under its reason', () => {
  const bad: [string, unknown, string][] = [
    ['conn_id', 5.5, 'badIds'],
    ['conn_id', -5, 'badIds'],
    ['conn_id', 1e308, 'badIds'],
    ['conn_id', 2n ** 60n, 'badIds'],
    ['req_id', '1', 'badIds'],
    ['stream_id', 2.5, 'badIds'],
    ['sock', -1, 'badIds'],
    ['tls', 2n ** 64n, 'badIds'],
    ['status', '200', 'badStatuses'],
    ['status', null, 'badStatuses'],
    ['status', 1e300, 'badStatuses'],
    ['status', 99, 'badStatuses'],
    ['http_version', '257', 'badVersions'],
    ['http_version', 0x10000, 'badVersions'],
    ['ret', 1e300, 'badFields'],
    ['num_bytes', -1, 'badFields'],
    ['name', 5, 'badFields'],
    ['success', 1, 'badFields'],
  ];
  for (const [key, v, why] of bad) assert.equal(fieldProblem(key, v), why, `${key} ${String(v)}`);
  assert.equal(fieldsProblem({ conn_id: 1, req_id: 1, status: '200' }), 'badStatuses');
  assert.equal(fieldsProblem({ conn_id: 1, req_id: 1, status: 200 }), undefined);
});

test('nesting: flat lines and one level more pass; deeper is found, brackets inside strings are not nesting', () => {
  assert.equal(nestedBeyond('{"a":1,"v":"[::1]:443"}'), false);
  assert.equal(nestedBeyond('{"a":[1],"b":{"c":2}}'), false);
  assert.equal(nestedBeyond('{"v":"\\"[[[[[[\\"","w":"{{{"}'), false);
  assert.equal(nestedBeyond('{"a":[[1]]}'), true);
  assert.equal(nestedBeyond('{"a":' + '['.repeat(1_000_000)), true);
});
