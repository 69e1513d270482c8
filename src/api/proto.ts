// Loads proto/dfs.proto twice, for two readers with different needs:
// - the handlers get JavaScript names (camelCase fields, enums as their names, 64-bit integers as
//   numbers: sizes and log indexes stay far below 2^53);
// - server reflection gets the file exactly as written (keepCase), together with the health and
//   reflection services' own files. Reflection clients such as grpcurl read field names from these
//   descriptors: with camelCase names there, `-d '{"page_size": 10}'` would be refused, and proto3
//   JSON promises that both `page_size` and `pageSize` are accepted. A service missing from this
//   definition is served but cannot be called through reflection (DESIGN.md: "The API as its
//   users call it").

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options, type PackageDefinition } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

/** The fully qualified name of the public service. */
export const fileServiceName = 'dfs.FileService';
/** The standard health service (grpc-health-check). */
export const healthServiceName = 'grpc.health.v1.Health';
/** Both versions of the reflection service: grpcurl before 1.8.8 speaks only v1alpha. */
export const reflectionServiceNames = [
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
] as const;

/** How the handlers see messages; see the file comment. */
export const handlerLoadOptions: Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** How reflection sees the files: names exactly as written in the .proto files. */
const reflectionLoadOptions: Options = { keepCase: true };

/** proto/dfs.proto is at most this many folders above this module (src/api or dist/src/api). */
const maximumFolderLevels = 6;

/**
 * The path of proto/dfs.proto, found by walking up from this module, so that it is the same file
 * whether the code runs compiled (dist/src/api) or from source (src/api).
 */
export function findDfsProtoPath(): string {
  let folder = dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < maximumFolderLevels; level++) {
    const candidate = join(folder, 'proto', 'dfs.proto');
    if (existsSync(candidate)) return candidate;
    folder = dirname(folder);
  }
  throw new Error(`proto/dfs.proto not found within ${maximumFolderLevels} folders above ${import.meta.url}`);
}

/** The .proto files of both reflection versions, shipped inside @grpc/reflection. */
function reflectionProtoPaths(): string[] {
  const require = createRequire(import.meta.url);
  // The package's main file is build/src/index.js; its protos sit in build/proto.
  const protoFolder = join(dirname(require.resolve('@grpc/reflection')), '..', 'proto');
  return [
    join(protoFolder, 'grpc', 'reflection', 'v1', 'reflection.proto'),
    join(protoFolder, 'grpc', 'reflection', 'v1alpha', 'reflection.proto'),
  ];
}

/** dfs.FileService's method definitions, as grpc-js's Server.addService takes them. */
export function loadFileServiceDefinition(protoPath: string = findDfsProtoPath()): ServiceDefinition {
  const packageObject = loadPackageDefinition(loadSync(protoPath, handlerLoadOptions));
  const dfsPackage = packageObject['dfs'] as Record<string, unknown> | undefined;
  const serviceConstructor = dfsPackage?.['FileService'] as { service?: ServiceDefinition } | undefined;
  if (serviceConstructor?.service === undefined) throw new Error(`${protoPath} defines no service ${fileServiceName}`);
  return serviceConstructor.service;
}

/**
 * Every file reflection describes: dfs.proto, the health service and reflection itself, with
 * their descriptors repaired as repairFileDescriptors explains.
 */
export function loadReflectionDefinition(protoPath: string = findDfsProtoPath()): PackageDefinition {
  const definition = loadSync([protoPath, healthProtoPath, ...reflectionProtoPaths()], reflectionLoadOptions);
  // proto-loader gives every message and enum definition the same list of all files; reflection
  // reads the files from there.
  let original: Buffer[] | undefined;
  for (const value of Object.values(definition)) {
    if ('fileDescriptorProtos' in value && Array.isArray(value.fileDescriptorProtos)) {
      original = value.fileDescriptorProtos as Buffer[];
      break;
    }
  }
  if (original === undefined) throw new Error('proto-loader returned no file descriptors');
  const repaired = repairFileDescriptors(original);
  const result: PackageDefinition = {};
  for (const [name, value] of Object.entries(definition)) {
    result[name] = 'fileDescriptorProtos' in value ? ({ ...value, fileDescriptorProtos: repaired } as typeof value) : value;
  }
  return result;
}

// ------------------------------------------------------------------ descriptor repair

// Plain-object views of the descriptor.proto messages this repair touches (protobufjs's
// toObject of google.protobuf.FileDescriptorProto, camelCase names, enums as numbers).
interface FieldDescriptor { name: string; typeName?: string }
interface MessageDescriptor {
  name: string;
  field?: FieldDescriptor[];
  nestedType?: MessageDescriptor[];
  enumType?: Array<{ name: string }>;
  options?: { mapEntry?: boolean };
}
interface MethodDescriptor { inputType?: string; outputType?: string }
interface FileDescriptor {
  name: string;
  package?: string;
  messageType?: MessageDescriptor[];
  enumType?: Array<{ name: string }>;
  service?: Array<{ name: string; method?: MethodDescriptor[] }>;
}
interface DescriptorType {
  decode(bytes: Uint8Array): unknown;
  toObject(message: unknown): Record<string, unknown>;
  fromObject(object: Record<string, unknown>): unknown;
  encode(message: unknown): { finish(): Uint8Array };
}

/**
 * Makes the FileDescriptorProtos that protobufjs derives from .proto files valid for strict
 * descriptor builders (protoc's C++ DescriptorPool, Go's protodesc, which grpcurl uses). Checked
 * with protobufjs 7.x: it names a map field's entry message after the field ("Statuses" for
 * `map<...> statuses`) where protoc requires "StatusesEntry", which makes grpc.health.v1's file
 * unloadable ("map_entry should not be set explicitly"); and it writes type references relative
 * to their scope ("HealthCheckResponse") where protoc writes them fully qualified
 * (".grpc.health.v1.HealthCheckResponse"), which not every reflection client resolves. This
 * renames map entries and qualifies every reference, and changes nothing else.
 */
export function repairFileDescriptors(encodedFiles: readonly Uint8Array[]): Buffer[] {
  // protobufjs is proto-loader's own dependency: resolved from there, it is the copy proto-loader
  // uses, wherever npm placed it.
  const requireFromLoader = createRequire(createRequire(import.meta.url).resolve('@grpc/proto-loader'));
  const { FileDescriptorProto } = requireFromLoader('protobufjs/ext/descriptor') as { FileDescriptorProto: DescriptorType };
  const files = encodedFiles.map((bytes) => FileDescriptorProto.toObject(FileDescriptorProto.decode(bytes)) as unknown as FileDescriptor);

  for (const file of files) {
    for (const message of file.messageType ?? []) renameMapEntries(message);
  }
  const knownNames = new Set<string>();
  for (const file of files) {
    const packagePrefix = file.package ? `.${file.package}` : '';
    for (const enumType of file.enumType ?? []) knownNames.add(`${packagePrefix}.${enumType.name}`);
    for (const message of file.messageType ?? []) collectNames(message, packagePrefix, knownNames);
  }
  for (const file of files) {
    const packageScope = file.package ? `.${file.package}` : '';
    for (const message of file.messageType ?? []) qualifyFields(message, `${packageScope}.${message.name}`, knownNames);
    for (const service of file.service ?? []) {
      for (const method of service.method ?? []) {
        if (method.inputType !== undefined) method.inputType = qualify(method.inputType, packageScope, knownNames);
        if (method.outputType !== undefined) method.outputType = qualify(method.outputType, packageScope, knownNames);
      }
    }
  }
  return files.map((file) =>
    Buffer.from(FileDescriptorProto.encode(FileDescriptorProto.fromObject(file as unknown as Record<string, unknown>)).finish()));
}

/** protoc's name for a map field's entry message: the field name in CamelCase, then "Entry". */
function mapEntryName(fieldName: string): string {
  const camel = fieldName.replace(/_([a-z0-9])/g, (_match, letter: string) => letter.toUpperCase());
  return `${camel.charAt(0).toUpperCase()}${camel.slice(1)}Entry`;
}

function renameMapEntries(message: MessageDescriptor): void {
  for (const nested of message.nestedType ?? []) {
    renameMapEntries(nested);
    if (nested.options?.mapEntry !== true) continue;
    const field = (message.field ?? []).find((candidate) =>
      candidate.typeName === nested.name || candidate.typeName?.endsWith(`.${nested.name}`));
    if (field === undefined) continue;
    const entryName = mapEntryName(field.name);
    // The field's reference is written relative to the message, so it still resolves after the
    // rename; qualifyFields then makes it absolute.
    field.typeName = entryName;
    nested.name = entryName;
  }
}

function collectNames(message: MessageDescriptor, scope: string, names: Set<string>): void {
  const fullName = `${scope}.${message.name}`;
  names.add(fullName);
  for (const enumType of message.enumType ?? []) names.add(`${fullName}.${enumType.name}`);
  for (const nested of message.nestedType ?? []) collectNames(nested, fullName, names);
}

function qualifyFields(message: MessageDescriptor, fullName: string, names: Set<string>): void {
  for (const field of message.field ?? []) {
    if (field.typeName !== undefined && field.typeName !== '') field.typeName = qualify(field.typeName, fullName, names);
  }
  for (const nested of message.nestedType ?? []) qualifyFields(nested, `${fullName}.${nested.name}`, names);
}

/**
 * Resolves a type reference the way protoc does: an absolute ".a.b" stays; a relative one is
 * looked up in the innermost scope first, then each enclosing one.
 */
function qualify(reference: string, scope: string, names: Set<string>): string {
  if (reference.startsWith('.')) return reference;
  for (let current = scope; ; current = current.slice(0, Math.max(0, current.lastIndexOf('.')))) {
    const candidate = `${current}.${reference}`;
    if (names.has(candidate)) return candidate;
    if (current === '') break;
  }
  throw new Error(`cannot resolve the type reference ${reference} from ${scope}`);
}
