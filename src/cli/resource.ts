/** The resource of every span and metric: service.name and OTEL_RESOURCE_ATTRIBUTES, read from the CLI's env. */
import { InvalidArgumentError } from 'commander';

export const DEFAULT_SERVICE_NAME = 'h2o';

/** The SDK's limit for keys and values from the variable. */
const MAX_LENGTH = 255;

const FORMAT = "must be key=value pairs, with ',' and '=' in keys and values percent-encoded";

function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidArgumentError(FORMAT);
  }
}

/**
 * `key1=value1,key2=value2`, keys and values percent-encoded (',' and '=' must be), as the specification of
 * OTEL_RESOURCE_ATTRIBUTES says; empty entries are skipped.
 */
export function resourceAttributeList(raw: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const parts = entry.split('=');
    if (parts.length !== 2 || parts[0]!.trim() === '') throw new InvalidArgumentError(FORMAT);
    const key = decoded(parts[0]!.trim());
    const value = decoded(parts[1]!.trim());
    if (key.length > MAX_LENGTH || value.length > MAX_LENGTH)
      throw new InvalidArgumentError(`must have keys and values of at most ${MAX_LENGTH} characters`);
    out[key] = value;
  }
  return out;
}

/** service.name: the one given (--service-name or OTEL_SERVICE_NAME), else the attributes', else "h2o". */
export function resourceAttributes(
  attributes: Readonly<Record<string, string>>,
  serviceName: string | undefined,
): Record<string, string> {
  return {
    'service.name': DEFAULT_SERVICE_NAME,
    ...attributes,
    ...(serviceName === undefined ? {} : { 'service.name': serviceName }),
  };
}
