/**
 * `ExportTraceServiceRequest` protobuf written straight from finished spans into one growing buffer, reused for
 * every batch: no intermediate OTLP objects (the SDK's serializer builds a JS object per span, attribute, value and
 * event, then protobufjs walks them), attribute keys and the resource and scope encoded once. Field for field the
 * same message as the SDK's `ProtobufTraceSerializer` (test/export/otlp-encoder.test.ts decodes both).

 */
import type { Link, SpanContext } from '@opentelemetry/api';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { AttributeList } from '../otel/attribute-list.js';
import { FinishedSpan } from '../otel/finished-span.js';
import {
  copyInto,
  LEN,
  lengthDelimited,
  optionalStringSize,
  putString,
  putVarint,
  tag,
  varintSize,
} from './protobuf-wire.js';
import { OtlpAttributeWriter } from './otlp-attribute-writer.js';
import { groupByResourceAndScope } from './span-groups.js';

/** OTLP span flags: the low byte is W3C's trace flags; these say whether the parent is remote (as the SDK sets). */
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

export class OtlpTraceEncoder extends OtlpAttributeWriter {
  /** A KeyValue's `key` field by interned key id, for the spans that carry an `AttributeList`: an array index, no hashing. */
  private readonly _keysById: Buffer[] = [];

  /**
   * One request with every span given, grouped by resource, then scope (both by identity), in first-seen order, as
   * the SDK's serializer groups them. The spans are written first, each group's after the last; the resource and
   * scope wrappers, whose lengths are known only then, go in front of them as the whole is copied out.
   */
  encode(spans: readonly ReadableSpan[]): Uint8Array {
    this._pos = 0;
    const groups = groupByResourceAndScope(spans);
    const written: number[] = [];
    let total = 0;
    for (const [resource, scopes] of groups) {
      let rsLen = this._resourceField(resource).length + optionalStringSize(resource.schemaUrl);
      for (const list of scopes.values()) {
        const start = this._pos;
        for (const span of list) this._span(span);
        written.push(start, this._pos);
        const ssLen =
          this._scopeField(list[0]!.instrumentationScope).length +
          (this._pos - start) +
          optionalStringSize(list[0]!.instrumentationScope.schemaUrl);
        written.push(ssLen);
        rsLen += 1 + varintSize(ssLen) + ssLen;
      }
      written.push(rsLen);
      total += 1 + varintSize(rsLen) + rsLen;
    }
    const out = Buffer.allocUnsafeSlow(total);
    let at = 0;
    let w = 0;
    for (const [resource, scopes] of groups) {
      const rsLen = written[w + scopes.size * 3]!;
      out[at++] = tag(1, LEN);
      at = putVarint(out, at, rsLen);
      at = copyInto(out, at, this._resourceField(resource));
      for (const list of scopes.values()) {
        const [start, end, ssLen] = [written[w]!, written[w + 1]!, written[w + 2]!];
        w += 3;
        const scope = list[0]!.instrumentationScope;
        out[at++] = tag(2, LEN);
        at = putVarint(out, at, ssLen);
        at = copyInto(out, at, this._scopeField(scope));
        out.set(this._buf.subarray(start, end), at);
        at += end - start;
        if (scope.schemaUrl) at = putString(out, at, 3, scope.schemaUrl);
      }
      w++;
      if (resource.schemaUrl) at = putString(out, at, 3, resource.schemaUrl);
    }
    // A plain view, as the SDK's serializer returns: the transports take any Uint8Array.
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  private _span(span: ReadableSpan): void {
    const at = this._open(2);
    const ctx = span.spanContext();
    this._hex(1, ctx.traceId);
    this._hex(2, ctx.spanId);
    this._traceState(3, ctx);
    const parent = span.parentSpanContext;
    if (parent?.spanId) this._hex(4, parent.spanId);
    this._string(5, span.name);
    this._varintField(6, span.kind + 1);
    this._time(7, span.startTime);
    this._time(8, span.endTime);
    if (span instanceof FinishedSpan) this._attributeList(9, span.attributeList);
    else this._attributes(9, span.attributes);
    this._varintField(10, span.droppedAttributesCount);
    for (const e of span.events) this._event(e);
    this._varintField(12, span.droppedEventsCount);
    for (const l of span.links) this._link(l);
    this._varintField(14, span.droppedLinksCount);
    const st = this._open(15);
    if (span.status.message) this._string(2, span.status.message);
    this._varintField(3, span.status.code);
    this._close(st);
    this._fixed32(16, flags(ctx.traceFlags, parent?.isRemote));
    this._close(at);
  }

  private _event(e: TimedEvent): void {
    const at = this._open(11);
    this._time(1, e.time);
    this._string(2, e.name);
    if (e.attributes !== undefined) this._attributes(3, e.attributes);
    this._varintField(4, e.droppedAttributesCount ?? 0);
    this._close(at);
  }

  private _link(l: Link): void {
    const at = this._open(13);
    this._hex(1, l.context.traceId);
    this._hex(2, l.context.spanId);
    this._traceState(3, l.context);
    if (l.attributes !== undefined) this._attributes(4, l.attributes);
    this._varintField(5, l.droppedAttributesCount ?? 0);
    this._fixed32(6, flags(l.context.traceFlags, l.context.isRemote));
    this._close(at);
  }

  private _traceState(field: number, ctx: SpanContext): void {
    const state = ctx.traceState?.serialize();
    if (state) this._string(field, state);
  }

  private _attributeList(field: number, list: AttributeList): void {
    const { keys, values } = list;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const encoded = this._keysById[key.id] ?? this._internedKey(key.id, key.name);
      this._keyValue(field, encoded, values[i]);
    }
  }

  /** A key of an `AttributeList`, kept by id; an id of -1 (the registry was full) is encoded every time. */
  private _internedKey(id: number, name: string): Buffer {
    const encoded = lengthDelimited(1, Buffer.from(name, 'utf8'));
    if (id >= 0) this._keysById[id] = encoded;
    return encoded;
  }
}

function flags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote === true ? IS_REMOTE : 0);
}
