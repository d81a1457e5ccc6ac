/**
 * What every OTLP signal's encoder writes alike: KeyValues and AnyValues as the SDK's serializers make them (string
 * and integer values with all lengths known up front, keys encoded once), and the resource and scope fields, each
 * encoded once per object.
 */
import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { LEN, lengthDelimited, SHORT_STRING, tag, VARINT, varintSize } from './protobuf-wire.js';
import { ProtobufWriter } from './protobuf-writer.js';

/** Encoded attribute keys kept at most; H2O's header names are few, but a bound is cheap. */
const MAX_KEYS = 4096;

export class OtlpAttributeWriter extends ProtobufWriter {
  /** A KeyValue's `key` field, whole (tag, length, UTF-8). */
  private readonly _keys = new Map<string, Buffer>();
  /** The `resource` field of ResourceSpans / ResourceMetrics, whole. */
  private readonly _resources = new WeakMap<Resource, Buffer>();
  /** The `scope` field of ScopeSpans / ScopeMetrics, whole. */
  private readonly _scopes = new WeakMap<InstrumentationScope, Buffer>();

  protected _attributes(field: number, attributes: Attributes): void {
    for (const key in attributes) this._keyValue(field, this._key(key), attributes[key]);
  }

  protected _keyValue(field: number, key: Buffer, value: AttributeValue | undefined): void {
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
  protected _stringKeyValue(field: number, key: Buffer, value: string): void {
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
  protected _stringKeyValueHead(field: number, key: Buffer, len: number): void {
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
  protected _intKeyValue(field: number, key: Buffer, value: number): void {
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
  protected _anyValue(field: number, v: AttributeValue | undefined): void {
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

  protected _key(key: string): Buffer {
    let encoded = this._keys.get(key);
    if (encoded === undefined) {
      encoded = lengthDelimited(1, Buffer.from(key, 'utf8'));
      if (this._keys.size < MAX_KEYS) this._keys.set(key, encoded);
    }
    return encoded;
  }

  /** The `scope` field of ScopeSpans, whole. */
  protected _scopeField(scope: InstrumentationScope): Buffer {
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

  protected _resourceField(resource: Resource): Buffer {
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
