/**
 * Exemplars for the request-duration histogram: for each attribute set and bucket, the latest measurement whose
 * span was exported, with that span's ids. A metrics view then links a slow bucket straight to a trace. The SDK's
 * metrics collect no exemplars, so they are kept here, fed where spans enter the export queue, and taken by the
 * OTLP metrics encoder for each data point it writes.
 */
import type { Attributes, HrTime } from '@opentelemetry/api';

export interface Exemplar {
  readonly value: number;
  readonly time: HrTime;
  readonly traceId: string;
  readonly spanId: string;
}

/** Attribute sets kept at most per metric (the SDK's own cardinality limit is 2,000 per instrument). */
const MAX_SETS = 2000;

export class ExemplarStore {
  /** metric name → attribute set key → exemplar per bucket (index as in the histogram's counts). */
  private readonly _byMetric = new Map<string, Map<string, (Exemplar | undefined)[]>>();

  /**
   * `keys`: the attribute names the metric's attribute sets are made of, in one order, so a set's key is its
   * values joined — cheap on the hot path, and the same whichever object the SDK hands back.
   */
  constructor(private readonly _keys: ReadonlyMap<string, readonly string[]>) {}

  offer(metric: string, attributes: Attributes, boundaries: readonly number[], e: Exemplar): void {
    const names = this._keys.get(metric);
    if (names === undefined) return;
    let sets = this._byMetric.get(metric);
    if (sets === undefined) this._byMetric.set(metric, (sets = new Map<string, (Exemplar | undefined)[]>()));
    const key = setKey(names, attributes);
    let buckets = sets.get(key);
    if (buckets === undefined) {
      if (sets.size >= MAX_SETS) return;
      sets.set(key, (buckets = []));
    }
    buckets[bucketIndex(boundaries, e.value)] = e;
  }

  /** The exemplars of one data point, oldest bucket first; they are forgotten once taken. */
  take(metric: string, attributes: Attributes): Exemplar[] | undefined {
    const names = this._keys.get(metric);
    const sets = this._byMetric.get(metric);
    if (names === undefined || sets === undefined) return undefined;
    const key = setKey(names, attributes);
    const buckets = sets.get(key);
    if (buckets === undefined) return undefined;
    sets.delete(key);
    return buckets.filter((e): e is Exemplar => e !== undefined);
  }
}

function setKey(names: readonly string[], attributes: Attributes): string {
  let key = '';
  for (const n of names) key += `${String(attributes[n] ?? '')}\u0000`;
  return key;
}

/** OTLP explicit buckets: bucket i holds (bounds[i-1], bounds[i]], the last one everything above. */
export function bucketIndex(boundaries: readonly number[], value: number): number {
  let i = 0;
  while (i < boundaries.length && value > boundaries[i]!) i++;
  return i;
}
