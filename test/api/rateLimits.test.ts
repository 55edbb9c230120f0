import anyTest, { type TestFn } from 'ava';
import { type Client, HELLO_NODE, type Response, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, assertRateLimitHeaders, NODE_FUNCTION, RATE_LIMIT_HEADERS, uniqueName } from './support.ts';

interface Context {
  /** Limits overridden: 3 creates and 5 reads of one function per minute. */
  readonly limited: TestPlatform;
  /** The reference's default limits. */
  readonly defaults: TestPlatform;
}

const test = anyTest as TestFn<Context>;

const OVERRIDES = { 'POST /api/v1/functions': 3, 'GET /api/v1/functions/{name}': 5 };

test.before(async (t) => {
  const [limited, defaults] = await Promise.all([
    startTestPlatform({ STRATA_RATE_LIMITS: JSON.stringify(OVERRIDES) }),
    startTestPlatform({ STRATA_RATE_LIMITS: '' }),
  ]);
  t.context = { limited, defaults };
});

test.after.always(async (t) => {
  await Promise.all([t.context.limited?.stop(), t.context.defaults?.stop()]);
});

const header = (response: Response<unknown>, name: string): number => Number(response.headers.get(name));

const create = (client: Client) =>
  client.request('POST', '/api/v1/functions', { body: { name: uniqueName('limited'), ...NODE_FUNCTION } });

test('every response has the rate limit headers, /health and 404s included', async (t) => {
  const { limited } = t.context;
  const responses = [
    await limited.anonymous.request('GET', '/health'),
    await limited.admin.request('GET', '/api/v1/functions'),
    await limited.admin.request('GET', '/api/v1/nowhere'),
    await limited.anonymous.request('GET', '/api/v1/nowhere'),
    await limited.admin.request('GET', `/api/v1/functions/${uniqueName('missing')}`),
    await limited.anonymous.request('GET', '/api/v1/functions'),
  ];
  t.deepEqual(
    responses.map((response) => response.status),
    [200, 200, 404, 404, 404, 401],
  );
  const nowSeconds = Date.now() / 1000;
  for (const response of responses) {
    assertRateLimitHeaders(t, response);
    const reset = header(response, 'x-ratelimit-reset');
    t.true(reset >= Math.floor(nowSeconds) && reset <= Math.ceil(nowSeconds) + 61, `reset ${reset} is a Unix time`);
    t.true(header(response, 'x-ratelimit-remaining') < header(response, 'x-ratelimit-limit'));
  }
});

test('the limit counts down, then answers 429 with Retry-After', async (t) => {
  const developer = await t.context.limited.as('Developer');
  const allowed = [await create(developer), await create(developer), await create(developer)];
  t.deepEqual(
    allowed.map((response) => response.status),
    [201, 201, 201],
  );
  t.deepEqual(
    allowed.map((response) => header(response, 'x-ratelimit-limit')),
    [3, 3, 3],
  );
  t.deepEqual(
    allowed.map((response) => header(response, 'x-ratelimit-remaining')),
    [2, 1, 0],
  );
  for (const response of allowed) t.false(response.headers.has('retry-after'));

  const refused = await create(developer);
  assertError(t, refused, 429, 'RATE_LIMIT_EXCEEDED');
  t.is(refused.headers.get('x-ratelimit-limit'), '3');
  t.is(refused.headers.get('x-ratelimit-remaining'), '0');
  const retryAfter = refused.headers.get('retry-after') ?? '';
  t.regex(retryAfter, /^[1-9]\d*$/);
  t.true(Number(retryAfter) <= 60);
  const reset = header(refused, 'x-ratelimit-reset');
  t.true(Math.abs(reset - (Date.now() / 1000 + Number(retryAfter))) <= 2, 'Retry-After agrees with the reset time');

  const again = await create(developer);
  assertError(t, again, 429, 'RATE_LIMIT_EXCEEDED');
  t.is(again.headers.get('x-ratelimit-remaining'), '0');
});

test('a refused request changes nothing', async (t) => {
  const developer = await t.context.limited.as('Developer');
  for (let i = 0; i < 3; i += 1) t.is((await create(developer)).status, 201);
  const name = uniqueName('refused');
  const refused = await developer.request('POST', '/api/v1/functions', { body: { name, ...NODE_FUNCTION } });
  t.is(refused.status, 429);
  assertError(t, await t.context.limited.admin.request('GET', `/api/v1/functions/${name}`), 404, 'NOT_FOUND');
});

test('limits are per user', async (t) => {
  const [first, second] = await Promise.all([t.context.limited.as('Developer'), t.context.limited.as('Developer')]);
  for (let i = 0; i < 3; i += 1) t.is((await create(first)).status, 201);
  t.is((await create(first)).status, 429);
  const other = await create(second);
  t.is(other.status, 201);
  t.is(other.headers.get('x-ratelimit-remaining'), '2');
});

test('limits are per endpoint, and one endpoint is one limit whatever its parameters', async (t) => {
  const developer = await t.context.limited.as('Developer');
  const name = uniqueName('endpoint');
  const created = await create(developer);
  t.is(created.status, 201);
  const fnName = String(created.body.name);
  for (let i = 0; i < 2; i += 1) t.is((await create(developer)).status, 201);
  t.is((await create(developer)).status, 429);

  const list = await developer.request('GET', '/api/v1/functions');
  t.is(list.status, 200);
  t.is(list.headers.get('x-ratelimit-limit'), '60');
  const version = await developer.request('POST', `/api/v1/functions/${fnName}/versions`, {
    body: { code: HELLO_NODE },
  });
  t.is(version.status, 201);
  t.is(version.headers.get('x-ratelimit-limit'), '20');

  const reads = [];
  for (let i = 0; i < 5; i += 1) {
    reads.push(await developer.request('GET', `/api/v1/functions/${i % 2 === 0 ? fnName : `${name}-${i}`}`));
  }
  t.deepEqual(
    reads.map((response) => header(response, 'x-ratelimit-remaining')),
    [4, 3, 2, 1, 0],
  );
  t.true(reads.every((response) => response.headers.get('x-ratelimit-limit') === '5'));
  assertError(t, await developer.request('GET', `/api/v1/functions/${fnName}`), 429, 'RATE_LIMIT_EXCEEDED');
});

test("the reference's default limits apply without an override", async (t) => {
  const { defaults } = t.context;
  const name = uniqueName('defaults');
  const created = await defaults.admin.request('POST', '/api/v1/functions', { body: { name, ...NODE_FUNCTION } });
  t.is(created.status, 201);
  t.is(created.headers.get('x-ratelimit-limit'), '20');
  t.is(created.headers.get('x-ratelimit-remaining'), '19');
  const expected: [string, string, number][] = [
    ['GET', '/api/v1/functions', 60],
    ['GET', `/api/v1/functions/${name}`, 60],
    ['POST', `/api/v1/functions/${name}/versions`, 20],
    ['GET', `/api/v1/functions/${name}/versions`, 60],
    ['POST', `/api/v1/functions/${name}/aliases`, 20],
    ['PUT', `/api/v1/functions/${name}/aliases/live`, 20],
    ['DELETE', `/api/v1/functions/${name}/aliases/live`, 10],
    ['PUT', `/api/v1/functions/${name}`, 20],
    ['DELETE', `/api/v1/functions/${name}`, 10],
  ];
  const bodies: Record<string, unknown> = {
    [`POST /api/v1/functions/${name}/versions`]: { code: HELLO_NODE },
    [`POST /api/v1/functions/${name}/aliases`]: { aliasName: 'live', version: 1 },
    [`PUT /api/v1/functions/${name}/aliases/live`]: { version: 1 },
    [`PUT /api/v1/functions/${name}`]: { timeout: 10 },
  };
  for (const [method, path, limit] of expected) {
    const body = bodies[`${method} ${path}`];
    const response = await defaults.admin.request(method, path, body === undefined ? {} : { body });
    t.true(response.status < 300, `${method} ${path}: ${response.status} ${JSON.stringify(response.body)}`);
    t.is(response.headers.get('x-ratelimit-limit'), String(limit), `${method} ${path}`);
  }
});

test('rate limiting can be turned off', async (t) => {
  const platform = await startTestPlatform({ STRATA_RATE_LIMITS: 'off' });
  try {
    const responses = [];
    for (let i = 0; i < 4; i += 1) responses.push(await create(platform.admin));
    t.true(responses.every((response) => response.status === 201));
    for (const name of RATE_LIMIT_HEADERS) t.false(responses[0]?.headers.has(name), name);
  } finally {
    await platform.stop();
  }
});
