// Server reflection. Goal: a client that knows nothing but the server's address — grpcurl without
// `-proto` — finds every service through reflection v1 and v1alpha (widely installed grpcurl
// versions speak only v1alpha), including grpc.health.v1.Health and reflection itself, fetches the
// file descriptors, and calls Put, Get and the health check using nothing but what reflection
// returned. Method: ReflectionJsonClient (reflection-client.ts) does what grpcurl does — list,
// file_containing_symbol, file_by_filename for each dependency — builds protobufjs types from the
// returned FileDescriptorProtos alone, and calls the server with JSON requests.

import t from 'tap';
import { ReflectionJsonClient, type ReflectionVersion } from './reflection-client.js';
import { startTestServer } from './helpers.js';

// The parts of a decoded google.protobuf.FileDescriptorProto the checks read.
interface DescribedMessage { name: string; field: Array<{ typeName?: string }>; nestedType: DescribedMessage[] }
interface DescribedFile {
  name: string;
  dependency: string[];
  messageType: DescribedMessage[];
  service: Array<{ method: Array<{ inputType: string; outputType: string }> }>;
}

const expectedServices = [
  'dfs.FileService',
  'grpc.health.v1.Health',
  'grpc.reflection.v1.ServerReflection',
  'grpc.reflection.v1alpha.ServerReflection',
];

const fileServiceMethods = [
  'AddPeer', 'Delete', 'Get', 'GetStream', 'List', 'Put', 'PutStream', 'RemovePeer', 'Snapshot', 'Stat', 'Status', 'TransferLeader', 'Watch',
];

for (const version of ['v1', 'v1alpha'] as ReflectionVersion[]) {
  t.test(`reflection ${version}: list, describe and call with nothing but the address`, async (t) => {
    const { address, backend } = await startTestServer(t);
    const client = new ReflectionJsonClient(address, version);
    t.teardown(() => client.close());

    t.same((await client.listServices()).sort(), expectedServices, 'every served service is listed');

    const files = (await client.filesFor('dfs.FileService')) as unknown as DescribedFile[];
    t.same(files.map((file) => file.name), ['dfs.proto'], 'one self-contained file');
    t.same(files[0]?.dependency ?? [], [], 'it imports nothing');

    const root = await client.rootFor('dfs.FileService');
    const service = root.lookupService('dfs.FileService');
    t.same(Object.keys(service.methods).sort(), fileServiceMethods);
    t.ok(service.methods['PutStream']?.requestStream, 'PutStream streams its requests');
    t.ok(service.methods['GetStream']?.responseStream, 'GetStream streams its responses');
    t.ok(root.lookupType('dfs.ListRequest').fields['page_size'], 'field names as written in the .proto');

    const put = await client.invoke(root, 'dfs.FileService/Put', '{"key":"foo","data":"YmFy"}');
    t.same(put, { version: '1', sizeBytes: '3' });
    t.same(backend.content('foo'), Buffer.from('bar'));
    t.equal(JSON.stringify(await client.invoke(root, 'dfs.FileService/Get', '{"key":"foo"}')), '{"data":"YmFy"}');
    t.match(await client.invoke(root, 'dfs.FileService/List', '{"page_size":10}'), { entries: [{ key: 'foo' }] });

    const healthRoot = await client.rootFor('grpc.health.v1.Health');
    t.same(await client.invoke(healthRoot, 'grpc.health.v1.Health/Check', '{}'), { status: 'SERVING' },
      'the health service is callable through reflection alone');
    t.same(await client.invoke(healthRoot, 'grpc.health.v1.Health/Check', '{"service":"dfs.FileService"}'), { status: 'SERVING' });

    for (const reflectionService of expectedServices.slice(2)) {
      const reflectionRoot = await client.rootFor(reflectionService);
      t.ok(reflectionRoot.lookupService(reflectionService).methods['ServerReflectionInfo'], `${reflectionService} describes itself`);
    }

    // What strict descriptor builders (protoc, Go's protodesc in grpcurl) demand and protobufjs
    // alone does not produce: map entries named <Field>Entry, type references fully qualified.
    const healthFiles = (await client.filesFor('grpc.health.v1.Health')) as unknown as DescribedFile[];
    const listResponse = healthFiles[0]?.messageType.find((message) => message.name === 'HealthListResponse');
    t.same(listResponse?.nestedType.map((nested) => nested.name), ['StatusesEntry'], 'the map entry is named as protoc names it');
    const references = [...files, ...healthFiles].flatMap((file) => [
      ...file.messageType.flatMap(function fieldsOf(message: DescribedMessage): string[] {
        return [...message.field.map((field) => field.typeName ?? ''), ...message.nestedType.flatMap(fieldsOf)];
      }),
      ...file.service.flatMap((service) => service.method.flatMap((method) => [method.inputType, method.outputType])),
    ]).filter((reference) => reference !== '');
    t.ok(references.length > 20 && references.every((reference) => reference.startsWith('.')),
      `all ${references.length} type references are fully qualified`);

    await t.rejects(client.filesFor('dfs.NoSuchService'), /reflection error 5: Symbol not found/, 'an unknown symbol is NOT_FOUND');
  });
}
