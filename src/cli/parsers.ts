/**
 * Parsers of flag arguments and variables. Each throws InvalidArgumentError with what the value must be; the
 * caller names the flag or variable.
 */
import { InvalidArgumentError } from 'commander';

export function integerAtLeast(min: number): (raw: string) => number {
  return (raw) => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`must be an integer >= ${min}`);
    return n;
  };
}

export function tcpPort(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < 1 || n > 65_535)
    throw new InvalidArgumentError('must be a TCP port, 1 to 65535');
  return n;
}

export function positiveNumber(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new InvalidArgumentError('must be a positive number');
  return n;
}

export function ratio(raw: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1)
    throw new InvalidArgumentError('must be a number between 0 and 1');
  return n;
}

/** MiB, as the BPF ring buffer needs: a power of two. */
export function ringSizeMiB(raw: string): number {
  const mib = Number(raw);
  if (!Number.isInteger(mib) || mib < 1 || mib > 1024 || (mib & (mib - 1)) !== 0)
    throw new InvalidArgumentError('must be a power of two between 1 and 1024 (MiB)');
  return mib;
}

export function httpUrl(raw: string): string {
  const url = raw.trim();
  try {
    const u = new URL(url);
    if (u.protocol === 'http:' || u.protocol === 'https:') return url;
  } catch {
    // Reported below, as any other scheme.
  }
  throw new InvalidArgumentError('must be an http:// or https:// URL');
}

function headerEntry(part: string): [string, string] | undefined {
  const eq = part.indexOf('=');
  if (eq <= 0) return undefined;
  const key = part.slice(0, eq).trim().toLowerCase();
  let value = part.slice(eq + 1).trim();
  try {
    value = decodeURIComponent(value);
  } catch {
    // Not URL-encoded: kept as written.
  }
  return key.length > 0 ? [key, value] : undefined;
}

/** `k1=v1,k2=v2` (OTEL_EXPORTER_OTLP_HEADERS; values URL-encoded) → a record; malformed entries are skipped. */
export function headerList(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of raw.split(',')) {
    const entry = headerEntry(part);
    if (entry !== undefined) out[entry[0]] = entry[1];
  }
  return out;
}

/** `--otlp-header key=value[,key2=value2]`: as the variable, but at least one header. */
export function headerArgument(raw: string): Record<string, string> {
  const out = headerList(raw);
  if (Object.keys(out).length === 0) throw new InvalidArgumentError('must look like key=value');
  return out;
}
