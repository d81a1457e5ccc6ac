// Secrets never leave in clear, however a capture spells them: header names in any case, with spaces or control
// characters; query parameters in any encoding; URLs inside header values. Run through the whole pipeline (h2olog
// lines in, spans out) with the default lists, as `--replay` of a foreign or hand-edited capture would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { HeaderPolicyOptions } from '../../src/otel/header-policy.js';
import { replayInto, testPipeline } from '../../harness/pipeline.js';

type Pair = readonly [name: string, value: string];

/** One HTTP/1.1 request per entry, each on its own connection, as h2olog JSON lines. */
function capture(requests: readonly { path: string; request?: Pair[]; response?: Pair[] }[]): Buffer {
  const lines: object[] = [];
  const time = 1_795_400_000_000;
  requests.forEach((r, i) => {
    const conn = { module: 'h2o', tid: 1, time: time + i * 10, conn_id: i + 1 };
    lines.push({ ...conn, type: 'h1_accept', sock: 1000 + i });
    lines.push({ ...conn, type: 'receive_request', req_id: 1, http_version: 257 });
    const header = (type: string, [name, value]: Pair): object => ({ ...conn, type, req_id: 1, name, value });
    for (const h of [[':method', 'GET'] as const, [':path', r.path] as const, ...(r.request ?? [])])
      lines.push(header('receive_request_header', h));
    lines.push({ ...conn, type: 'send_response', req_id: 1, status: 200 });
    for (const h of r.response ?? []) lines.push(header('send_response_header', h));
    lines.push({ ...conn, type: 'h1_close' });
  });
  return Buffer.from(lines.map((l) => JSON.stringify(l) + '\n').join(''));
}

const ALL: HeaderPolicyOptions = { request: ['*'], response: ['*'], sanitize: [], maxValueLength: 4096 };

async function requestSpans(input: Buffer, headers: HeaderPolicyOptions = ALL): Promise<ReadableSpan[]> {
  const spans = await replayInto(testPipeline(headers), input);
  return spans
    .filter((s) => s.attributes['h2o.req_id'] !== undefined)
    .sort((a, b) => Number(a.attributes['h2o.conn_id']) - Number(b.attributes['h2o.conn_id']));
}

/** Every spelling a capture from another tool, or an edited replay, may give a secret header's name. */
// prettier-ignore
const SECRET_HEADER_NAMES = [
  'Authorization', 'AUTHORIZATION', 'authorization ', ' authorization', '\tauthorization', 'authorization\0',
  'auth\0orization', 'authorization\r\n', 'Cookie', 'COOKIE', 'cookie\0', 'Set-Cookie', 'SET-COOKIE',
  'Proxy-Authorization', 'proxy-authenticate', 'WWW-Authenticate', 'private-token', 'Private-Token', 'x-session-id',
  'X-Session-Id', 'x-api-key', 'X_API_KEY', 'x-csrf-token', 'x-xsrf-token', 'x-auth-token', 'x-my-secret',
  'X-Refresh-Token', 'x-user-password', 'x-upstream-apikey', 'x-amz-security-token', 'X-Vault-Token',
  // Names no HTTP parser accepts: a disguise (zero-width space, Cyrillic а, a space inside), never clear.
  'autho\u200brization', '\u0430uthorization', 'x-request id',
];

test('a secret header is REDACTED whatever the case, whitespace or control characters of its name', async () => {
  const requests = SECRET_HEADER_NAMES.map((name, i) => ({
    path: '/',
    request: [[name, `secret-request-${i}`] as const],
    response: [[name, `secret-response-${i}`] as const],
  }));
  const spans = await requestSpans(capture(requests));
  assert.equal(spans.length, SECRET_HEADER_NAMES.length);
  spans.forEach((span, i) => {
    const name = JSON.stringify(SECRET_HEADER_NAMES[i]);
    const captured = Object.entries(span.attributes).filter(([k]) => k.startsWith('http.re'));
    const headers = captured.filter(([k]) => k.includes('.header.'));
    assert.equal(headers.length, 2, `${name}: captured once each way: ${JSON.stringify(captured)}`);
    for (const [key, value] of headers) {
      assert.deepEqual(value, ['REDACTED'], `${name} → ${key}`);
      // The attribute key is the name as H2O spells it: lowercase, no control characters, trimmed.
      assert.ok(
        [...key].every((c) => c >= ' ' && c.toLowerCase() === c),
        `${name} → ${key}`,
      );
    }
    assert.doesNotMatch(JSON.stringify(span.attributes), /secret-re/, name);
  });
});

test('the attribute key of a foreign spelling is the lowercase name; both spellings land in one list', async () => {
  const [span] = await requestSpans(
    capture([
      {
        path: '/',
        request: [
          ['X-Request-Id', 'a'],
          ['x-request-id ', 'b'],
          ['Cookie', 'c=1'],
        ],
      },
    ]),
  );
  assert.deepEqual(span!.attributes['http.request.header.x-request-id'], ['a', 'b']);
  assert.deepEqual(span!.attributes['http.request.header.cookie'], ['REDACTED']);
});

test('an allow list matches names in any spelling, and still redacts the secrets it names', async () => {
  const headers: HeaderPolicyOptions = {
    request: ['x-request-id', 'Authorization ', 'referer'],
    response: ['set-cookie'],
    sanitize: [],
    maxValueLength: 4096,
  };
  const [span] = await requestSpans(
    capture([
      {
        path: '/',
        request: [
          ['X-Request-Id', 'r-1'],
          ['AUTHORIZATION', 'Bearer secret-1'],
          ['Referer', 'https://a.example/p?token=secret-2&q=1'],
          ['x-other', 'not captured'],
        ],
        response: [['Set-Cookie', 'sid=secret-3']],
      },
    ]),
    headers,
  );
  const a = span!.attributes;
  assert.deepEqual(a['http.request.header.x-request-id'], ['r-1']);
  assert.deepEqual(a['http.request.header.authorization'], ['REDACTED']);
  assert.deepEqual(a['http.request.header.referer'], ['https://a.example/p?token=REDACTED&q=1']);
  assert.deepEqual(a['http.response.header.set-cookie'], ['REDACTED']);
  assert.equal(a['http.request.header.x-other'], undefined);
  assert.doesNotMatch(JSON.stringify(a), /secret-/);
});

test('--sanitize-headers names match in any spelling too', async () => {
  const [span] = await requestSpans(
    capture([
      {
        path: '/',
        request: [
          ['X-Internal-Sig', 'secret-1'],
          ['x-internal-sig\0', 'secret-2'],
        ],
      },
    ]),
    { ...ALL, sanitize: ['x-internal-sig'] },
  );
  assert.deepEqual(span!.attributes['http.request.header.x-internal-sig'], ['REDACTED', 'REDACTED']);
});

test('headers that are not secrets keep their values', async () => {
  // prettier-ignore
  const plain: Pair[] = [
    ['x-request-id', 'r-1'], ['Accept', 'text/html;q=0.9'], ['content-type', 'text/plain; charset=utf-8'],
    ['sec-websocket-key', 'dGhlIHNhbXBsZQ=='], ['X-Forwarded-Proto', 'https'], ['cache-control', 'max-age=60'],
  ];
  const [span] = await requestSpans(capture([{ path: '/', request: plain }]));
  for (const [name, value] of plain)
    assert.deepEqual(span!.attributes[`http.request.header.${name.toLowerCase()}`], [value], name);
});

/** Query strings, each with the secret `S` in some encoding, and what url.query must be. */
// prettier-ignore
const QUERIES: readonly [query: string, redacted: string][] = [
  ['X-Amz-Signature=S&X-Amz-Date=20240101T000000Z', 'X-Amz-Signature=REDACTED&X-Amz-Date=20240101T000000Z'],
  ['X-Amz-Credential=S%2F20240101&X-Amz-Security-Token=S', 'X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED'],
  ['x-amz-signature=S', 'x-amz-signature=REDACTED'],
  ['AWSAccessKeyId=S&Signature=S&Expires=1', 'AWSAccessKeyId=REDACTED&Signature=REDACTED&Expires=1'],
  ['sv=2020&sig=S', 'sv=2020&sig=REDACTED'],
  ['X-Goog-Signature=S', 'X-Goog-Signature=REDACTED'],
  ['key=S&q=1', 'key=REDACTED&q=1'],
  ['code=S&state=xyz', 'code=REDACTED&state=xyz'],
  ['auth=S', 'auth=REDACTED'],
  ['jwt=S', 'jwt=REDACTED'],
  ['session_id=S&sessionid=S&sid=S', 'session_id=REDACTED&sessionid=REDACTED&sid=REDACTED'],
  ['token%5B%5D=S', 'token%5B%5D=REDACTED'],
  ['token[]=S&token[1]=S', 'token[]=REDACTED&token[1]=REDACTED'],
  ['user[password]=S&user[name]=bob', 'user[password]=REDACTED&user[name]=bob'],
  ['a=1;token=S', 'a=1;token=REDACTED'],
  ['tok%65n=S', 'tok%65n=REDACTED'],
  ['tok%65n=S&bad=%ZZ&t%ZZ=1', 'tok%65n=REDACTED&bad=%ZZ&t%ZZ=1'],
  ['Token=S&TOKEN=S&+token=S', 'Token=REDACTED&TOKEN=REDACTED&+token=REDACTED'],
  ['api_key=S&apikey=S&api-key=S', 'api_key=REDACTED&apikey=REDACTED&api-key=REDACTED'],
  ['access_token=S&refresh_token=S&id_token=S', 'access_token=REDACTED&refresh_token=REDACTED&id_token=REDACTED'],
  ['client_secret=S&password=S&secret=S', 'client_secret=REDACTED&password=REDACTED&secret=REDACTED'],
  ['myAccessToken=S&x_session=S', 'myAccessToken=REDACTED&x_session=REDACTED'],
  ['q=h2o&page=2&author=bob&keyword=k&monkey=m&codec=h264', 'q=h2o&page=2&author=bob&keyword=k&monkey=m&codec=h264'],
];

test('sensitive query parameters are REDACTED in every encoding; others are kept', async () => {
  const spans = await requestSpans(capture(QUERIES.map(([q]) => ({ path: `/p?${q}` }))), {
    ...ALL,
    request: [],
    response: [],
  });
  spans.forEach((span, i) => assert.equal(span.attributes['url.query'], QUERIES[i]![1], QUERIES[i]![0]));
});

test('path parameters (;jsessionid=) are REDACTED in url.path', async () => {
  const [span] = await requestSpans(capture([{ path: '/shop;jsessionid=S;v=2/cart?a=1' }]));
  assert.equal(span!.attributes['url.path'], '/shop;jsessionid=REDACTED;v=2/cart');
});

/** Header values that hold URLs, and what is exported. */
// prettier-ignore
const URL_VALUES: readonly [name: string, value: string, exported: string][] = [
  ['referer', 'https://a.example/cb?token=S&q=1', 'https://a.example/cb?token=REDACTED&q=1'],
  ['Referer', 'https://a.example/x?X-Amz-Signature=S#top', 'https://a.example/x?X-Amz-Signature=REDACTED#top'],
  ['location', '/cb#access_token=S&state=1', '/cb#access_token=REDACTED&state=1'],
  ['content-location', '/r;jsessionid=S', '/r;jsessionid=REDACTED'],
  ['origin', 'https://user:S@a.example', 'https://REDACTED:REDACTED@a.example'],
  ['link', '</p?page=2&sig=S>; rel="next"', '</p?page=2&sig=REDACTED>; rel="next"'],
  ['refresh', '0; url=/next?code=S', '0; url=/next?code=REDACTED'],
  ['x-original-uri', '/api?next=/x?api_key=S', '/api?next=/x?api_key=REDACTED'],
];

test('sensitive query values inside header values that are URLs are REDACTED', async () => {
  const spans = await requestSpans(
    capture(
      URL_VALUES.map(([name, value]) => ({ path: '/', request: [[name, value]], response: [[name, value]] })),
    ),
  );
  spans.forEach((span, i) => {
    const [name, , exported] = URL_VALUES[i]!;
    const key = name.toLowerCase();
    assert.deepEqual(span.attributes[`http.request.header.${key}`], [exported], name);
    assert.deepEqual(span.attributes[`http.response.header.${key}`], [exported], name);
  });
});
