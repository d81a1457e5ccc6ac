/** `:path` and `:authority` → the url.* and server.* attributes, with sensitive query values scrubbed. */
import { PerName, REDACTED, SECRET_NAME_PARTS, SecretNames } from './secret-names.js';

/**
 * Query parameters always redacted. The semantic conventions' list for `url.query` (semconv 1.45: X-Amz-Signature,
 * X-Amz-Credential, X-Amz-Security-Token, AWSAccessKeyId, Signature, sig, X-Goog-Signature) — matched here without
 * regard to case, where the conventions say case-sensitive, because a redaction that misses `x-amz-signature`
 * leaks it — plus OAuth/OIDC, session and API-key names.
 */
export const DEFAULT_SENSITIVE_QUERY_PARAMS: readonly string[] = [
  'X-Amz-Signature',
  'X-Amz-Credential',
  'X-Amz-Security-Token',
  'AWSAccessKeyId',
  'Signature',
  'sig',
  'X-Goog-Signature',
  'X-Goog-Credential',
  'access_token',
  'refresh_token',
  'id_token',
  'token',
  'client_secret',
  'code',
  'assertion',
  'SAMLResponse',
  'ticket',
  'jwt',
  'auth',
  'auth_key',
  'key',
  'api_key',
  'apikey',
  'password',
  'passwd',
  'pwd',
  'secret',
  'session_id',
  'sessionid',
  'sid',
  'jsessionid',
  'PHPSESSID',
  'hmac',
  'otp',
];

export interface SplitTarget {
  readonly path: string;
  readonly query: string | undefined;
}

export function splitTarget(target: string): SplitTarget {
  const hash = target.indexOf('#');
  const t = hash >= 0 ? target.slice(0, hash) : target;
  const q = t.indexOf('?');
  return q < 0 ? { path: t, query: undefined } : { path: t.slice(0, q), query: t.slice(q + 1) };
}

/**
 * The query parameters whose values are redacted, with the built-in name parts (`*token*`, `*secret*`, ...).
 * A name is judged as the server reads it — percent-decoded, and each `[...]` part of `user[password]` or
 * `token[]` on its own — once per distinct spelling.
 */
export class SensitiveQueryParams {
  private readonly _names: SecretNames;
  private readonly _verdicts = new PerName((rawName) => this._judge(decodeName(rawName)));

  constructor(names: readonly string[]) {
    this._names = new SecretNames(names, SECRET_NAME_PARTS);
  }

  /** `rawName` as written in the URL. */
  has(rawName: string): boolean {
    return this._verdicts.get(rawName);
  }

  private _judge(name: string): boolean {
    if (this._names.has(name)) return true;
    if (!name.includes('[')) return false;
    return name.split(/[[\]]+/).some((part) => part.length > 0 && this._names.has(part));
  }
}

function decodeName(raw: string): string {
  const plus = raw.replaceAll('+', ' ');
  try {
    return decodeURIComponent(plus);
  } catch {
    // A bad escape elsewhere must not keep `%74oken` from reading as `token`.
    return plus.replace(/%([0-9a-f]{2})/gi, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

const AMPERSAND = 0x26;
const SEMICOLON = 0x3b;
const QUESTION = 0x3f;
const HASH = 0x23;
const SPACE = 0x20;

/** `a=1&token=x;sig=y` → `a=1&token=REDACTED;sig=REDACTED`: pairs split on `&` and `;`, names kept. */
export function redactQuery(query: string, sensitive: SensitiveQueryParams): string {
  let out: string | undefined;
  let copied = 0;
  let start = 0;
  for (let i = 0; i <= query.length; i++) {
    if (i < query.length) {
      const c = query.charCodeAt(i);
      if (c !== AMPERSAND && c !== SEMICOLON) continue;
    }
    const eq = query.indexOf('=', start);
    if (eq >= 0 && eq < i && sensitive.has(query.slice(start, eq))) {
      out = (out ?? '') + query.slice(copied, eq + 1) + REDACTED;
      copied = i;
    }
    start = i + 1;
  }
  return out === undefined ? query : out + query.slice(copied);
}

/** Path parameters: `/app;jsessionid=X/b` → `/app;jsessionid=REDACTED/b`. */
export function redactPath(path: string, sensitive: SensitiveQueryParams): string {
  if (!path.includes(';')) return path;
  return path.replace(/;[^/]*/g, (params) => ';' + redactQuery(params.slice(1), sensitive));
}

/** `scheme://user:password@` (semantic conventions: both replaced by REDACTED). */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@<>"']*@/gi;
/** What ends a run of parameters: `\s` of a regular expression, and `<>"'?#;`. */
const PARAMS_END = /[\s<>"'?#;]/;

function endsParams(c: number): boolean {
  // Printable ASCII other than these never does: the test below is for the rest.
  if (c > 0x20 && c < 0x7f)
    return c === 0x3c || c === 0x3e || c === 0x22 || c === 0x27 || c === 0x3f || c === 0x23 || c === 0x3b;
  return PARAMS_END.test(String.fromCharCode(c));
}

/**
 * A header value that may hold URLs (`referer`, `location`, `link`, `refresh`, a rewritten `x-original-uri`...):
 * the sensitive parameters of their queries, fragments and paths, and their user:password, redacted. Each run of
 * parameters after `?`, `#` (OAuth puts tokens in fragments) or `;` and the spaces after it, up to a space, quote,
 * angle bracket or the next such mark, goes through `redactQuery`. A scan, not a replace with a callback: nearly
 * every value (`text/html; charset=utf-8`) comes out as it went in, and then costs no new string.
 */
export function redactUrls(text: string, sensitive: SensitiveQueryParams): string {
  let t = text;
  if (t.includes('@')) t = t.replace(USERINFO, `$1${REDACTED}:${REDACTED}@`);
  if (!t.includes('=')) return t;
  let out: string | undefined;
  let copied = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c !== QUESTION && c !== HASH && c !== SEMICOLON) continue;
    let from = i + 1;
    while (t.charCodeAt(from) === SPACE) from++;
    let to = from;
    while (to < t.length && !endsParams(t.charCodeAt(to))) to++;
    const params = t.slice(from, to);
    const redacted = redactQuery(params, sensitive);
    if (redacted !== params) {
      out = (out ?? '') + t.slice(copied, from) + redacted;
      copied = to;
    }
    i = to - 1;
  }
  return out === undefined ? t : out + t.slice(copied);
}

export interface Authority {
  readonly host: string;
  readonly port: number | undefined;
}

/** `host`, `host:port`, `[v6]:port` → parts; undefined when it does not parse. */
export function parseAuthority(authority: string): Authority | undefined {
  if (authority.length === 0) return undefined;
  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) return undefined;
    host = authority.slice(1, close);
    const rest = authority.slice(close + 1);
    if (rest.startsWith(':')) portText = rest.slice(1);
    else if (rest.length > 0) return undefined;
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon >= 0 && authority.indexOf(':') === colon) {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    } else {
      host = authority;
    }
  }
  if (host.length === 0) return undefined;
  if (portText === undefined || portText.length === 0) return { host, port: undefined };
  const port = Number(portText);
  return Number.isInteger(port) && port > 0 && port < 65536 ? { host, port } : { host, port: undefined };
}

/** `ip:port` / `[v6]:port` as H2O writes QUIC path addresses. */
export function parseSocketAddress(text: string): Authority | undefined {
  return parseAuthority(text);
}

export function defaultPort(scheme: string | undefined): number | undefined {
  if (scheme === 'https') return 443;
  if (scheme === 'http') return 80;
  return undefined;
}
