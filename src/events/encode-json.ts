/** ProbeEvent → one h2olog socket-format JSON line, for `--record`. `--replay` reads it back unchanged. */
import { COMMON_KEYS } from './types.js';
import type { FieldValue, ProbeEvent } from './types.js';

function encodeValue(v: FieldValue): string {
  switch (typeof v) {
    case 'string':
      return JSON.stringify(v);
    case 'bigint':
      return v.toString();
    default:
      return String(v);
  }
}

export function encodeEvent(ev: ProbeEvent): string {
  let line = `{"module":${JSON.stringify(ev.module)},"type":${JSON.stringify(ev.type)},"tid":${ev.tid},"time":${ev.timeMs}`;
  if (ev.timeSubNs !== 0) line += `,"time_sub_ns":${ev.timeSubNs}`;
  for (const key in ev.fields) {
    if (!COMMON_KEYS.has(key)) line += `,${JSON.stringify(key)}:${encodeValue(ev.fields[key]!)}`;
  }
  return line + '}';
}
