/** `:path` and `:authority` → the url.* and server.* attributes, with sensitive query values scrubbed. */

/** Query parameters whose values are replaced by REDACTED (the semantic conventions' list plus common tokens). */
export const DEFAULT_SENSITIVE_QUERY_PARAMS: readonly string[] = [
  'AWSAccessKeyId',
  'Signature',
  'sig',
  'X-Goog-Signature',
  'access_token',
  'id_token',
  'refresh_token',
  'token',
  'api_key',
  'apikey',
  'password',
  'passwd',
  'secret',
  'client_secret',
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

export function redactQuery(query: string, sensitive: ReadonlySet<string>): string {
  if (sensitive.size === 0) return query;
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      if (eq < 0) return pair;
      let name = pair.slice(0, eq);
      try {
        name = decodeURIComponent(name.replaceAll('+', ' '));
      } catch {
        // Keep the raw name: a bad escape must not hide a secret from the check below.
      }
      return sensitive.has(name.toLowerCase()) ? `${pair.slice(0, eq)}=REDACTED` : pair;
    })
    .join('&');
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
