import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { type Client, HELLO_NODE, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, createFunction, isIsoTimestamp, publishVersion, uniqueName } from './support.ts';

type Context = TestPlatform & { operator: Client; developer: Client };

const test = anyTest as TestFn<Context>;

const aliasesOf = (name: string) => `/api/v1/functions/${name}/aliases`;

test.before(async (t) => {
  const platform = await startTestPlatform();
  const [operator, developer] = await Promise.all([platform.as('Operator'), platform.as('Developer')]);
  t.context = Object.assign(platform, { operator, developer });
});

test.after.always(async (t) => {
  await t.context.stop();
});

/** A function with `versions` published versions (1..n). */
const functionWithVersions = async (t: ExecutionContext<Context>, versions: number) => {
  const name = uniqueName('alias');
  await createFunction(t, t.context.admin, name);
  for (let i = 0; i < versions; i += 1) await publishVersion(t, t.context.admin, name, HELLO_NODE);
  return name;
};

test('POST /aliases creates an alias on a version', async (t) => {
  const name = await functionWithVersions(t, 2);
  const response = await t.context.developer.request('POST', aliasesOf(name), {
    body: { aliasName: 'production', version: 2, description: 'Production version' },
  });
  t.is(response.status, 201);
  t.like(response.body, {
    functionName: name,
    aliasName: 'production',
    version: 2,
    description: 'Production version',
    routingConfig: { '2': 100 },
  });
  t.true(isIsoTimestamp(response.body.createdAt));
});

test('POST /aliases with only a routingConfig takes its heaviest version', async (t) => {
  const name = await functionWithVersions(t, 2);
  const single = await t.context.admin.request('POST', aliasesOf(name), {
    body: { aliasName: 'one', routingConfig: { '2': 100 } },
  });
  t.is(single.status, 201);
  t.like(single.body, { version: 2, routingConfig: { '2': 100 } });
  const split = await t.context.admin.request('POST', aliasesOf(name), {
    body: { aliasName: 'split', routingConfig: { '1': 30, '2': 70 } },
  });
  t.is(split.status, 201);
  t.like(split.body, { version: 2, routingConfig: { '1': 30, '2': 70 } });
});

test('an Operator routes an alias across three versions by weight', async (t) => {
  const name = await functionWithVersions(t, 3);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'production', version: 1 } })).status,
    201,
  );
  const routingConfig = { '1': 80, '2': 15, '3': 5 };
  const updated = await t.context.operator.request('PUT', `${aliasesOf(name)}/production`, {
    body: { version: 1, routingConfig },
  });
  t.is(updated.status, 200);
  t.like(updated.body, { functionName: name, aliasName: 'production', version: 1, routingConfig });
  t.true(isIsoTimestamp(updated.body.updatedAt));

  const fetched = await t.context.operator.request('GET', `${aliasesOf(name)}/production`);
  t.is(fetched.status, 200);
  t.deepEqual(fetched.body.routingConfig, routingConfig);
  t.is(fetched.body.version, 1);
  t.is(fetched.body.updatedAt, updated.body.updatedAt);

  const simple = await t.context.operator.request('PUT', `${aliasesOf(name)}/production`, { body: { version: 3 } });
  t.is(simple.status, 200);
  t.like(simple.body, { version: 3, routingConfig: { '3': 100 } });
  t.deepEqual((await t.context.admin.request('GET', `${aliasesOf(name)}/production`)).body.routingConfig, { '3': 100 });
});

test('weights that do not sum to 100 are refused', async (t) => {
  const name = await functionWithVersions(t, 2);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 1 } })).status,
    201,
  );
  const under = await t.context.operator.request('PUT', `${aliasesOf(name)}/live`, {
    body: { version: 1, routingConfig: { '1': 80, '2': 10 } },
  });
  assertError(t, under, 400, 'VALIDATION_ERROR', ['routingConfig']);
  const over = await t.context.admin.request('POST', aliasesOf(name), {
    body: { aliasName: 'over', routingConfig: { '1': 80, '2': 30 } },
  });
  assertError(t, over, 400, 'VALIDATION_ERROR', ['routingConfig']);
  const fractional = await t.context.operator.request('PUT', `${aliasesOf(name)}/live`, {
    body: { routingConfig: { '1': 50.5, '2': 49.5 } },
  });
  assertError(t, fractional, 400, 'VALIDATION_ERROR');
  t.deepEqual((await t.context.admin.request('GET', `${aliasesOf(name)}/live`)).body.routingConfig, { '1': 100 });
});

test('an alias on a version that does not exist is refused', async (t) => {
  const name = await functionWithVersions(t, 1);
  const create = await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 5 } });
  assertError(t, create, 400, 'VALIDATION_ERROR', ['version']);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 1 } })).status,
    201,
  );
  const update = await t.context.operator.request('PUT', `${aliasesOf(name)}/live`, { body: { version: 9 } });
  assertError(t, update, 400, 'VALIDATION_ERROR', ['version']);
  const routed = await t.context.operator.request('PUT', `${aliasesOf(name)}/live`, {
    body: { version: 1, routingConfig: { '1': 50, '7': 50 } },
  });
  assertError(t, routed, 400, 'VALIDATION_ERROR', ['routingConfig.7']);
});

test('POST /aliases needs a valid name and a version or a routing', async (t) => {
  const name = await functionWithVersions(t, 1);
  const nothing = await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live' } });
  assertError(t, nothing, 400, 'VALIDATION_ERROR', ['version']);
  const badName = await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: '42', version: 1 } });
  assertError(t, badName, 400, 'VALIDATION_ERROR', ['aliasName']);
  const noName = await t.context.admin.request('POST', aliasesOf(name), { body: { version: 1 } });
  assertError(t, noName, 400, 'VALIDATION_ERROR', ['aliasName']);
});

test('GET /aliases lists the aliases of a function', async (t) => {
  const name = await functionWithVersions(t, 2);
  for (const [aliasName, version] of [
    ['staging', 2],
    ['production', 1],
  ] as const) {
    t.is((await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName, version } })).status, 201);
  }
  const other = await functionWithVersions(t, 1);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(other), { body: { aliasName: 'elsewhere', version: 1 } })).status,
    201,
  );

  const response = await t.context.admin.request<{
    functionName: string;
    aliases: Record<string, unknown>[];
    total: number;
  }>('GET', aliasesOf(name));
  t.is(response.status, 200);
  t.is(response.body.functionName, name);
  t.is(response.body.total, 2);
  t.deepEqual(
    response.body.aliases.map((alias) => [alias.aliasName, alias.version]),
    [
      ['production', 1],
      ['staging', 2],
    ],
  );
});

test('DELETE /aliases/{alias} removes it', async (t) => {
  const name = await functionWithVersions(t, 1);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'staging', version: 1 } })).status,
    201,
  );
  const deleted = await t.context.operator.request<unknown>('DELETE', `${aliasesOf(name)}/staging`);
  t.is(deleted.status, 204);
  t.is(deleted.body, undefined);
  assertError(t, await t.context.admin.request('GET', `${aliasesOf(name)}/staging`), 404, 'NOT_FOUND');
  assertError(t, await t.context.admin.request('DELETE', `${aliasesOf(name)}/staging`), 404, 'NOT_FOUND');
  t.is((await t.context.admin.request('GET', aliasesOf(name))).body.total, 0);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'staging', version: 1 } })).status,
    201,
  );
});

test('an unknown alias is 404', async (t) => {
  const name = await functionWithVersions(t, 1);
  assertError(t, await t.context.admin.request('GET', `${aliasesOf(name)}/nope`), 404, 'NOT_FOUND');
  assertError(
    t,
    await t.context.operator.request('PUT', `${aliasesOf(name)}/nope`, { body: { version: 1 } }),
    404,
    'NOT_FOUND',
  );
});

test('creating an alias that exists is 409 CONFLICT', async (t) => {
  const name = await functionWithVersions(t, 2);
  t.is(
    (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 1 } })).status,
    201,
  );
  const again = await t.context.developer.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 2 } });
  assertError(t, again, 409, 'CONFLICT');
  t.is((await t.context.admin.request('GET', `${aliasesOf(name)}/live`)).body.version, 1);
});

test('the same alias name may exist on two functions', async (t) => {
  const first = await functionWithVersions(t, 1);
  const second = await functionWithVersions(t, 1);
  for (const name of [first, second]) {
    t.is(
      (await t.context.admin.request('POST', aliasesOf(name), { body: { aliasName: 'live', version: 1 } })).status,
      201,
    );
  }
  t.is((await t.context.admin.request('DELETE', `${aliasesOf(first)}/live`)).status, 204);
  t.is((await t.context.admin.request('GET', `${aliasesOf(second)}/live`)).status, 200);
});
