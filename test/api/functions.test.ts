import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { createFunctionCommands } from '../../commands/functions.ts';
import { createPurger } from '../../commands/purger.ts';
import { inspectZip } from '../../infra/codePackage/inspect.ts';
import { createFileCodeStore } from '../../infra/codeStore/files/index.ts';
import { randomIds } from '../../infra/system.ts';
import { HELLO_NODE, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, createFunction, isIsoTimestamp, NODE_FUNCTION, publishVersion, uniqueName } from './support.ts';

const test = anyTest as TestFn<TestPlatform & { adminId: string }>;

const FUNCTIONS = '/api/v1/functions';

interface FunctionList {
  functions: Record<string, unknown>[];
  total: number;
  limit: number;
  offset: number;
}

test.before(async (t) => {
  const platform = await startTestPlatform();
  const users = await platform.admin.request<{ users: { username: string; userId: string }[] }>('GET', '/api/v1/users');
  const adminId = users.body.users.find((user) => user.username === 'admin@example.com')?.userId ?? '';
  t.context = Object.assign(platform, { adminId });
});

test.after.always(async (t) => {
  await t.context.stop();
});

test('POST /functions creates a function with the documented fields and defaults', async (t) => {
  const name = uniqueName('create');
  const created = await t.context.admin.request('POST', FUNCTIONS, {
    body: { name, description: 'Says hello', ...NODE_FUNCTION, environment: { GREETING: 'hi' }, tags: { team: 'web' } },
  });
  t.is(created.status, 201);
  t.like(created.body, {
    name,
    description: 'Says hello',
    runtime: 'Node24',
    handler: 'index.handler',
    memorySize: 128,
    timeout: 3,
    publishedVersion: null,
    ownerId: t.context.adminId,
  });
  t.true(isIsoTimestamp(created.body.createdAt));
  t.true(isIsoTimestamp(created.body.updatedAt));
  t.is(created.body.createdAt, created.body.updatedAt);
});

test("a function's ownerId is the creating user's id", async (t) => {
  const developer = await t.context.as('Developer');
  const name = uniqueName('owner');
  const created = await createFunction(t, developer, name);
  t.regex(String(created.ownerId), /^user-/);
  t.not(created.ownerId, t.context.adminId);
  const fetched = await t.context.admin.request('GET', `${FUNCTIONS}/${name}`);
  t.is(fetched.body.ownerId, created.ownerId);
});

test('creating a function with a name that exists is 409 CONFLICT', async (t) => {
  const name = uniqueName('duplicate');
  await createFunction(t, t.context.admin, name);
  const again = await t.context.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } });
  assertError(t, again, 409, 'CONFLICT');
});

test('concurrent creates of one name: exactly one wins, the rest are 409', async (t) => {
  const name = uniqueName('race');
  const responses = await Promise.all(
    Array.from({ length: 5 }, () => t.context.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } })),
  );
  t.deepEqual(responses.map((response) => response.status).sort(), [201, 409, 409, 409, 409]);
});

test('POST /functions validates its body', async (t) => {
  const invalid = await t.context.admin.request('POST', FUNCTIONS, {
    body: { name: uniqueName('bad'), runtime: 'Cobol85', handler: 'index.handler', memorySize: 100, timeout: 0 },
  });
  assertError(t, invalid, 400, 'VALIDATION_ERROR', ['runtime', 'memorySize', 'timeout']);
  const missing = await t.context.admin.request('POST', FUNCTIONS, { body: { runtime: 'Node24' } });
  assertError(t, missing, 400, 'VALIDATION_ERROR', ['name', 'handler']);
  const badName = await t.context.admin.request('POST', FUNCTIONS, { body: { name: '../etc', ...NODE_FUNCTION } });
  assertError(t, badName, 400, 'VALIDATION_ERROR', ['name']);
});

test('GET /functions filters by runtime', async (t) => {
  const runtimeTag = uniqueName('rt');
  const node = uniqueName('node');
  const python = uniqueName('python');
  await createFunction(t, t.context.admin, node, { tags: { suite: runtimeTag } });
  await createFunction(t, t.context.admin, python, {
    runtime: 'Python311',
    handler: 'handler.main',
    tags: { suite: runtimeTag },
  });
  const response = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?runtime=Python311&limit=100`);
  t.is(response.status, 200);
  const names = response.body.functions.map((fn) => fn.name);
  t.true(names.includes(python));
  t.false(names.includes(node));
  t.true(response.body.functions.every((fn) => fn.runtime === 'Python311'));
  const both = await t.context.admin.request<FunctionList>(
    'GET',
    `${FUNCTIONS}?tag=suite:${runtimeTag}&runtime=Node24`,
  );
  t.deepEqual(
    both.body.functions.map((fn) => fn.name),
    [node],
  );
});

test('GET /functions filters by tag key:value, also for keys with a dash', async (t) => {
  const value = uniqueName('media');
  const media = uniqueName('tagged');
  const other = uniqueName('tagged');
  await createFunction(t, t.context.admin, media, { tags: { team: value, 'cost-center': `${value}-eng` } });
  await createFunction(t, t.context.admin, other, { tags: { team: `${value}-other`, 'cost-center': 'finance' } });

  const byTeam = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=team:${value}`);
  t.is(byTeam.status, 200);
  t.deepEqual(
    byTeam.body.functions.map((fn) => fn.name),
    [media],
  );
  t.is(byTeam.body.total, 1);

  const byCostCenter = await t.context.admin.request<FunctionList>(
    'GET',
    `${FUNCTIONS}?tag=${encodeURIComponent(`cost-center:${value}-eng`)}`,
  );
  t.is(byCostCenter.status, 200);
  t.deepEqual(
    byCostCenter.body.functions.map((fn) => fn.name),
    [media],
  );

  const none = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=team:${uniqueName('nobody')}`);
  t.is(none.status, 200);
  t.deepEqual(none.body.functions, []);
  t.is(none.body.total, 0);
});

test('GET /functions filters by tags whose keys hold any character tags allow', async (t) => {
  const value = uniqueName('v');
  const name = uniqueName('tagchars');
  const tags = {
    'app.kubernetes.io/name': value,
    'owner email': `${value}@example.com`,
    'a=b+c@d': value,
    équipe: value,
  };
  await createFunction(t, t.context.admin, name, { tags });
  for (const [key, tagValue] of Object.entries(tags)) {
    const response = await t.context.admin.request<FunctionList>(
      'GET',
      `${FUNCTIONS}?tag=${encodeURIComponent(`${key}:${tagValue}`)}`,
    );
    t.is(response.status, 200, `tag key '${key}': ${JSON.stringify(response.body)}`);
    t.deepEqual(
      response.body.functions?.map((fn) => fn.name),
      [name],
      `tag key '${key}'`,
    );
  }
  const malformed = await t.context.admin.request('GET', `${FUNCTIONS}?tag=team`);
  assertError(t, malformed, 400, 'VALIDATION_ERROR', ['tag']);
  const odd = await t.context.admin.request<FunctionList>(
    'GET',
    `${FUNCTIONS}?tag=${encodeURIComponent(`it's "odd"\\:${value}`)}`,
  );
  t.is(odd.status, 200, JSON.stringify(odd.body));
  t.deepEqual(odd.body.functions, []);
});

test('GET /functions filters by the tags a function has now', async (t) => {
  const value = uniqueName('retag');
  const name = uniqueName('retagged');
  await createFunction(t, t.context.admin, name, { tags: { 'stage.name': `${value}-old` } });
  const updated = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, {
    body: { tags: { 'stage.name': value } },
  });
  t.is(updated.status, 200);
  const byNew = await t.context.admin.request<FunctionList>(
    'GET',
    `${FUNCTIONS}?tag=${encodeURIComponent(`stage.name:${value}`)}`,
  );
  t.deepEqual(
    byNew.body.functions.map((fn) => fn.name),
    [name],
  );
  t.deepEqual(byNew.body.functions[0]?.tags, { 'stage.name': value });
  const byOld = await t.context.admin.request<FunctionList>(
    'GET',
    `${FUNCTIONS}?tag=${encodeURIComponent(`stage.name:${value}-old`)}`,
  );
  t.deepEqual(byOld.body.functions, []);
});

test('GET /functions pages with limit and offset and reports the total', async (t) => {
  const suite = uniqueName('page');
  const names = Array.from({ length: 5 }, (_, i) => `${suite}-${i}`);
  for (const name of names) await createFunction(t, t.context.admin, name, { tags: { suite } });

  const first = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=suite:${suite}&limit=2`);
  t.is(first.status, 200);
  t.like(first.body, { total: 5, limit: 2, offset: 0 });
  t.deepEqual(
    first.body.functions.map((fn) => fn.name),
    names.slice(0, 2),
  );
  const last = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=suite:${suite}&limit=2&offset=4`);
  t.like(last.body, { total: 5, limit: 2, offset: 4 });
  t.deepEqual(
    last.body.functions.map((fn) => fn.name),
    names.slice(4),
  );
  const beyond = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=suite:${suite}&offset=10`);
  t.deepEqual(beyond.body.functions, []);
  t.is(beyond.body.total, 5);

  const defaults = await t.context.admin.request<FunctionList>('GET', FUNCTIONS);
  t.like(defaults.body, { limit: 20, offset: 0 });
  t.true(defaults.body.functions.length <= 20);
  const item = first.body.functions[0] ?? {};
  for (const field of ['name', 'runtime', 'memorySize', 'totalInvocations', 'lastInvokedAt', 'createdAt']) {
    t.true(field in item, `list items have ${field}`);
  }
});

test('GET /functions refuses a limit outside 1-100 and a bad offset', async (t) => {
  for (const query of ['limit=0', 'limit=101', 'limit=abc', 'limit=1.5', 'offset=-1', 'offset=abc']) {
    const response = await t.context.admin.request('GET', `${FUNCTIONS}?${query}`);
    const field = query.split('=')[0] ?? '';
    assertError(t, response, 400, 'VALIDATION_ERROR', [field]);
  }
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}?limit=100`)).status, 200);
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}?limit=1`)).status, 200);
});

test('GET /functions/{name} shows the function with its environment', async (t) => {
  const name = uniqueName('get');
  await createFunction(t, t.context.admin, name, {
    description: 'detail',
    memorySize: 512,
    timeout: 30,
    environment: { BUCKET_NAME: 'processed-images', MAX_SIZE: '1024' },
  });
  const response = await t.context.admin.request('GET', `${FUNCTIONS}/${name}`);
  t.is(response.status, 200);
  t.like(response.body, {
    name,
    description: 'detail',
    runtime: 'Node24',
    handler: 'index.handler',
    memorySize: 512,
    timeout: 30,
    environment: { BUCKET_NAME: 'processed-images', MAX_SIZE: '1024' },
    publishedVersion: null,
    totalInvocations: 0,
  });
  t.true(isIsoTimestamp(response.body.createdAt));
  t.true(isIsoTimestamp(response.body.updatedAt));
});

test('GET /functions/{name} of an unknown function is 404', async (t) => {
  const response = await t.context.admin.request('GET', `${FUNCTIONS}/${uniqueName('missing')}`);
  assertError(t, response, 404, 'NOT_FOUND');
});

test('PUT /functions/{name} changes the configuration, visible in the next GET', async (t) => {
  const name = uniqueName('update');
  const created = await createFunction(t, t.context.admin, name);
  const response = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, {
    body: { memorySize: 1024, timeout: 60, environment: { BUCKET_NAME: 'processed-images-v2', MAX_SIZE: '2048' } },
  });
  t.is(response.status, 200);
  t.like(response.body, { name, memorySize: 1024, timeout: 60 });
  t.true(isIsoTimestamp(response.body.updatedAt));
  t.true(Date.parse(String(response.body.updatedAt)) >= Date.parse(String(created.updatedAt)));

  const fetched = await t.context.admin.request('GET', `${FUNCTIONS}/${name}`);
  t.like(fetched.body, {
    memorySize: 1024,
    timeout: 60,
    environment: { BUCKET_NAME: 'processed-images-v2', MAX_SIZE: '2048' },
    createdAt: created.createdAt,
    updatedAt: response.body.updatedAt,
  });
});

test('PUT /functions/{name} refuses invalid values and unknown fields', async (t) => {
  const name = uniqueName('badupdate');
  await createFunction(t, t.context.admin, name);
  const memory = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { memorySize: 100 } });
  assertError(t, memory, 400, 'VALIDATION_ERROR', ['memorySize']);
  const unknown = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { colour: 'blue' } });
  assertError(t, unknown, 400, 'VALIDATION_ERROR', ['colour']);
  const empty = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: {} });
  assertError(t, empty, 400, 'VALIDATION_ERROR');
  const wrongType = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { timeout: '60' } });
  assertError(t, wrongType, 400, 'VALIDATION_ERROR', ['timeout']);
  const fetched = await t.context.admin.request('GET', `${FUNCTIONS}/${name}`);
  t.like(fetched.body, { memorySize: 128, timeout: 3 });
});

test('PUT /functions/{name} of an unknown function is 404', async (t) => {
  const response = await t.context.admin.request('PUT', `${FUNCTIONS}/${uniqueName('missing')}`, {
    body: { timeout: 5 },
  });
  assertError(t, response, 404, 'NOT_FOUND');
});

test('publishedVersion can be set to an existing version and shows as "vN"', async (t) => {
  const name = uniqueName('publish');
  await createFunction(t, t.context.admin, name);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);

  const asNumber = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { publishedVersion: 1 } });
  t.is(asNumber.status, 200);
  t.is(asNumber.body.publishedVersion, 'v1');
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}/${name}`)).body.publishedVersion, 'v1');

  const asString = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { publishedVersion: 'v2' } });
  t.is(asString.status, 200);
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}/${name}`)).body.publishedVersion, 'v2');

  const missing = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { publishedVersion: 'v9' } });
  assertError(t, missing, 400, 'VALIDATION_ERROR', ['publishedVersion']);
  const garbage = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, {
    body: { publishedVersion: 'latest' },
  });
  assertError(t, garbage, 400, 'VALIDATION_ERROR', ['publishedVersion']);
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}/${name}`)).body.publishedVersion, 'v2');

  const cleared = await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { publishedVersion: null } });
  t.is(cleared.status, 200);
  t.is((await t.context.admin.request('GET', `${FUNCTIONS}/${name}`)).body.publishedVersion, null);
});

test('DELETE /functions/{name} hides the function and keeps its name reserved', async (t) => {
  const name = uniqueName('delete');
  await createFunction(t, t.context.admin, name, { tags: { suite: name } });
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  const alias = await t.context.admin.request('POST', `${FUNCTIONS}/${name}/aliases`, {
    body: { aliasName: 'live', version: 1 },
  });
  t.is(alias.status, 201);

  const deleted = await t.context.admin.request<unknown>('DELETE', `${FUNCTIONS}/${name}`);
  t.is(deleted.status, 204);
  t.is(deleted.body, undefined);

  assertError(t, await t.context.admin.request('GET', `${FUNCTIONS}/${name}`), 404, 'NOT_FOUND');
  const list = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?tag=suite:${name}`);
  t.deepEqual(list.body.functions, []);
  t.is(list.body.total, 0);
  const all = await t.context.admin.request<FunctionList>('GET', `${FUNCTIONS}?limit=100`);
  t.false(all.body.functions.some((fn) => fn.name === name));

  const again = await t.context.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } });
  assertError(t, again, 409, 'CONFLICT');

  assertError(t, await t.context.admin.request('DELETE', `${FUNCTIONS}/${name}`), 404, 'NOT_FOUND');
  assertError(
    t,
    await t.context.admin.request('PUT', `${FUNCTIONS}/${name}`, { body: { timeout: 5 } }),
    404,
    'NOT_FOUND',
  );
});

test('the versions and aliases of a deleted function are 404', async (t) => {
  const name = uniqueName('gone');
  await createFunction(t, t.context.admin, name);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  t.is(
    (await t.context.admin.request('POST', `${FUNCTIONS}/${name}/aliases`, { body: { aliasName: 'live', version: 1 } }))
      .status,
    201,
  );
  t.is((await t.context.admin.request('DELETE', `${FUNCTIONS}/${name}`)).status, 204);

  const requests: [string, string, unknown?][] = [
    ['GET', `${FUNCTIONS}/${name}/versions`],
    ['POST', `${FUNCTIONS}/${name}/versions`, { code: HELLO_NODE }],
    ['GET', `${FUNCTIONS}/${name}/versions/1`],
    ['DELETE', `${FUNCTIONS}/${name}/versions/1`],
    ['GET', `${FUNCTIONS}/${name}/aliases`],
    ['POST', `${FUNCTIONS}/${name}/aliases`, { aliasName: 'other', version: 1 }],
    ['GET', `${FUNCTIONS}/${name}/aliases/live`],
    ['PUT', `${FUNCTIONS}/${name}/aliases/live`, { version: 1 }],
    ['DELETE', `${FUNCTIONS}/${name}/aliases/live`],
  ];
  for (const [method, path, body] of requests) {
    const response = await t.context.admin.request(method, path, body === undefined ? {} : { body });
    assertError(t, response, 404, 'NOT_FOUND');
  }
});

test('a deleted function is purged after its retention, and its name can be used again', async (t) => {
  const platform = await startTestPlatform({ STRATA_FUNCTION_RETENTION: 'PT1S' });
  try {
    const name = uniqueName('purge');
    await createFunction(t, platform.admin, name);
    await publishVersion(t, platform.admin, name, HELLO_NODE);
    t.is((await platform.admin.request('DELETE', `${FUNCTIONS}/${name}`)).status, 204);
    assertError(
      t,
      await platform.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } }),
      409,
      'CONFLICT',
    );

    const { eventStore, readStore, projector } = platform.platform;
    const functions = createFunctionCommands({
      eventStore,
      codeStore: createFileCodeStore({ directory: join(platform.dataDir, 'code') }),
      inspectCodePackage: (bytes) => inspectZip(bytes),
      retentionMs: 1000,
      awaitProjection: (position) => projector.waitFor(position),
    });
    const purger = createPurger({ readStore, functions, now: () => new Date(), newId: () => randomIds.next('purge') });
    t.deepEqual(await purger.sweep(), [], 'nothing is due before the retention ends');

    await new Promise((resolve) => setTimeout(resolve, 1100));
    t.deepEqual(await purger.sweep(), [name]);
    t.deepEqual(await purger.sweep(), []);

    const recreated = await platform.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } });
    t.is(recreated.status, 201);
    const versions = await platform.admin.request('GET', `${FUNCTIONS}/${name}/versions`);
    t.is(versions.status, 200);
    t.deepEqual(versions.body.versions, []);
    t.is(versions.body.total, 0);
  } finally {
    await platform.stop();
  }
});

test('the platform purges what is due when it starts', async (t) => {
  const first = await startTestPlatform({ STRATA_FUNCTION_RETENTION: 'PT1S' });
  const name = uniqueName('restart');
  try {
    await createFunction(t, first.admin, name);
    t.is((await first.admin.request('DELETE', `${FUNCTIONS}/${name}`)).status, 204);
  } finally {
    await first.stop({ keepData: true });
  }
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const second = await startTestPlatform({ STRATA_FUNCTION_RETENTION: 'PT1S' }, {}, first.dataDir);
  try {
    let status = 0;
    for (let attempt = 0; attempt < 50 && status !== 201; attempt += 1) {
      const response = await second.admin.request('POST', FUNCTIONS, { body: { name, ...NODE_FUNCTION } });
      status = response.status;
      if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.is(status, 201);
  } finally {
    await second.stop();
  }
});
