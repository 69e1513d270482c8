// A client that knows nothing of dfs but an address, built the way grpcurl works: it asks server
// reflection (v1 or v1alpha) for the services, fetches the file that defines a service and,
// recursively, the files it depends on, builds message types from those FileDescriptorProtos
// alone, and calls a method with a JSON request, answering in JSON (proto-json.ts). It carries
// only the reflection protocol's own messages, written out below, as grpcurl has them compiled in.

import { Client, Metadata, credentials, type ServiceError } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
// A CommonJS module whose exports Node cannot list statically: only a default import works.
import descriptor from 'protobufjs/ext/descriptor/index.js';
import { decodeToJson, encodeJson } from './proto-json.js';

export type ReflectionVersion = 'v1' | 'v1alpha';

// The subset of grpc/reflection/{v1,v1alpha}/reflection.proto this client uses; both versions
// have the same messages and field numbers, only the package differs.
const reflectionMessages = `
syntax = "proto3";
message ServerReflectionRequest {
  string host = 1;
  oneof message_request {
    string file_by_filename = 3;
    string file_containing_symbol = 4;
    string list_services = 7;
  }
}
message ServerReflectionResponse {
  string valid_host = 1;
  oneof message_response {
    FileDescriptorResponse file_descriptor_response = 4;
    ListServiceResponse list_services_response = 6;
    ErrorResponse error_response = 7;
  }
}
message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
message ListServiceResponse { repeated ServiceResponse service = 1; }
message ServiceResponse { string name = 1; }
message ErrorResponse { int32 error_code = 1; string error_message = 2; }
`;
const { FileDescriptorProto, FileDescriptorSet } = descriptor;
const reflectionRoot = protobuf.parse(reflectionMessages, { keepCase: true }).root;
const requestType = reflectionRoot.lookupType('ServerReflectionRequest');
const responseType = reflectionRoot.lookupType('ServerReflectionResponse');

interface ReflectionResponse {
  file_descriptor_response?: { file_descriptor_proto: Uint8Array[] };
  list_services_response?: { service: Array<{ name: string }> };
  error_response?: { error_code: number; error_message: string };
}

/** A file chain deeper than this is a loop or a mistake, not a real API. */
const maximumFiles = 100;

export class ReflectionJsonClient {
  private readonly client: Client;

  constructor(readonly address: string, readonly version: ReflectionVersion) {
    this.client = new Client(address, credentials.createInsecure());
  }

  close(): void {
    this.client.close();
  }

  /** The fully qualified names of every service the server lists. */
  async listServices(): Promise<string[]> {
    const response = await this.ask({ list_services: '*' });
    if (response.list_services_response === undefined) throw new Error('no list_services_response');
    return response.list_services_response.service.map((service) => service.name);
  }

  /** The FileDescriptorProtos that define `symbol`, with every file they depend on. */
  async filesFor(symbol: string): Promise<protobuf.Message[]> {
    const files = new Map<string, protobuf.Message>();
    const add = (encodedFiles: Uint8Array[]): string[] => {
      const missing: string[] = [];
      for (const encoded of encodedFiles) {
        const file = FileDescriptorProto.decode(encoded) as unknown as { name: string; dependency?: string[] };
        files.set(file.name, file as unknown as protobuf.Message);
        missing.push(...(file.dependency ?? []));
      }
      return missing;
    };
    let pending = add(await this.fileDescriptors({ file_containing_symbol: symbol }));
    while (pending.length > 0) {
      if (files.size > maximumFiles) throw new Error(`more than ${maximumFiles} files`);
      const name = pending.pop() as string;
      if (!files.has(name)) pending.push(...add(await this.fileDescriptors({ file_by_filename: name })));
    }
    return [...files.values()];
  }

  /** Message and service types built from nothing but what reflection returned for `symbol`. */
  async rootFor(symbol: string): Promise<protobuf.Root> {
    const files = await this.filesFor(symbol);
    const set = FileDescriptorSet.fromObject({ file: files.map((file) => FileDescriptorProto.toObject(file)) });
    const fromDescriptor = (protobuf.Root as unknown as { fromDescriptor(set: protobuf.Message): protobuf.Root }).fromDescriptor;
    const root = fromDescriptor(set);
    root.resolveAll();
    return root;
  }

  /**
   * Calls `service/method` (e.g. "dfs.FileService/Put") with a JSON request and resolves with the
   * JSON answer as grpcurl prints it; rejects with the ServiceError.
   */
  async invoke(root: protobuf.Root, fullMethod: string, requestJson: string): Promise<Record<string, unknown>> {
    const [serviceName, methodName] = fullMethod.split('/');
    const service = root.lookupService(serviceName ?? '');
    const method = service.methods[methodName ?? ''];
    if (method === undefined) throw new Error(`${serviceName} has no method ${methodName}`);
    method.resolve();
    const input = method.resolvedRequestType as protobuf.Type;
    const output = method.resolvedResponseType as protobuf.Type;
    const request = Buffer.from(encodeJson(input, requestJson));
    const response = await new Promise<Buffer>((resolve, reject) => {
      this.client.makeUnaryRequest(
        `/${serviceName}/${methodName}`,
        (value: Buffer) => value,
        (value: Buffer) => value,
        request,
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (error: ServiceError | null, value?: Buffer) => {
          if (error !== null) reject(error);
          else resolve(value ?? Buffer.alloc(0));
        },
      );
    });
    return decodeToJson(output, response);
  }

  private async fileDescriptors(request: Record<string, string>): Promise<Uint8Array[]> {
    const response = await this.ask(request);
    if (response.error_response !== undefined) {
      throw new Error(`reflection error ${response.error_response.error_code}: ${response.error_response.error_message}`);
    }
    if (response.file_descriptor_response === undefined) throw new Error('no file_descriptor_response');
    return response.file_descriptor_response.file_descriptor_proto;
  }

  /** One request on a fresh reflection stream, as grpcurl opens one per session. */
  private ask(request: Record<string, string>): Promise<ReflectionResponse> {
    const path = `/grpc.reflection.${this.version}.ServerReflection/ServerReflectionInfo`;
    const stream = this.client.makeBidiStreamRequest(
      path,
      (value: Record<string, string>) => Buffer.from(requestType.encode(requestType.fromObject(value)).finish()),
      (value: Buffer) => responseType.toObject(responseType.decode(value), { arrays: true }) as ReflectionResponse,
      new Metadata(),
      { deadline: Date.now() + 10_000 },
    );
    return new Promise<ReflectionResponse>((resolve, reject) => {
      stream.once('data', (response: ReflectionResponse) => {
        resolve(response);
        stream.end();
      });
      stream.once('error', reject);
      stream.write(request);
    });
  }
}
