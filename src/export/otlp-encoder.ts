/**
 * `ExportTraceServiceRequest` protobuf written straight from finished spans into one growing buffer, reused for
 * every batch: no intermediate OTLP objects (the SDK's serializer builds a JS object per span, attribute, value and
 * event, then protobufjs walks them), attribute keys and the resource and scope encoded once. Field for field the
 * same message as the SDK's `ProtobufTraceSerializer` (test/export/otlp-encoder.test.ts decodes both).

 */
import type { Attributes, AttributeValue, Link, SpanContext } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
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
  SHORT_STRING,
  tag,
  VARINT,
  varintSize,
} from './protobuf-wire.js';
import { ProtobufWriter } from './protobuf-writer.js';
import { groupByResourceAndScope } from './span-groups.js';

/** OTLP span flags: the low byte is W3C's trace flags; these say whether the parent is remote (as the SDK sets). */
const HAS_IS_REMOTE = 0x100;
const IS_REMOTE = 0x200;

/** Encoded attribute keys kept at most; H2O's header names are few, but a bound is cheap. */
const MAX_KEYS = 4096;

export class OtlpTraceEncoder extends ProtobufWriter {
  /** A KeyValue's `key` field, whole (tag, length, UTF-8). */
  private readonly _keys = new Map<string, Buffer>();
  /** The same, by interned key id, for the spans that carry an `AttributeList`: an array index, no hashing. */
  private readonly _keysById: Buffer[] = [];
  /** The `resource` field of ResourceSpans, whole. */
  private readonly _resources = new WeakMap<Resource, Buffer>();
  /** The `scope` field of ScopeSpans, whole. */
  private readonly _scopes = new WeakMap<InstrumentationScope, Buffer>();

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

  private _attributes(field: number, attributes: Attributes): void {
    for (const key in attributes) this._keyValue(field, this._key(key), attributes[key]);
  }

  private _attributeList(field: number, list: AttributeList): void {
    const { keys, values } = list;
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const encoded = this._keysById[key.id] ?? this._internedKey(key.id, key.name);
      this._keyValue(field, encoded, values[i]);
    }
  }

  private _keyValue(field: number, key: Buffer, value: AttributeValue | undefined): void {
    // Most values are strings: their lengths are known before writing, so no length is fixed up after.
    if (typeof value === 'string') return this._stringKeyValue(field, key, value);
    if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value))
      return this._intKeyValue(field, key, value);
    const kv = this._open(field);
    this._bytes(key);
    this._anyValue(2, value);
    this._close(kv);
  }

  /**
   * KeyValue{key, AnyValue{string_value}} with every length known before writing, so no length is fixed up after.
   * A short value is written as if ASCII, its length its count of chars, and written again the long way only when
   * a char proves it is not: one pass over it, where checking first and copying after took two.
   */
  private _stringKeyValue(field: number, key: Buffer, value: string): void {
    if (value.length <= SHORT_STRING) {
      const start = this._pos;
      this._stringKeyValueHead(field, key, value.length);
      if (this._ascii(value)) return;
      this._pos = start;
    }
    this._stringKeyValueHead(field, key, Buffer.byteLength(value, 'utf8'));
    this._pos += this._buf.write(value, this._pos, 'utf8');
  }

  /** A string KeyValue up to its value's first byte, for a value of `len` bytes; room for the value made. */
  private _stringKeyValueHead(field: number, key: Buffer, len: number): void {
    const anyLen = 1 + varintSize(len) + len;
    const kvLen = key.length + 1 + varintSize(anyLen) + anyLen;
    this._ensure(kvLen + 12);
    this._varint(tag(field, LEN));
    this._varint(kvLen);
    this._bytes(key);
    this._buf[this._pos++] = tag(2, LEN);
    this._varint(anyLen);
    this._buf[this._pos++] = tag(1, LEN);
    this._varint(len);
  }

  /** KeyValue{key, AnyValue{int_value}} of a non-negative integer, lengths computed up front. */
  private _intKeyValue(field: number, key: Buffer, value: number): void {
    const anyLen = 1 + varintSize(value);
    const kvLen = key.length + 2 + anyLen;
    this._ensure(kvLen + 12);
    this._varint(tag(field, LEN));
    this._varint(kvLen);
    this._bytes(key);
    this._buf[this._pos++] = tag(2, LEN);
    this._buf[this._pos++] = anyLen;
    this._buf[this._pos++] = tag(3, VARINT);
    this._varint(value);
  }

  /** An AnyValue as the SDK makes one: integers as int_value, other numbers as double_value. */
  private _anyValue(field: number, v: AttributeValue | undefined): void {
    const at = this._open(field);
    if (typeof v === 'string') this._string(1, v);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) this._int64(3, v);
      else this._double(4, v);
    } else if (typeof v === 'boolean') this._varintField(2, v ? 1 : 0, true);
    else if (Array.isArray(v)) {
      const arr = this._open(5);
      for (const item of v as readonly unknown[]) this._anyValue(1, item as AttributeValue | undefined);
      this._close(arr);
    }
    this._close(at);
  }

  private _key(key: string): Buffer {
    let encoded = this._keys.get(key);
    if (encoded === undefined) {
      encoded = lengthDelimited(1, Buffer.from(key, 'utf8'));
      if (this._keys.size < MAX_KEYS) this._keys.set(key, encoded);
    }
    return encoded;
  }

  /** A key of an `AttributeList`, kept by id; an id of -1 (the registry was full) is encoded every time. */
  private _internedKey(id: number, name: string): Buffer {
    const encoded = lengthDelimited(1, Buffer.from(name, 'utf8'));
    if (id >= 0) this._keysById[id] = encoded;
    return encoded;
  }

  /** The `scope` field of ScopeSpans, whole. */
  private _scopeField(scope: InstrumentationScope): Buffer {
    let encoded = this._scopes.get(scope);
    if (encoded === undefined) {
      const start = this._pos;
      const at = this._open(1);
      this._string(1, scope.name);
      if (scope.version !== undefined) this._string(2, scope.version);
      this._close(at);
      encoded = Buffer.from(this._buf.subarray(start, this._pos));
      this._pos = start;
      this._scopes.set(scope, encoded);
    }
    return encoded;
  }

  private _resourceField(resource: Resource): Buffer {
    let encoded = this._resources.get(resource);
    if (encoded === undefined) {
      // Encoded once with this same writer, at the end of what it holds, then copied out.
      const start = this._pos;
      const at = this._open(1);
      this._attributes(1, resource.attributes);
      this._varintField(2, 0);
      this._close(at);
      encoded = Buffer.from(this._buf.subarray(start, this._pos));
      this._pos = start;
      this._resources.set(resource, encoded);
    }
    return encoded;
  }
}

function flags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | HAS_IS_REMOTE | (isRemote === true ? IS_REMOTE : 0);
}
