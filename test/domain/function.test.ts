import test, { type ExecutionContext } from 'ava';
import {
  type CodePackage,
  type ConfigurationChanges,
  type FunctionCommand,
  functionDecider,
} from '../../domain/function/decider.ts';
import type { FunctionConfiguration, FunctionEvent, RoutingConfig } from '../../domain/function/events.ts';
import { spec } from './givenWhenThen.ts';

const fn = (t: ExecutionContext) => spec(t, functionDecider);

const NAME = 'image-processor';
const OWNER = 'user-123';
const PURGE_AFTER = '2025-12-23T12:00:00.000Z';

const DEFAULTS: FunctionConfiguration = {
  description: '',
  runtime: 'Node24',
  handler: 'index.handler',
  memorySize: 128,
  timeout: 3,
  environment: {},
  tags: {},
  concurrencyLimit: null,
  asyncRetries: 2,
  maxEventAgeSeconds: 21_600,
};

type Published = Extract<FunctionEvent, { type: 'FunctionVersionPublished' }>['data'];

// Events
const created = (overrides: Partial<FunctionConfiguration> & { name?: string } = {}): FunctionEvent => ({
  type: 'FunctionCreated',
  data: { name: NAME, ownerId: OWNER, ...DEFAULTS, ...overrides },
});
const updated = (changes: ConfigurationChanges): FunctionEvent => ({
  type: 'FunctionConfigurationUpdated',
  data: { name: NAME, changes },
});
const deleted = (purgeAfter = PURGE_AFTER): FunctionEvent => ({
  type: 'FunctionDeleted',
  data: { name: NAME, purgeAfter },
});
const purged = (): FunctionEvent => ({ type: 'FunctionPurged', data: { name: NAME } });
const published = (version: number, overrides: Partial<Published> = {}): FunctionEvent => ({
  type: 'FunctionVersionPublished',
  data: {
    name: NAME,
    version,
    description: '',
    codeSha256: 'c0ffee',
    codeSize: 2048,
    codeLocation: 'mem://code.zip',
    runtime: 'Node24',
    handler: 'index.handler',
    memorySize: 128,
    timeout: 3,
    environment: {},
    ...overrides,
  },
});
const versionDeleted = (version: number): FunctionEvent => ({
  type: 'FunctionVersionDeleted',
  data: { name: NAME, version },
});
const aliasCreated = (
  aliasName: string,
  version: number,
  routingConfig: RoutingConfig = { [version]: 100 },
  description = '',
): FunctionEvent => ({
  type: 'FunctionAliasCreated',
  data: { name: NAME, aliasName, version, routingConfig, description },
});
const aliasRoutingChanged = (
  aliasName: string,
  version: number,
  routingConfig: RoutingConfig = { [version]: 100 },
  description = '',
): FunctionEvent => ({
  type: 'FunctionAliasRoutingChanged',
  data: { name: NAME, aliasName, version, routingConfig, description },
});
const aliasDeleted = (aliasName: string): FunctionEvent => ({
  type: 'FunctionAliasDeleted',
  data: { name: NAME, aliasName },
});

// Commands
const create = (overrides: Partial<FunctionConfiguration> & { name?: string } = {}): FunctionCommand => {
  const { name = NAME, ...configuration } = overrides;
  return {
    type: 'CreateFunction',
    name,
    ownerId: OWNER,
    configuration: { runtime: 'Node24', handler: 'index.handler', ...configuration },
  };
};
const update = (changes: ConfigurationChanges): FunctionCommand => ({
  type: 'UpdateFunctionConfiguration',
  name: NAME,
  changes,
});
const deleteFunction = (purgeAfter = PURGE_AFTER): FunctionCommand => ({
  type: 'DeleteFunction',
  name: NAME,
  purgeAfter,
});
const purge = (now: string): FunctionCommand => ({ type: 'PurgeFunction', name: NAME, now });
const zip = (...files: string[]): CodePackage => ({ sha256: 'c0ffee', size: 2048, location: 'mem://code.zip', files });
const publish = (
  files: readonly string[] = ['index.js'],
  environment: Readonly<Record<string, string>> = {},
  description = '',
): FunctionCommand => ({
  type: 'PublishFunctionVersion',
  name: NAME,
  description,
  environment,
  code: zip(...files),
});
const deleteVersion = (version: number): FunctionCommand => ({ type: 'DeleteFunctionVersion', name: NAME, version });
const createAlias = (
  aliasName: string,
  version: number | undefined,
  routingConfig?: RoutingConfig,
  description = '',
): FunctionCommand => ({
  type: 'CreateFunctionAlias',
  name: NAME,
  aliasName,
  description,
  ...(version === undefined ? {} : { version }),
  ...(routingConfig === undefined ? {} : { routingConfig }),
});
const updateAlias = (
  aliasName: string,
  patch: { version?: number; routingConfig?: RoutingConfig; description?: string },
): FunctionCommand => ({ type: 'UpdateFunctionAlias', name: NAME, aliasName, ...patch });
const deleteAlias = (aliasName: string): FunctionCommand => ({ type: 'DeleteFunctionAlias', name: NAME, aliasName });

const python = { runtime: 'Python311', handler: 'handler.process_image' } as const;
const withVersions = (...versions: number[]): FunctionEvent[] => [created(), ...versions.map((v) => published(v))];
const manyTags = (count: number): Record<string, string> =>
  Object.fromEntries(Array.from({ length: count }, (_, i) => [`tag${i}`, 'x']));

// Name
test('name of one character is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ name: 'a' }))
    .then([created({ name: 'a' })]));
const name64 = `f${'n'.repeat(63)}`;
test('name of 64 characters is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ name: name64 }))
    .then([created({ name: name64 })]));
test('name with digits, - and _ is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ name: '2image_processor-v2' }))
    .then([created({ name: '2image_processor-v2' })]));
test('empty name → VALIDATION_ERROR name', (t) =>
  fn(t)
    .given([])
    .when(create({ name: '' }))
    .thenError('VALIDATION_ERROR', 'name'));
test('name of 65 characters → VALIDATION_ERROR name', (t) =>
  fn(t)
    .given([])
    .when(create({ name: 'n'.repeat(65) }))
    .thenError('VALIDATION_ERROR', 'name'));
test('name with a space → VALIDATION_ERROR name', (t) =>
  fn(t)
    .given([])
    .when(create({ name: 'image processor' }))
    .thenError('VALIDATION_ERROR', 'name'));
test("name with a leading '-' → VALIDATION_ERROR name", (t) =>
  fn(t)
    .given([])
    .when(create({ name: '-processor' }))
    .thenError('VALIDATION_ERROR', 'name'));
test("name with a leading '_' → VALIDATION_ERROR name", (t) =>
  fn(t)
    .given([])
    .when(create({ name: '_processor' }))
    .thenError('VALIDATION_ERROR', 'name'));
test('name with a non-ASCII letter → VALIDATION_ERROR name', (t) =>
  fn(t)
    .given([])
    .when(create({ name: 'café' }))
    .thenError('VALIDATION_ERROR', 'name'));
test("name with a '.' → VALIDATION_ERROR name", (t) =>
  fn(t)
    .given([])
    .when(create({ name: 'image.processor' }))
    .thenError('VALIDATION_ERROR', 'name'));

// Runtime and handler
test('runtime Python311 with a module.function handler is accepted', (t) =>
  fn(t)
    .given([])
    .when(create(python))
    .then([created(python)]));
test('unknown runtime → VALIDATION_ERROR runtime', (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'Node18' }))
    .thenError('VALIDATION_ERROR', 'runtime'));
test('runtime names are case-sensitive → VALIDATION_ERROR runtime', (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'python311', handler: 'handler.main' }))
    .thenError('VALIDATION_ERROR', 'runtime'));
test("Node24 handler 'src/app.main' is accepted", (t) =>
  fn(t)
    .given([])
    .when(create({ handler: 'src/app.main' }))
    .then([created({ handler: 'src/app.main' })]));
test("Node24 handler without an export 'index' → VALIDATION_ERROR handler", (t) =>
  fn(t)
    .given([])
    .when(create({ handler: 'index' }))
    .thenError('VALIDATION_ERROR', 'handler'));
test("Python311 handler 'pkg.module.main' is accepted", (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'Python311', handler: 'pkg.module.main' }))
    .then([created({ runtime: 'Python311', handler: 'pkg.module.main' })]));
test("Python311 handler without a function 'handler' → VALIDATION_ERROR handler", (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'Python311', handler: 'handler' }))
    .thenError('VALIDATION_ERROR', 'handler'));
test("Python311 handler with '-' in the module 'a-b.c' → VALIDATION_ERROR handler", (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'Python311', handler: 'a-b.c' }))
    .thenError('VALIDATION_ERROR', 'handler'));
test("Python311 handler with a path 'src/app.main' → VALIDATION_ERROR handler", (t) =>
  fn(t)
    .given([])
    .when(create({ runtime: 'Python311', handler: 'src/app.main' }))
    .thenError('VALIDATION_ERROR', 'handler'));

// Memory size
for (const memorySize of [128, 192, 10240]) {
  test(`memorySize ${memorySize} is accepted`, (t) =>
    fn(t)
      .given([])
      .when(create({ memorySize }))
      .then([created({ memorySize })]));
}
for (const memorySize of [64, 127, 130, 10304, 128.5]) {
  test(`memorySize ${memorySize} → VALIDATION_ERROR memorySize`, (t) =>
    fn(t).given([]).when(create({ memorySize })).thenError('VALIDATION_ERROR', 'memorySize'));
}

// Timeout
for (const timeout of [1, 900]) {
  test(`timeout ${timeout} is accepted`, (t) =>
    fn(t)
      .given([])
      .when(create({ timeout }))
      .then([created({ timeout })]));
}
for (const timeout of [0, 901, 1.5]) {
  test(`timeout ${timeout} → VALIDATION_ERROR timeout`, (t) =>
    fn(t).given([]).when(create({ timeout })).thenError('VALIDATION_ERROR', 'timeout'));
}

// Description
test('description of 256 characters is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ description: 'd'.repeat(256) }))
    .then([created({ description: 'd'.repeat(256) })]));
test('description of 257 characters → VALIDATION_ERROR description', (t) =>
  fn(t)
    .given([])
    .when(create({ description: 'd'.repeat(257) }))
    .thenError('VALIDATION_ERROR', 'description'));

// Environment
test('environment with valid keys is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { BUCKET_NAME: 'images', maxSize2: '1024' } }))
    .then([created({ environment: { BUCKET_NAME: 'images', maxSize2: '1024' } })]));
test('environment key starting with a digit → VALIDATION_ERROR environment.<key>', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { '1KEY': 'x' } }))
    .thenError('VALIDATION_ERROR', 'environment.1KEY'));
test("environment key with '-' → VALIDATION_ERROR environment.<key>", (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { 'MY-KEY': 'x' } }))
    .thenError('VALIDATION_ERROR', 'environment.MY-KEY'));
test("environment key starting with '_' → VALIDATION_ERROR environment.<key>", (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { _KEY: 'x' } }))
    .thenError('VALIDATION_ERROR', 'environment._KEY'));
test('environment of exactly 4096 bytes (keys and values) is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { K: 'x'.repeat(4095) } }))
    .then([created({ environment: { K: 'x'.repeat(4095) } })]));
test('environment of 4097 bytes → VALIDATION_ERROR environment', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { K: 'x'.repeat(4096) } }))
    .thenError('VALIDATION_ERROR', 'environment'));
test('environment keys count toward the 4096 bytes', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { KEY: 'x'.repeat(4094) } }))
    .thenError('VALIDATION_ERROR', 'environment'));
test('environment size counts UTF-8 bytes: 2049 characters of 4097 bytes → VALIDATION_ERROR', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { K: 'é'.repeat(2048) } }))
    .thenError('VALIDATION_ERROR', 'environment'));
test('environment of multi-byte characters totalling 4096 bytes is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { K: `${'é'.repeat(2047)}x` } }))
    .then([created({ environment: { K: `${'é'.repeat(2047)}x` } })]));

test('environment value that is not a string → VALIDATION_ERROR environment.<key>', (t) =>
  fn(t)
    .given([])
    .when(create({ environment: { MAX_SIZE: 1024 as unknown as string } }))
    .thenError('VALIDATION_ERROR', 'environment.MAX_SIZE'));

// Tags
test('50 tags are accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: manyTags(50) }))
    .then([created({ tags: manyTags(50) })]));
test('51 tags → VALIDATION_ERROR tags', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: manyTags(51) }))
    .thenError('VALIDATION_ERROR', 'tags'));
test('tag key of 128 characters is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { ['k'.repeat(128)]: 'v' } }))
    .then([created({ tags: { ['k'.repeat(128)]: 'v' } })]));
test('tag key of 129 characters → VALIDATION_ERROR tags.<key>', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { ['k'.repeat(129)]: 'v' } }))
    .thenError('VALIDATION_ERROR', `tags.${'k'.repeat(129)}`));
test('empty tag key → VALIDATION_ERROR tags.', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { '': 'v' } }))
    .thenError('VALIDATION_ERROR', 'tags.'));
test("tag key with ':' → VALIDATION_ERROR tags.<key>", (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { 'team:media': 'x' } }))
    .thenError('VALIDATION_ERROR', 'tags.team:media'));
test("tag value with ':' and an empty tag value are accepted", (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { 'cost-center': 'eng:42', team: '' } }))
    .then([created({ tags: { 'cost-center': 'eng:42', team: '' } })]));
test('tag value of 256 characters is accepted', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { team: 'v'.repeat(256) } }))
    .then([created({ tags: { team: 'v'.repeat(256) } })]));
test('tag value of 257 characters → VALIDATION_ERROR tags.<key>', (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { team: 'v'.repeat(257) } }))
    .thenError('VALIDATION_ERROR', 'tags.team'));
test("tag value with '#' → VALIDATION_ERROR tags.<key>", (t) =>
  fn(t)
    .given([])
    .when(create({ tags: { team: 'media#1' } }))
    .thenError('VALIDATION_ERROR', 'tags.team'));

// Create
test('create applies defaults: empty description, 128 MB, 3 s, no environment, no tags', (t) =>
  fn(t)
    .given([])
    .when({
      type: 'CreateFunction',
      name: NAME,
      ownerId: OWNER,
      configuration: { runtime: 'Node24', handler: 'index.handler' },
    })
    .then([
      {
        type: 'FunctionCreated',
        data: {
          name: NAME,
          ownerId: OWNER,
          description: '',
          runtime: 'Node24',
          handler: 'index.handler',
          memorySize: 128,
          timeout: 3,
          environment: {},
          tags: {},
          concurrencyLimit: null,
          asyncRetries: 2,
          maxEventAgeSeconds: 21_600,
        },
      },
    ]));
test('create with optional fields given as undefined applies the defaults', (t) =>
  fn(t)
    .given([])
    .when(
      create({
        description: undefined,
        memorySize: undefined,
        timeout: undefined,
        environment: undefined,
        tags: undefined,
      }),
    )
    .then([created()]));
test('create records the whole configuration and the owner', (t) => {
  const configuration = {
    description: 'Process and resize images',
    runtime: 'Python311',
    handler: 'handler.process_image',
    memorySize: 512,
    timeout: 30,
    environment: { BUCKET_NAME: 'processed-images', MAX_SIZE: '1024' },
    tags: { team: 'media', 'cost-center': 'engineering' },
  };
  fn(t)
    .given([])
    .when(create(configuration))
    .then([created(configuration)]);
});
test('create of an existing function → CONFLICT', (t) =>
  fn(t).given([created()]).when(create()).thenError('CONFLICT', 'already exists'));
test('create while the function is soft-deleted → CONFLICT (name reserved)', (t) =>
  fn(t).given([created(), deleted()]).when(create()).thenError('CONFLICT', 'reserved'));
test('create after purge is accepted', (t) =>
  fn(t)
    .given([created(), published(1), deleted(), purged()])
    .when(create(python))
    .then([created(python)]));
test('after purge and re-create, version numbers continue (never reused)', (t) =>
  fn(t)
    .given([...withVersions(1, 2), deleted(), purged(), created()])
    .when(publish())
    .then([published(3)]));
test('after purge and re-create, old versions are gone', (t) =>
  fn(t)
    .given([...withVersions(1, 2), deleted(), purged(), created()])
    .when(deleteVersion(2))
    .thenError('NOT_FOUND', 'Version 2'));

// Delete and purge
test('delete soft-deletes until purgeAfter', (t) => fn(t).given([created()]).when(deleteFunction()).then([deleted()]));
test('purge before purgeAfter → CONFLICT', (t) =>
  fn(t).given([created(), deleted()]).when(purge('2025-12-23T11:59:59.999Z')).thenError('CONFLICT', PURGE_AFTER));
test('purge at purgeAfter is accepted', (t) =>
  fn(t).given([created(), deleted()]).when(purge(PURGE_AFTER)).then([purged()]));
test('purge after purgeAfter is accepted', (t) =>
  fn(t).given([created(), deleted()]).when(purge('2026-01-01T00:00:00.000Z')).then([purged()]));
test('purge of a function that was never deleted → NOT_FOUND', (t) =>
  fn(t).given([created()]).when(purge('2026-01-01T00:00:00.000Z')).thenError('NOT_FOUND'));
test('purge of a missing function → NOT_FOUND', (t) =>
  fn(t).given([]).when(purge('2026-01-01T00:00:00.000Z')).thenError('NOT_FOUND'));
test('purge twice → NOT_FOUND', (t) =>
  fn(t).given([created(), deleted(), purged()]).when(purge('2026-01-01T00:00:00.000Z')).thenError('NOT_FOUND'));

// Every command but create and purge needs an active function
const commandsOnAFunction: Record<
  Exclude<FunctionCommand['type'], 'CreateFunction' | 'PurgeFunction'>,
  FunctionCommand
> = {
  UpdateFunctionConfiguration: update({ memorySize: 256 }),
  DeleteFunction: deleteFunction(),
  PublishFunctionVersion: publish(),
  DeleteFunctionVersion: deleteVersion(2),
  CreateFunctionAlias: createAlias('staging', 2),
  UpdateFunctionAlias: updateAlias('live', { version: 2 }),
  DeleteFunctionAlias: deleteAlias('live'),
};
const functionNotFound = `Function '${NAME}' not found`;
for (const [type, command] of Object.entries(commandsOnAFunction)) {
  test(`${type} on a missing function → NOT_FOUND`, (t) =>
    fn(t).given([]).when(command).thenError('NOT_FOUND', functionNotFound));
  test(`${type} on a deleted function → NOT_FOUND`, (t) =>
    fn(t)
      .given([...withVersions(1, 2), aliasCreated('live', 1), deleted()])
      .when(command)
      .thenError('NOT_FOUND', functionNotFound));
  test(`${type} on a purged function → NOT_FOUND`, (t) =>
    fn(t)
      .given([...withVersions(1, 2), aliasCreated('live', 1), deleted(), purged()])
      .when(command)
      .thenError('NOT_FOUND', functionNotFound));
}

// Update
test('update records only the changed fields', (t) =>
  fn(t)
    .given([created()])
    .when(update({ memorySize: 1024 }))
    .then([updated({ memorySize: 1024 })]));
test('update of memory, timeout and environment together', (t) => {
  const changes = {
    memorySize: 1024,
    timeout: 60,
    environment: { BUCKET_NAME: 'processed-images-v2', MAX_SIZE: '2048' },
  };
  fn(t)
    .given([created()])
    .when(update(changes))
    .then([updated(changes)]);
});
test('update drops fields given as undefined', (t) =>
  fn(t)
    .given([created()])
    .when(update({ memorySize: 256, timeout: undefined }))
    .then([updated({ memorySize: 256 })]));
test('update with an invalid memorySize → VALIDATION_ERROR memorySize', (t) =>
  fn(t)
    .given([created()])
    .when(update({ memorySize: 100 }))
    .thenError('VALIDATION_ERROR', 'memorySize'));
test('update with an invalid timeout → VALIDATION_ERROR timeout', (t) =>
  fn(t)
    .given([created()])
    .when(update({ timeout: 901 }))
    .thenError('VALIDATION_ERROR', 'timeout'));
test('update with an invalid description → VALIDATION_ERROR description', (t) =>
  fn(t)
    .given([created()])
    .when(update({ description: 'd'.repeat(257) }))
    .thenError('VALIDATION_ERROR', 'description'));
test('update with an invalid environment key → VALIDATION_ERROR environment.<key>', (t) =>
  fn(t)
    .given([created()])
    .when(update({ environment: { 'bad-key': 'x' } }))
    .thenError('VALIDATION_ERROR', 'environment.bad-key'));
test('update with an oversized environment → VALIDATION_ERROR environment', (t) =>
  fn(t)
    .given([created()])
    .when(update({ environment: { K: 'x'.repeat(4096) } }))
    .thenError('VALIDATION_ERROR', 'environment'));
test('update with an invalid tag → VALIDATION_ERROR tags.<key>', (t) =>
  fn(t)
    .given([created()])
    .when(update({ tags: { 'a:b': 'x' } }))
    .thenError('VALIDATION_ERROR', 'tags.a:b'));
test('update with an unknown runtime → VALIDATION_ERROR runtime', (t) =>
  fn(t)
    .given([created()])
    .when(update({ runtime: 'Ruby33' }))
    .thenError('VALIDATION_ERROR', 'runtime'));
test('update of the runtime checks the current handler against it → VALIDATION_ERROR handler', (t) =>
  fn(t)
    .given([created({ handler: 'src/app.main' })])
    .when(update({ runtime: 'Python311' }))
    .thenError('VALIDATION_ERROR', 'handler'));
test('update of the handler checks it against the current runtime → VALIDATION_ERROR handler', (t) =>
  fn(t)
    .given([created(python)])
    .when(update({ handler: 'src/app.main' }))
    .thenError('VALIDATION_ERROR', 'handler'));
test('update of runtime and handler together is accepted', (t) =>
  fn(t)
    .given([created()])
    .when(update(python))
    .then([updated(python)]));
test('update with no changes → VALIDATION_ERROR', (t) =>
  fn(t).given([created()]).when(update({})).thenError('VALIDATION_ERROR', 'body'));
test('update with only undefined changes → VALIDATION_ERROR', (t) =>
  fn(t)
    .given([created()])
    .when(update({ memorySize: undefined }))
    .thenError('VALIDATION_ERROR', 'body'));
test('update of publishedVersion to an existing version is accepted', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(update({ publishedVersion: 2 }))
    .then([updated({ publishedVersion: 2 })]));
test('update of publishedVersion to a missing version → VALIDATION_ERROR publishedVersion', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(update({ publishedVersion: 2 }))
    .thenError('VALIDATION_ERROR', 'publishedVersion'));
test('update of publishedVersion to a deleted version → VALIDATION_ERROR publishedVersion', (t) =>
  fn(t)
    .given([...withVersions(1, 2), versionDeleted(1)])
    .when(update({ publishedVersion: 1 }))
    .thenError('VALIDATION_ERROR', 'publishedVersion'));
test('update of publishedVersion to null unpublishes', (t) =>
  fn(t)
    .given([...withVersions(1), updated({ publishedVersion: 1 })])
    .when(update({ publishedVersion: null }))
    .then([updated({ publishedVersion: null })]));

// Publish
test('the first version is 1', (t) =>
  fn(t)
    .given([created()])
    .when(publish())
    .then([published(1)]));
test('versions grow by one', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(publish())
    .then([published(3)]));
test('after deleting v2 of v1..v2, the next version is still v3', (t) =>
  fn(t)
    .given([...withVersions(1, 2), versionDeleted(2)])
    .when(publish())
    .then([published(3)]));
test('after deleting every version, numbers are not reused', (t) =>
  fn(t)
    .given([...withVersions(1, 2, 3), versionDeleted(3), versionDeleted(2), versionDeleted(1)])
    .when(publish())
    .then([published(4)]));
test('the version snapshots the configuration at publish time, env overrides merged', (t) =>
  fn(t)
    .given([
      created({ memorySize: 512, timeout: 30, environment: { BUCKET_NAME: 'images', MAX_SIZE: '1024' } }),
      updated({ memorySize: 1024 }),
    ])
    .when(publish(['index.js'], { MAX_SIZE: '2048', DEBUG: '1' }, 'Fix image orientation bug'))
    .then([
      published(1, {
        description: 'Fix image orientation bug',
        memorySize: 1024,
        timeout: 30,
        environment: { BUCKET_NAME: 'images', MAX_SIZE: '2048', DEBUG: '1' },
      }),
    ]));
test('the version snapshots runtime and handler after a runtime change', (t) =>
  fn(t)
    .given([created(), updated({ runtime: 'Python311', handler: 'handler.process_image' })])
    .when(publish(['handler.py']))
    .then([published(1, python)]));
test('merged environment over 4096 bytes → VALIDATION_ERROR environment', (t) =>
  fn(t)
    .given([created({ environment: { BIG: 'x'.repeat(4000) } })])
    .when(publish(['index.js'], { MORE: 'x'.repeat(100) }))
    .thenError('VALIDATION_ERROR', 'environment'));
test('an override replacing a large value keeps the merged environment within 4096 bytes', (t) =>
  fn(t)
    .given([created({ environment: { BIG: 'x'.repeat(4000) } })])
    .when(publish(['index.js'], { BIG: 'small' }))
    .then([published(1, { environment: { BIG: 'small' } })]));
test('environment override with an invalid key → VALIDATION_ERROR environment.<key>', (t) =>
  fn(t)
    .given([created()])
    .when(publish(['index.js'], { 'bad-key': 'x' }))
    .thenError('VALIDATION_ERROR', 'environment.bad-key'));
test('version description over 256 characters → VALIDATION_ERROR description', (t) =>
  fn(t)
    .given([created()])
    .when(publish(['index.js'], {}, 'd'.repeat(257)))
    .thenError('VALIDATION_ERROR', 'description'));
for (const file of ['index.js', 'index.mjs', 'index.cjs']) {
  test(`Node24 'index.handler' is found in ${file}`, (t) =>
    fn(t)
      .given([created()])
      .when(publish([file, 'package.json']))
      .then([published(1)]));
}
test("Node24 'src/app.main' is found in src/app.js", (t) =>
  fn(t)
    .given([created({ handler: 'src/app.main' })])
    .when(publish(['src/app.js']))
    .then([published(1, { handler: 'src/app.main' })]));
for (const files of [[], ['index.ts'], ['lib/index.js'], ['index.json']]) {
  test(`Node24 'index.handler' with a ZIP of [${files.join(', ')}] → INVALID_CODE_PACKAGE code`, (t) =>
    fn(t).given([created()]).when(publish(files)).thenError('INVALID_CODE_PACKAGE', 'code'));
}
test("Node24 'src/app.main' with only app.js at the root → INVALID_CODE_PACKAGE code", (t) =>
  fn(t)
    .given([created({ handler: 'src/app.main' })])
    .when(publish(['app.js']))
    .thenError('INVALID_CODE_PACKAGE', 'code'));
test("Python311 'handler.process_image' is found in handler.py", (t) =>
  fn(t)
    .given([created(python)])
    .when(publish(['handler.py']))
    .then([published(1, python)]));
test("Python311 'pkg.mod.fn' is found in pkg/mod.py", (t) => {
  const nested = { runtime: 'Python311', handler: 'pkg.mod.fn' };
  fn(t)
    .given([created(nested)])
    .when(publish(['pkg/__init__.py', 'pkg/mod.py']))
    .then([published(1, nested)]);
});
for (const files of [['pkg.mod.py'], ['mod.py'], ['pkg/mod/fn.py'], ['pkg/mod.js']]) {
  test(`Python311 'pkg.mod.fn' with a ZIP of [${files.join(', ')}] → INVALID_CODE_PACKAGE code`, (t) =>
    fn(t)
      .given([created({ runtime: 'Python311', handler: 'pkg.mod.fn' })])
      .when(publish(files))
      .thenError('INVALID_CODE_PACKAGE', 'code'));
}

// Delete version
test('delete of an unused version', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(deleteVersion(1))
    .then([versionDeleted(1)]));
test('delete of a missing version → NOT_FOUND', (t) =>
  fn(t).given(withVersions(1)).when(deleteVersion(2)).thenError('NOT_FOUND', 'Version 2'));
test('delete of an already deleted version → NOT_FOUND', (t) =>
  fn(t)
    .given([...withVersions(1, 2), versionDeleted(1)])
    .when(deleteVersion(1))
    .thenError('NOT_FOUND', 'Version 1'));
test("delete of an alias's primary version → CONFLICT", (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1)])
    .when(deleteVersion(1))
    .thenError('CONFLICT', 'production'));
test('delete of a version an alias routes some traffic to → CONFLICT', (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1, { 1: 90, 2: 10 })])
    .when(deleteVersion(2))
    .thenError('CONFLICT', 'production'));
test('delete of a version routed with weight 0 → CONFLICT', (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1, { 1: 100, 2: 0 })])
    .when(deleteVersion(2))
    .thenError('CONFLICT', 'production'));
test('delete of the publishedVersion → CONFLICT', (t) =>
  fn(t)
    .given([...withVersions(1, 2), updated({ publishedVersion: 2 })])
    .when(deleteVersion(2))
    .thenError('CONFLICT', 'publishedVersion'));
test('delete of a version no longer published', (t) =>
  fn(t)
    .given([...withVersions(1, 2), updated({ publishedVersion: 2 }), updated({ publishedVersion: null })])
    .when(deleteVersion(2))
    .then([versionDeleted(2)]));
test('delete of a version an alias moved away from', (t) =>
  fn(t)
    .given([
      ...withVersions(1, 2),
      aliasCreated('production', 1, { 1: 90, 2: 10 }),
      aliasRoutingChanged('production', 2),
    ])
    .when(deleteVersion(1))
    .then([versionDeleted(1)]));
test('delete of a version an alias moved to → CONFLICT', (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1), aliasRoutingChanged('production', 2)])
    .when(deleteVersion(2))
    .thenError('CONFLICT', 'production'));
test('delete of a version whose alias was deleted', (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1), aliasDeleted('production')])
    .when(deleteVersion(1))
    .then([versionDeleted(1)]));

// Create alias
test('create alias on a version routes 100% to it', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 2, undefined, 'Production version'))
    .then([aliasCreated('production', 2, { 2: 100 }, 'Production version')]));
test('create alias with a missing version → VALIDATION_ERROR version', (t) =>
  fn(t).given(withVersions(1)).when(createAlias('production', 5)).thenError('VALIDATION_ERROR', 'version'));
test('create alias with a deleted version → VALIDATION_ERROR version', (t) =>
  fn(t)
    .given([...withVersions(1, 2), versionDeleted(1)])
    .when(createAlias('production', 1))
    .thenError('VALIDATION_ERROR', 'version'));
test('create alias with an all-digit name → VALIDATION_ERROR aliasName', (t) =>
  fn(t).given(withVersions(1)).when(createAlias('123', 1)).thenError('VALIDATION_ERROR', 'aliasName'));
test('create alias with a name of 128 characters is accepted', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('a'.repeat(128), 1))
    .then([aliasCreated('a'.repeat(128), 1)]));
test('create alias with a name of 129 characters → VALIDATION_ERROR aliasName', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('a'.repeat(129), 1))
    .thenError('VALIDATION_ERROR', 'aliasName'));
test("create alias with a leading '-' → VALIDATION_ERROR aliasName", (t) =>
  fn(t).given(withVersions(1)).when(createAlias('-live', 1)).thenError('VALIDATION_ERROR', 'aliasName'));
test('create alias with digits and letters (v2) is accepted', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('v2', 1))
    .then([aliasCreated('v2', 1)]));
test('create alias with a description over 256 characters → VALIDATION_ERROR description', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('live', 1, undefined, 'd'.repeat(257)))
    .thenError('VALIDATION_ERROR', 'description'));
test('create of an existing alias → CONFLICT', (t) =>
  fn(t)
    .given([...withVersions(1), aliasCreated('production', 1)])
    .when(createAlias('production', 1))
    .thenError('CONFLICT', 'production'));
test('create alias after deleting one of that name is accepted', (t) =>
  fn(t)
    .given([...withVersions(1, 2), aliasCreated('production', 1), aliasDeleted('production')])
    .when(createAlias('production', 2))
    .then([aliasCreated('production', 2)]));

// Routing weights
test('routing across 3 versions 50/30/20 is accepted', (t) =>
  fn(t)
    .given(withVersions(1, 2, 3))
    .when(createAlias('production', 1, { 1: 50, 2: 30, 3: 20 }))
    .then([aliasCreated('production', 1, { 1: 50, 2: 30, 3: 20 })]));
test('routing weights summing to 99 → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 90, 2: 9 }))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('routing weights summing to 101 → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 90, 2: 11 }))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('routing weight 10.5 → VALIDATION_ERROR routingConfig.<version>', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 89.5, 2: 10.5 }))
    .thenError('VALIDATION_ERROR', 'routingConfig.2'));
test('negative routing weight → VALIDATION_ERROR routingConfig.<version>', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 110, 2: -10 }))
    .thenError('VALIDATION_ERROR', 'routingConfig.2'));
test('routing to an unknown version → VALIDATION_ERROR routingConfig.<version>', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 90, 7: 10 }))
    .thenError('VALIDATION_ERROR', 'routingConfig.7'));
test('routing key that is not a version number → VALIDATION_ERROR routingConfig.<key>', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', 1, { 1: 90, v2: 10 }))
    .thenError('VALIDATION_ERROR', 'routingConfig.v2'));
test('empty routing → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('production', 1, {}))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('create alias with routing and no version picks the heaviest version as primary', (t) =>
  fn(t)
    .given(withVersions(1, 2))
    .when(createAlias('production', undefined, { 1: 10, 2: 90 }))
    .then([aliasCreated('production', 2, { 1: 10, 2: 90 })]));
test('create alias with neither version nor routing → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given(withVersions(1))
    .when(createAlias('production', undefined))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('alias version not among the routed versions → VALIDATION_ERROR version', (t) =>
  fn(t)
    .given(withVersions(1, 2, 3))
    .when(createAlias('production', 3, { 1: 90, 2: 10 }))
    .thenError('VALIDATION_ERROR', 'version'));

// Update alias
test('simple update {version: 6} routes 100% to v6', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5, { 5: 100 }, 'Production version')])
    .when(updateAlias('production', { version: 6 }))
    .then([aliasRoutingChanged('production', 6, { 6: 100 }, 'Production version')]));
test('simple update replaces a canary routing', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5, { 5: 90, 6: 10 })])
    .when(updateAlias('production', { version: 6 }))
    .then([aliasRoutingChanged('production', 6, { 6: 100 })]));
test('weighted update with version and routing (canary)', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5)])
    .when(updateAlias('production', { version: 5, routingConfig: { 5: 90, 6: 10 } }))
    .then([aliasRoutingChanged('production', 5, { 5: 90, 6: 10 })]));
test('routing without version picks the heaviest version as primary', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5)])
    .when(updateAlias('production', { routingConfig: { 5: 20, 6: 80 } }))
    .then([aliasRoutingChanged('production', 6, { 5: 20, 6: 80 })]));
test('routing without version picks the lowest version on a tie', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 6)])
    .when(updateAlias('production', { routingConfig: { 6: 50, 5: 50 } }))
    .then([aliasRoutingChanged('production', 5, { 6: 50, 5: 50 })]));
test('update with an empty routing and no version → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given([...withVersions(5), aliasCreated('production', 5)])
    .when(updateAlias('production', { routingConfig: {} }))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('update of the description only keeps version and routing', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5, { 5: 90, 6: 10 }, 'old')])
    .when(updateAlias('production', { description: 'new' }))
    .then([aliasRoutingChanged('production', 5, { 5: 90, 6: 10 }, 'new')]));
test('update of an alias to a missing version → VALIDATION_ERROR version', (t) =>
  fn(t)
    .given([...withVersions(5), aliasCreated('production', 5)])
    .when(updateAlias('production', { version: 6 }))
    .thenError('VALIDATION_ERROR', 'version'));
test('update with weights not summing to 100 → VALIDATION_ERROR routingConfig', (t) =>
  fn(t)
    .given([...withVersions(5, 6), aliasCreated('production', 5)])
    .when(updateAlias('production', { version: 5, routingConfig: { 5: 50, 6: 49 } }))
    .thenError('VALIDATION_ERROR', 'routingConfig'));
test('update of a missing alias → NOT_FOUND', (t) =>
  fn(t)
    .given(withVersions(5))
    .when(updateAlias('production', { version: 5 }))
    .thenError('NOT_FOUND', 'production'));
test('update of a deleted alias → NOT_FOUND', (t) =>
  fn(t)
    .given([...withVersions(5), aliasCreated('production', 5), aliasDeleted('production')])
    .when(updateAlias('production', { version: 5 }))
    .thenError('NOT_FOUND', 'production'));

// Delete alias
test('delete alias', (t) =>
  fn(t)
    .given([...withVersions(1), aliasCreated('production', 1)])
    .when(deleteAlias('production'))
    .then([aliasDeleted('production')]));
test('delete of a missing alias → NOT_FOUND', (t) =>
  fn(t).given(withVersions(1)).when(deleteAlias('production')).thenError('NOT_FOUND', 'production'));
test('delete of an already deleted alias → NOT_FOUND', (t) =>
  fn(t)
    .given([...withVersions(1), aliasCreated('production', 1), aliasDeleted('production')])
    .when(deleteAlias('production'))
    .thenError('NOT_FOUND', 'production'));

// Unknown commands and events are refused loudly, not ignored
test('an unknown command throws', (t) => {
  const state = functionDecider.evolve(functionDecider.initialState, created());
  t.throws(() => functionDecider.decide({ type: 'RenameFunction', name: NAME } as unknown as FunctionCommand, state), {
    message: /Unhandled case/,
  });
});
test('an unknown event throws', (t) => {
  t.throws(
    () =>
      functionDecider.evolve(functionDecider.initialState, {
        type: 'FunctionRenamed',
        data: {},
      } as unknown as FunctionEvent),
    { message: /Unhandled case/ },
  );
});
