import anyTest, { type TestFn } from 'ava';
import jwt from 'jsonwebtoken';
import { bearerToken, createVerifiedTokens } from '../../api/auth.ts';
import { ADMIN, createClient, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, isIsoTimestamp, NODE_FUNCTION, uniqueName } from './support.ts';

const test = anyTest as TestFn<TestPlatform>;

const SECRET = 'auth-test-secret-that-is-long-enough-for-hs256';
const LOGIN = '/api/v1/authentication/login';
const PASSWORD = 'Passw0rd!';

test.before(async (t) => {
  t.context = await startTestPlatform({ STRATA_JWT_SECRET: SECRET });
});

test.after.always(async (t) => {
  await t.context.stop();
});

const createUser = async (platform: TestPlatform, role: string, username = `${uniqueName('user')}@example.com`) => {
  const response = await platform.admin.request('POST', '/api/v1/users', {
    body: { username, password: PASSWORD, role },
  });
  if (response.status !== 201) throw new Error(`could not create ${username}: ${JSON.stringify(response.body)}`);
  return username;
};

const adminClaims = (platform: TestPlatform) => jwt.decode(platform.adminToken) as { sub: string; uid: string };

test('login answers a token, a future ISO expiry and the user', async (t) => {
  const before = Date.now();
  const response = await t.context.anonymous.request<{
    token: string;
    expiresAt: string;
    user: Record<string, unknown>;
  }>('POST', LOGIN, { body: ADMIN, token: null });
  t.is(response.status, 200);
  t.regex(response.body.token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  t.true(isIsoTimestamp(response.body.expiresAt));
  t.true(Date.parse(response.body.expiresAt) > before);
  t.deepEqual(response.body.user, { username: ADMIN.username, role: 'Admin' });
  const me = await createClient(t.context.platform.url, response.body.token).request('GET', '/api/v1/functions');
  t.is(me.status, 200);
});

test('a wrong password and an unknown user get the same 401', async (t) => {
  const username = await createUser(t.context, 'Viewer');
  const wrongPassword = await t.context.anonymous.request('POST', LOGIN, {
    body: { username, password: 'Wrong-passw0rd' },
    token: null,
  });
  const unknownUser = await t.context.anonymous.request('POST', LOGIN, {
    body: { username: `${uniqueName('nobody')}@example.com`, password: PASSWORD },
    token: null,
  });
  const first = assertError(t, wrongPassword, 401, 'UNAUTHORIZED');
  const second = assertError(t, unknownUser, 401, 'UNAUTHORIZED');
  t.is(first.message, second.message);
  t.deepEqual(first.details, second.details);
  t.false('token' in (wrongPassword.body as object));
});

test('a login without a password is a validation error', async (t) => {
  const response = await t.context.anonymous.request('POST', LOGIN, {
    body: { username: ADMIN.username },
    token: null,
  });
  assertError(t, response, 400, 'VALIDATION_ERROR', ['password']);
});

test('a request without a token is 401', async (t) => {
  const response = await t.context.anonymous.request('GET', '/api/v1/functions');
  assertError(t, response, 401, 'UNAUTHORIZED');
});

test('a garbage token is 401', async (t) => {
  for (const authorization of ['Bearer not-a-jwt', 'Bearer a.b.c', 'Basic YWRtaW46YWRtaW4=', 'Bearer']) {
    const response = await t.context.anonymous.request('GET', '/api/v1/functions', { headers: { authorization } });
    assertError(t, response, 401, 'UNAUTHORIZED');
  }
});

test('an expired token is 401', async (t) => {
  const { sub, uid } = adminClaims(t.context);
  const past = Math.floor(Date.now() / 1000) - 7200;
  const expired = jwt.sign({ sub, uid, iat: past, exp: past + 3600 }, SECRET, { algorithm: 'HS256' });
  const response = await t.context.anonymous.request('GET', '/api/v1/functions', { token: expired });
  const error = assertError(t, response, 401, 'UNAUTHORIZED');
  t.regex(error.message, /expired/i);
});

test('a token accepted before stops working once it expires', async (t) => {
  const { sub, uid } = adminClaims(t.context);
  const exp = Math.floor(Date.now() / 1000) + 2;
  const token = jwt.sign({ sub, uid, iat: exp - 2, exp }, SECRET, { algorithm: 'HS256' });
  t.is((await t.context.anonymous.request('GET', '/api/v1/functions', { token })).status, 200);
  t.is((await t.context.anonymous.request('GET', '/api/v1/functions', { token })).status, 200);
  await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() + 50));
  const error = assertError(
    t,
    await t.context.anonymous.request('GET', '/api/v1/functions', { token }),
    401,
    'UNAUTHORIZED',
  );
  t.regex(error.message, /expired/i);
});

test('verified tokens are remembered until they expire, oldest out first, only with an expiry', (t) => {
  let now = 1_000_000;
  const verified = createVerifiedTokens(2, () => now);
  verified.remember('a', { sub: 'x', exp: 1_010 });
  verified.remember('no-expiry', { sub: 'x' });
  t.deepEqual(verified.get('a'), { sub: 'x', exp: 1_010 });
  t.is(verified.get('no-expiry'), undefined, 'verified every time');
  const claims = verified.get('a');
  if (claims !== undefined) claims.sub = 'changed';
  t.deepEqual(verified.get('a'), { sub: 'x', exp: 1_010 }, 'callers get a copy');
  verified.remember('b', { exp: 2_000 });
  verified.remember('c', { exp: 2_000 });
  t.is(verified.get('a'), undefined, 'the oldest made room');
  t.truthy(verified.get('b'));
  now = 2_000_000;
  t.is(verified.get('c'), undefined, 'expired at exp, as jsonwebtoken has it');
});

test('bearer tokens are read as koa-jwt reads them', (t) => {
  t.is(bearerToken('Bearer abc'), 'abc');
  t.is(bearerToken('bearer abc'), 'abc');
  t.is(bearerToken('  Bearer abc  '), 'abc');
  t.is(bearerToken('Bearer  abc'), undefined);
  t.is(bearerToken('Basic abc'), undefined);
  t.is(bearerToken(''), undefined);
  t.is(bearerToken(undefined), undefined);
});

test('a token signed with another secret is 401', async (t) => {
  const { sub, uid } = adminClaims(t.context);
  const forged = jwt.sign({ sub, uid }, 'some-other-secret-of-sufficient-length', {
    algorithm: 'HS256',
    expiresIn: 600,
  });
  const response = await t.context.anonymous.request('GET', '/api/v1/functions', { token: forged });
  assertError(t, response, 401, 'UNAUTHORIZED');
});

test('an unsigned token is 401', async (t) => {
  const { sub, uid } = adminClaims(t.context);
  const unsigned = jwt.sign({ sub, uid }, '', { algorithm: 'none', expiresIn: 600 });
  const response = await t.context.anonymous.request('GET', '/api/v1/functions', { token: unsigned });
  assertError(t, response, 401, 'UNAUTHORIZED');
});

test('a validly signed token for a user that does not exist is 401', async (t) => {
  const ghost = jwt.sign({ sub: 'ghost@example.com', uid: 'user-ghost' }, SECRET, {
    algorithm: 'HS256',
    expiresIn: 600,
  });
  const response = await t.context.anonymous.request('GET', '/api/v1/functions', { token: ghost });
  assertError(t, response, 401, 'UNAUTHORIZED');
});

// Serial: the durations are compared, so no other test of this file may be hashing passwords meanwhile.
test.serial('repeated failed logins for one username are slowed down', async (t) => {
  const username = `${uniqueName('target')}@example.com`;
  const attempt = async () => {
    const started = performance.now();
    const response = await t.context.anonymous.request('POST', LOGIN, {
      body: { username, password: 'Wrong-passw0rd' },
      token: null,
    });
    assertError(t, response, 401, 'UNAUTHORIZED');
    return performance.now() - started;
  };
  const durations: number[] = [];
  for (let i = 0; i < 5; i += 1) durations.push(await attempt());
  // The fastest of the first attempts is the cost of a login without throttling, load from other test files aside.
  const unthrottled = Math.min(...durations.slice(0, 3));
  const fifth = durations[4] ?? 0;
  t.true(
    fifth - unthrottled >= 400,
    `attempts took ${durations.map((ms) => Math.round(ms)).join(', ')} ms: the 5th is not noticeably slower`,
  );
});

test("a disabled user's token stops working and they cannot log in", async (t) => {
  const username = await createUser(t.context, 'Developer');
  const token = await t.context.anonymous.login(username, PASSWORD);
  const client = createClient(t.context.platform.url, token);
  t.is((await client.request('GET', '/api/v1/functions')).status, 200);

  const disabled = await t.context.admin.request('DELETE', `/api/v1/users/${username}`);
  t.is(disabled.status, 204);

  assertError(t, await client.request('GET', '/api/v1/functions'), 401, 'UNAUTHORIZED');
  const create = await client.request('POST', '/api/v1/functions', {
    body: { name: uniqueName('disabled'), ...NODE_FUNCTION },
  });
  assertError(t, create, 401, 'UNAUTHORIZED');
  const login = await t.context.anonymous.request('POST', LOGIN, {
    body: { username, password: PASSWORD },
    token: null,
  });
  assertError(t, login, 401, 'UNAUTHORIZED');
});

test('a role change applies to an existing token at once', async (t) => {
  const username = await createUser(t.context, 'Developer');
  const client = createClient(t.context.platform.url, await t.context.anonymous.login(username, PASSWORD));
  const first = await client.request('POST', '/api/v1/functions', {
    body: { name: uniqueName('role'), ...NODE_FUNCTION },
  });
  t.is(first.status, 201);

  const changed = await t.context.admin.request('PUT', `/api/v1/users/${username}`, { body: { role: 'Viewer' } });
  t.is(changed.status, 200);

  const second = await client.request('POST', '/api/v1/functions', {
    body: { name: uniqueName('role'), ...NODE_FUNCTION },
  });
  assertError(t, second, 403, 'FORBIDDEN');
  t.is((await client.request('GET', '/api/v1/functions')).status, 200);

  const promoted = await t.context.admin.request('PUT', `/api/v1/users/${username}`, { body: { role: 'Admin' } });
  t.is(promoted.status, 200);
  t.is((await client.request('GET', '/api/v1/users')).status, 200);
});

test('usernames log in regardless of case', async (t) => {
  const username = await createUser(t.context, 'Viewer', `${uniqueName('Mixed')}@Example.com`);
  const response = await t.context.anonymous.request<{ user: { username: string } }>('POST', LOGIN, {
    body: { username: username.toLowerCase(), password: PASSWORD },
    token: null,
  });
  t.is(response.status, 200);
  t.is(response.body.user.username, username);
});
