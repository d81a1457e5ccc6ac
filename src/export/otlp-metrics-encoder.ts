/**
 * `ExportMetricsServiceRequest` protobuf from the SDK's collected metrics, field for field the message the SDK's
 * `ProtobufMetricsSerializer` writes, plus what that one cannot write: exemplars on histogram data points (the SDK
 * collects none). Plugged into the SDK's own export delegates, as the trace encoder is (otlp.ts).
 */
import { ValueType } from '@opentelemetry/api';
import { AggregationTemporality, DataPointType } from '@opentelemetry/sdk-metrics';
import type {
  DataPoint,
  ExponentialHistogram,
  MetricData,
  ResourceMetrics,
  ScopeMetrics,
} from '@opentelemetry/sdk-metrics';
import type { Exemplar, ExemplarDataPoint } from '../otel/explicit-histogram.js';
import { OtlpAttributeWriter } from './otlp-attribute-writer.js';
import { I64, LEN, putFixed32, tag, VARINT } from './protobuf-wire.js';

const TWO_32 = 0x1_0000_0000;

export class OtlpMetricsEncoder extends OtlpAttributeWriter {
  /** Histogram data points that carry `exemplars` (ExemplarDataPoint: h2o-otel's own histograms) get them written. */
  encode(rm: ResourceMetrics): Uint8Array {
    this._pos = 0;
    const at = this._open(1);
    this._bytes(this._resourceField(rm.resource));
    for (const sm of rm.scopeMetrics) this._scopeMetrics(sm);
    if (rm.resource.schemaUrl) this._string(3, rm.resource.schemaUrl);
    this._close(at);
    return Uint8Array.prototype.slice.call(this._buf, 0, this._pos);
  }

  private _scopeMetrics(sm: ScopeMetrics): void {
    const at = this._open(2);
    this._bytes(this._scopeField(sm.scope));
    for (const m of sm.metrics) this._metric(m);
    if (sm.scope.schemaUrl) this._string(3, sm.scope.schemaUrl);
    this._close(at);
  }

  private _metric(m: MetricData): void {
    const at = this._open(2);
    this._string(1, m.descriptor.name);
    if (m.descriptor.description) this._string(2, m.descriptor.description);
    if (m.descriptor.unit) this._string(3, m.descriptor.unit);
    switch (m.dataPointType) {
      case DataPointType.GAUGE: {
        const data = this._open(5);
        for (const p of m.dataPoints) this._numberPoint(p, m.descriptor.valueType);
        this._close(data);
        break;
      }
      case DataPointType.SUM: {
        const data = this._open(7);
        for (const p of m.dataPoints) this._numberPoint(p, m.descriptor.valueType);
        this._varintField(2, temporality(m.aggregationTemporality));
        this._varintField(3, m.isMonotonic ? 1 : 0);
        this._close(data);
        break;
      }
      case DataPointType.HISTOGRAM: {
        const data = this._open(9);
        for (const p of m.dataPoints) this._histogramPoint(p);
        this._varintField(2, temporality(m.aggregationTemporality));
        this._close(data);
        break;
      }
      case DataPointType.EXPONENTIAL_HISTOGRAM: {
        const data = this._open(10);
        for (const p of m.dataPoints) this._exponentialPoint(p);
        this._varintField(2, temporality(m.aggregationTemporality));
        this._close(data);
        break;
      }
    }
    this._close(at);
  }

  /** NumberDataPoint: attributes 7, start 2, time 3, as_double 4 or as_int 6 (sfixed64). */
  private _numberPoint(p: DataPoint<number>, valueType: ValueType): void {
    const at = this._open(1);
    this._time(2, p.startTime);
    this._time(3, p.endTime);
    if (valueType === ValueType.INT) this._sfixed64(6, p.value);
    else this._double(4, p.value);
    this._attributes(7, p.attributes);
    this._close(at);
  }

  /** HistogramDataPoint: start 2, time 3, count 4, sum 5, bucket_counts 6, bounds 7, exemplars 8, attributes 9, min 11, max 12. */
  private _histogramPoint(p: ExemplarDataPoint): void {
    const h = p.value;
    const at = this._open(1);
    this._time(2, p.startTime);
    this._time(3, p.endTime);
    this._fixed64(4, h.count);
    if (h.sum !== undefined) this._double(5, h.sum);
    if (h.buckets.counts.length > 0) this._packedFixed64(6, h.buckets.counts);
    if (h.buckets.boundaries.length > 0) this._packedDoubles(7, h.buckets.boundaries);
    for (const e of p.exemplars ?? []) this._exemplar(e);
    this._attributes(9, p.attributes);
    if (h.min !== undefined) this._double(11, h.min);
    if (h.max !== undefined) this._double(12, h.max);
    this._close(at);
  }

  /** Exemplar: time 2, as_double 3, span_id 4, trace_id 5. */
  private _exemplar(e: Exemplar): void {
    const at = this._open(8);
    this._time(2, e.time);
    this._double(3, e.value);
    this._hex(4, e.spanId);
    this._hex(5, e.traceId);
    this._close(at);
  }

  /** ExponentialHistogramDataPoint, as the SDK writes it (h2o-otel records none, but a view could make one). */
  private _exponentialPoint(p: DataPoint<ExponentialHistogram>): void {
    const h = p.value;
    const at = this._open(1);
    this._attributes(1, p.attributes);
    this._time(2, p.startTime);
    this._time(3, p.endTime);
    this._fixed64(4, h.count);
    if (h.sum !== undefined) this._double(5, h.sum);
    if (h.scale !== 0) this._sint32(6, h.scale);
    this._fixed64(7, h.zeroCount);
    for (const [field, side] of [
      [8, h.positive],
      [9, h.negative],
    ] as const) {
      const buckets = this._open(field);
      if (side.offset !== 0) this._sint32(1, side.offset);
      if (side.bucketCounts.length > 0) {
        const counts = this._open(2);
        for (const c of side.bucketCounts) this._varint(c);
        this._close(counts);
      }
      this._close(buckets);
    }
    if (h.min !== undefined) this._double(12, h.min);
    if (h.max !== undefined) this._double(13, h.max);
    this._close(at);
  }

  private _fixed64(field: number, v: number): void {
    this._ensure(10);
    this._varint(tag(field, I64));
    this._rawFixed64(v);
  }

  /** sfixed64: a negative value in two's complement. */
  private _sfixed64(field: number, v: number): void {
    this._ensure(10);
    this._varint(tag(field, I64));
    if (v >= 0) return this._rawFixed64(v);
    const n = BigInt.asUintN(64, BigInt(Math.trunc(v)));
    this._pos = putFixed32(this._buf, this._pos, Number(n & 0xffff_ffffn));
    this._pos = putFixed32(this._buf, this._pos, Number(n >> 32n));
  }

  private _rawFixed64(v: number): void {
    this._pos = putFixed32(this._buf, this._pos, v % TWO_32);
    this._pos = putFixed32(this._buf, this._pos, Math.floor(v / TWO_32));
  }

  private _packedFixed64(field: number, values: readonly number[]): void {
    this._ensure(8 * values.length + 12);
    this._varint(tag(field, LEN));
    this._varint(8 * values.length);
    for (const v of values) this._rawFixed64(v);
  }

  private _packedDoubles(field: number, values: readonly number[]): void {
    this._ensure(8 * values.length + 12);
    this._varint(tag(field, LEN));
    this._varint(8 * values.length);
    for (const v of values) this._pos = this._buf.writeDoubleLE(v, this._pos);
  }

  private _sint32(field: number, v: number): void {
    this._ensure(12);
    this._varint(tag(field, VARINT));
    this._varint(((v << 1) ^ (v >> 31)) >>> 0);
  }
}

function temporality(t: AggregationTemporality): number {
  if (t === AggregationTemporality.DELTA) return 1;
  return t === AggregationTemporality.CUMULATIVE ? 2 : 0;
}
