// The proto3 JSON mapping, as grpcurl applies it, over protobufjs reflection types: requests are
// read from JSON the way `grpcurl -d '{...}'` reads them (field names in lowerCamelCase or as
// written in the .proto, bytes in base64, enums by name, 64-bit integers as strings or numbers,
// unknown fields refused) and responses are printed the way grpcurl prints them by default
// (lowerCamelCase names, fields holding their default value left out, 64-bit integers as
// strings, bytes in standard base64, enums by name). The tests use it to check the JSON forms
// that are part of the contract without depending on a grpcurl binary.

import protobuf from 'protobufjs';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The JSON name proto3 gives a field: lowerCamelCase of the name in the .proto. */
export function jsonName(fieldName: string): string {
  return fieldName.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Reads a JSON request into the wire bytes of `type`, or throws as grpcurl would refuse it. */
export function encodeJson(type: protobuf.Type, json: string): Uint8Array {
  const value: unknown = JSON.parse(json);
  return type.encode(type.fromObject(fromJson(type, value))).finish();
}

/** Prints the wire bytes of `type` the way grpcurl does (as an object; stringify to print). */
export function decodeToJson(type: protobuf.Type, bytes: Uint8Array): { [key: string]: Json } {
  return toJson(type, type.decode(bytes) as unknown as Record<string, unknown>);
}

function fromJson(type: protobuf.Type, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${type.fullName}: expected a JSON object`);
  }
  const result: Record<string, unknown> = {};
  for (const [key, fieldValue] of Object.entries(value)) {
    const field = type.fieldsArray.find((candidate) => candidate.name === key || jsonName(candidate.name) === key);
    if (field === undefined) throw new Error(`message type ${type.fullName.slice(1)} has no known field named ${key}`);
    field.resolve();
    result[field.name] = field.repeated
      ? (fieldValue as unknown[]).map((element) => scalarFromJson(field, element))
      : scalarFromJson(field, fieldValue);
  }
  return result;
}

function scalarFromJson(field: protobuf.Field, value: unknown): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return fromJson(resolved, value);
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'number') return value;
    const number = resolved.values[value as string];
    if (number === undefined) throw new Error(`enum ${resolved.fullName.slice(1)} has no value named ${String(value)}`);
    return number;
  }
  if (field.type === 'bytes') {
    if (typeof value !== 'string') throw new Error(`${field.name}: bytes must be a base64 string`);
    // proto3 JSON accepts standard and URL-safe base64, with or without padding.
    return Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  }
  return value;
}

function toJson(type: protobuf.Type, message: Record<string, unknown>): { [key: string]: Json } {
  const result: { [key: string]: Json } = {};
  for (const field of type.fieldsArray) {
    field.resolve();
    const value = message[field.name];
    const oneof = field.partOf;
    // A oneof member counts when it is the one set, even at its default value; any other field
    // of proto3 is printed only when it differs from its default.
    if (oneof !== null && oneof !== undefined) {
      if (message[oneof.name] !== field.name) continue;
    } else if (isDefault(field, value)) {
      continue;
    }
    result[jsonName(field.name)] = field.repeated
      ? (value as unknown[]).map((element) => scalarToJson(field, element))
      : scalarToJson(field, value);
  }
  return result;
}

function isDefault(field: protobuf.Field, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (field.repeated) return (value as unknown[]).length === 0;
  if (field.resolvedType instanceof protobuf.Type) return false;
  if (value instanceof Uint8Array) return value.byteLength === 0;
  if (typeof value === 'object') return String(value) === '0'; // a Long
  return value === 0 || value === '' || value === false;
}

function scalarToJson(field: protobuf.Field, value: unknown): Json {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Type) return toJson(resolved, value as Record<string, unknown>);
  if (resolved instanceof protobuf.Enum) return resolved.valuesById[value as number] ?? (value as number);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (field.long) return String(value);
  return value as Json;
}
