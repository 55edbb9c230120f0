import anyTest, { type TestFn } from 'ava';
import { assertError, uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  deploy,
  finalRecord,
  HELLO,
  handlerCode,
  type InvocationRecord,
  invoke,
  invokeOk,
  metricsWhen,
  startInvocationPlatform,
} from './support.ts';

interface Context {
  /** One runner process, rate limits off. */
  readonly strata: TestPlatform;
  /** An in-process runner and at most 3 sync invokes per function per minute. */
  readonly limited: TestPlatform;
}

const test = anyTest as TestFn<Context>;

const INVOKE_LIMIT = 3;

test.before(async (t) => {
  const [strata, limited] = await Promise.all([
    startInvocationPlatform(),
    startInvocationPlatform(
      { STRATA_RATE_LIMITS: JSON.stringify({ 'POST /api/v1/functions/{name}/invoke': INVOKE_LIMIT }) },
      { runners: 'inProcess' },
    ),
  ]);
  t.context = { strata, limited };
});

test.after.always(async (t) => {
  await Promise.all([t.context.strata?.stop(), t.context.limited?.stop()]);
});

/** Answers with whatever `event.value` is: the event round-trips through the platform. */
const ECHO = handlerCode('return event.value;');

test('a handler returning {statusCode, body} decides the response’s status code and body', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('shaped');
  await deploy(
    t,
    admin,
    name,
    handlerCode(
      'if (event.object) return { statusCode: 202, body: { accepted: event.name } }; return { statusCode: 201, body: "created " + event.name };',
    ),
  );
  const text = await invokeOk(t, admin, name, { payload: JSON.stringify({ name: 'Ada' }) });
  t.like(text, { statusCode: 201, body: 'created Ada' });
  t.is(text.outcome, undefined);
  t.is(text.error, undefined);
  const object = await invokeOk(t, admin, name, { payload: { name: 'Grace', object: true } });
  t.like(object, { statusCode: 202, body: '{"accepted":"Grace"}' });
});

test('any other return value answers 200 with its JSON text', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('echo');
  await deploy(t, admin, name, ECHO);
  const cases: [unknown, string][] = [
    [{ a: 1, list: [true, null] }, '{"a":1,"list":[true,null]}'],
    ['text', '"text"'],
    [42, '42'],
    [[1, 'two'], '[1,"two"]'],
    [{ statusCode: 'not a number', body: 'x' }, '{"statusCode":"not a number","body":"x"}'],
  ];
  for (const [value, body] of cases) {
    t.like(await invokeOk(t, admin, name, { payload: { value } }), { statusCode: 200, body }, JSON.stringify(value));
  }
  t.like(await invokeOk(t, admin, name, { payload: '{}' }), { statusCode: 200, body: 'null' }, 'undefined → null');
});

test('the payload may be JSON text or a JSON value, and arrives as the same event', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('payload');
  await deploy(t, admin, name, handlerCode('return event;'));
  const event = { name: 'Ada', tags: ['x', 'y'], nested: { n: 1.5, ok: false } };
  const asText = await invokeOk(t, admin, name, { payload: JSON.stringify(event) });
  const asValue = await invokeOk(t, admin, name, { payload: event });
  t.deepEqual(JSON.parse(asText.body), event);
  t.deepEqual(JSON.parse(asValue.body), event);
  t.deepEqual(JSON.parse((await invokeOk(t, admin, name, { payload: [1, 2] })).body), [1, 2]);
  t.deepEqual(JSON.parse((await invokeOk(t, admin, name, {})).body), {}, 'no payload is an empty event');
});

test('a payload that is text but not JSON is refused with a 400 on payload', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('notjson');
  await deploy(t, admin, name, HELLO);
  assertError(t, await invoke(admin, name, { payload: '{"name": ' }), 400, 'VALIDATION_ERROR', ['payload']);
  assertError(
    t,
    await admin.request('POST', `/api/v1/functions/${name}/invoke-async`, { body: { payload: 'hello' } }),
    400,
    'VALIDATION_ERROR',
    ['payload'],
  );
});

test('each call reports sane measurements, and only the first call of a version is a cold start', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('measured');
  await deploy(t, admin, name, [HELLO, HELLO]);
  const first = await invokeOk(t, admin, name, { version: 1, payload: { name: 'Ada' } });
  const second = await invokeOk(t, admin, name, { version: 1 });
  const otherVersion = await invokeOk(t, admin, name, { version: 2 });
  t.like(first, { statusCode: 200, body: '{"hello":"Ada"}', wasColdStart: true, version: 'v1' });
  t.like(second, { wasColdStart: false, coldStartDuration: null, version: 'v1' });
  t.like(otherVersion, { wasColdStart: true, version: 'v2' }, 'a new version starts cold');
  t.true(typeof first.coldStartDuration === 'number' && first.coldStartDuration > 0);
  for (const response of [first, second, otherVersion]) {
    t.true(response.executionTime >= 0, `executionTime ${response.executionTime}`);
    t.true(response.billedDuration >= 100, `billedDuration ${response.billedDuration}`);
    t.is(response.billedDuration % 100, 0);
    t.true(response.billedDuration >= response.executionTime);
    t.true(Number.isInteger(response.memoryUsed) && response.memoryUsed >= 1, `memoryUsed ${response.memoryUsed}`);
    t.true(response.memoryUsed <= 128);
    t.regex(response.requestId, /^\S+$/);
    t.regex(response.logStreamName ?? '', new RegExp(`^\\d{4}-\\d{2}-\\d{2}/${name}-v\\d-\\S+$`));
  }
  t.not(first.requestId, second.requestId);
  t.is(first.logStreamName, second.logStreamName, 'the warm call ran in the same container');

  const record = await finalRecord(admin, name, first.requestId);
  t.like(record, {
    requestId: first.requestId,
    functionName: name,
    version: 'v1',
    invocationType: 'RequestResponse',
    status: 'Succeeded',
    outcome: 'success',
    statusCode: 200,
    body: '{"hello":"Ada"}',
    wasColdStart: true,
    billedDuration: first.billedDuration,
    memoryUsed: first.memoryUsed,
  } satisfies Partial<InvocationRecord>);
});

test('a body over 6 MB is refused with 413', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('large');
  await deploy(t, admin, name, HELLO);
  const payload = JSON.stringify({ blob: 'x'.repeat(6 * 1024 * 1024) });
  assertError(t, await invoke(admin, name, { payload }), 413, 'PAYLOAD_TOO_LARGE');
  const queued = await admin.request('POST', `/api/v1/functions/${name}/invoke-async`, { body: { payload } });
  assertError(t, queued, 413, 'PAYLOAD_TOO_LARGE');
  t.like(await invokeOk(t, admin, name, { payload: { blob: 'x'.repeat(1024 * 1024) } }), { statusCode: 200 });
});

test('invoking a function that does not exist is a 404, and one without versions a 409', async (t) => {
  const { admin } = t.context.strata;
  assertError(t, await invoke(admin, uniqueName('missing')), 404, 'NOT_FOUND');
  const name = uniqueName('empty');
  const created = await admin.request('POST', '/api/v1/functions', {
    body: { name, runtime: 'Node24', handler: 'index.handler' },
  });
  t.is(created.status, 201);
  assertError(t, await invoke(admin, name), 409, 'CONFLICT');
  const asyncResponse = await admin.request('POST', `/api/v1/functions/${name}/invoke-async`, { body: {} });
  assertError(t, asyncResponse, 409, 'CONFLICT');
});

test('a version or alias that does not exist is a 404', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('noversion');
  await deploy(t, admin, name, HELLO);
  assertError(t, await invoke(admin, name, { version: 9 }), 404, 'NOT_FOUND');
  assertError(t, await invoke(admin, name, { alias: 'nowhere' }), 404, 'NOT_FOUND');
});

test('a DryRun only checks that the function exists', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('dryrun');
  await deploy(t, admin, name, HELLO);
  t.is((await invoke(admin, name, { invocationType: 'DryRun' })).status, 204);
  assertError(t, await invoke(admin, uniqueName('missing'), { invocationType: 'DryRun' }), 404, 'NOT_FOUND');
});

// ---- which version runs ---------------------------------------------------------------------------------

/** Every version answers with its own number. */
const WHICH_VERSION = handlerCode('return context.functionVersion;');

const versionRun = async (t: Parameters<typeof invokeOk>[0], strata: TestPlatform, name: string, body = {}) => {
  const response = await invokeOk(t, strata.admin, name, body);
  t.is(response.version, `v${JSON.parse(response.body)}`, 'the response names the version that ran');
  return response.version;
};

test('the version named runs, as a number or as "vN"', async (t) => {
  const { strata } = t.context;
  const name = uniqueName('explicit');
  await deploy(t, strata.admin, name, [WHICH_VERSION, WHICH_VERSION, WHICH_VERSION]);
  t.is(await versionRun(t, strata, name, { version: 1 }), 'v1');
  t.is(await versionRun(t, strata, name, { version: 'v2' }), 'v2');
  t.is(await versionRun(t, strata, name, { version: '3' }), 'v3');
});

test('an alias runs its version; without alias or version the publishedVersion runs, else the latest', async (t) => {
  const { strata } = t.context;
  const { admin } = strata;
  const name = uniqueName('resolved');
  await deploy(t, admin, name, [WHICH_VERSION, WHICH_VERSION, WHICH_VERSION]);
  t.is(await versionRun(t, strata, name), 'v3', 'the latest version');
  const alias = await admin.request('POST', `/api/v1/functions/${name}/aliases`, {
    body: { aliasName: 'stable', version: 1 },
  });
  t.is(alias.status, 201);
  t.is(await versionRun(t, strata, name, { alias: 'stable' }), 'v1');
  const published = await admin.request('PUT', `/api/v1/functions/${name}`, { body: { publishedVersion: 'v2' } });
  t.is(published.status, 200, JSON.stringify(published.body));
  t.is(await versionRun(t, strata, name), 'v2', 'the publishedVersion');
  t.is(await versionRun(t, strata, name, { alias: 'stable' }), 'v1', 'an alias wins over the publishedVersion');
  t.is(await versionRun(t, strata, name, { version: 3 }), 'v3', 'a version wins over the publishedVersion');
});

test('a weighted alias sends traffic to both of its versions', async (t) => {
  const { strata } = t.context;
  const { admin } = strata;
  const name = uniqueName('weighted');
  await deploy(t, admin, name, [WHICH_VERSION, WHICH_VERSION]);
  const alias = await admin.request('POST', `/api/v1/functions/${name}/aliases`, {
    body: { aliasName: 'canary', routingConfig: { '1': 50, '2': 50 } },
  });
  t.is(alias.status, 201, JSON.stringify(alias.body));
  const counts = new Map<string, number>();
  const CALLS = 200;
  const BATCH = 20;
  for (let sent = 0; sent < CALLS; sent += BATCH) {
    const batch = await Promise.all(Array.from({ length: BATCH }, () => invoke(admin, name, { alias: 'canary' })));
    for (const response of batch) {
      t.is(response.status, 200, JSON.stringify(response.body));
      const version = response.body.version ?? 'none';
      counts.set(version, (counts.get(version) ?? 0) + 1);
    }
  }
  t.deepEqual([...counts.keys()].sort(), ['v1', 'v2']);
  // At p = 0.5, fewer than 50 of 200 happens with probability ~1e-12.
  t.true((counts.get('v1') ?? 0) >= 50, JSON.stringify([...counts]));
  t.true((counts.get('v2') ?? 0) >= 50, JSON.stringify([...counts]));
});

// ---- limits ---------------------------------------------------------------------------------------------

test('over its concurrencyLimit a function answers 429, counted in the throttles metric', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('single');
  await deploy(
    t,
    admin,
    name,
    handlerCode('await new Promise((resolve) => setTimeout(resolve, event.ms ?? 0)); return "done";'),
    {
      concurrencyLimit: 1,
      timeout: 30,
    },
  );
  // The first call to arrive holds the only slot for 3 s: the other arrives while it runs.
  const slow = { payload: { ms: 3_000 } };
  const [a, b] = await Promise.all([invoke(admin, name, slow), invoke(admin, name, slow)]);
  const statuses = [a.status, b.status].sort();
  t.deepEqual(statuses, [200, 429], JSON.stringify([a.body, b.body]));
  const [ok, throttled] = a.status === 200 ? [a, b] : [b, a];
  t.like(ok.body, { statusCode: 200, body: '"done"' });
  assertError(t, throttled, 429, 'RATE_LIMIT_EXCEEDED');
  t.regex(throttled.headers.get('retry-after') ?? '', /^\d+$/);
  t.like(await invokeOk(t, admin, name), { statusCode: 200 }, 'a call after the first finished runs');
  const metrics = await metricsWhen(admin, name, (m) => m.throttles >= 1 && m.invocations >= 2);
  t.is(metrics.throttles, 1);
  t.is(metrics.invocations, 2, 'a throttled call is not an invocation');
  t.is(metrics.errors, 0);
});

test('the invoke rate limit is per function, shared by every caller', async (t) => {
  const { limited } = t.context;
  const [developer, viewer] = await Promise.all([limited.as('Developer'), limited.as('Viewer')]);
  const name = uniqueName('ratelimited');
  const other = uniqueName('unlimited');
  await deploy(t, limited.admin, name, HELLO);
  await deploy(t, limited.admin, other, HELLO);
  const first = await invoke(developer, name);
  t.is(first.status, 200);
  t.is(first.headers.get('x-ratelimit-limit'), String(INVOKE_LIMIT));
  t.is(first.headers.get('x-ratelimit-remaining'), String(INVOKE_LIMIT - 1));
  t.is((await invoke(developer, name)).status, 200);
  t.is((await invoke(viewer, name)).status, 200);
  const refused = await invoke(viewer, name);
  assertError(t, refused, 429, 'RATE_LIMIT_EXCEEDED');
  t.regex(refused.headers.get('retry-after') ?? '', /^\d+$/);
  assertError(t, await invoke(developer, name), 429, 'RATE_LIMIT_EXCEEDED');
  t.is((await invoke(developer, other)).status, 200, 'another function has its own limit');
});
