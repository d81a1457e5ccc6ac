/**
 * The fields later stages read, checked by type and range as an event is decoded. A line whose id is 5.5, -5 or
 * 1e308, or whose status is a string, is not H2O's: taken as it is, it could open a connection on a live one's
 * socket or rewrite a request's status. Such a line is dropped and counted under the reason (`DecodeStats`).
 * Types follow H2O's emitters (h2o-tracing-interfaces §1, §2): ids and sizes are unsigned, quicly's stream ids
 * signed (its crypto streams are negative), pointers unsigned 64-bit (bigint above 2^53).
 */
import type { DecodeStats, FieldValue } from './types.js';

/** Why an event was dropped: the counter it is counted in. */
export type FieldProblem = keyof Pick<DecodeStats, 'badIds' | 'badStatuses' | 'badVersions' | 'badFields'>;

/** An unsigned integer JavaScript holds exactly: H2O's conn and request ids, thread ids, sizes. */
export function isCount(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function isInteger(v: unknown): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** A pointer or other unsigned 64-bit value: above 2^53 the decoder keeps it exact as a bigint. */
function isUnsigned64(v: unknown): boolean {
  return typeof v === 'bigint' ? v >= 0n && v < 1n << 64n : isCount(v);
}

/** The problem with field `key` of value `v`, if it is one the later stages read and `v` does not fit it. */
export function fieldProblem(key: string, v: unknown): FieldProblem | undefined {
  // A switch compares the name with its cases in order: the keys every line has come first, and end it at once.
  switch (key) {
    case 'module':
    case 'type':
    case 'tid':
    case 'time':
      return undefined;
    case 'conn_id':
    case 'req_id':
    case 'path_index':
      return isCount(v) ? undefined : 'badIds';
    case 'stream_id':
      return isInteger(v) ? undefined : 'badIds';
    case 'sock':
    case 'tls':
    case 'conn':
      return isUnsigned64(v) ? undefined : 'badIds';
    case 'status':
      return isInteger(v) && (v as number) >= 100 && (v as number) <= 999 ? undefined : 'badStatuses';
    case 'http_version':
      return isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffff ? undefined : 'badVersions';
    case 'ret':
      return isInteger(v) ? undefined : 'badFields';
    case 'off':
    case 'num_bytes':
      return isUnsigned64(v) ? undefined : 'badFields';
    case 'name':
    case 'value':
    case 'uuid':
    case 'conn_uuid':
    case 'label':
    case 'remote':
      return typeof v === 'string' ? undefined : 'badFields';
    case 'success':
    case 'is_server':
    case 'is_fin':
      return typeof v === 'boolean' ? undefined : 'badFields';
    default:
      return undefined;
  }
}

/** The first problem among an event's fields. */
export function fieldsProblem(fields: Readonly<Record<string, FieldValue>>): FieldProblem | undefined {
  for (const key in fields) {
    const p = fieldProblem(key, fields[key]);
    if (p !== undefined) return p;
  }
  return undefined;
}
