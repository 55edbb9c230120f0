import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { ADMIN, createClient, type Response, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, isIsoTimestamp, uniqueName } from './support.ts';

const test = anyTest as TestFn<TestPlatform>;

const USERS = '/api/v1/users';
const LOGIN = '/api/v1/authentication/login';
const PASSWORD = 'Passw0rd!';

test.before(async (t) => {
  t.context = await startTestPlatform();
});

test.after.always(async (t) => {
  await t.context.stop();
});

const newUsername = () => `${uniqueName('user')}@example.com`;

/** Fails the test when a response's raw JSON mentions a password or holds a password hash. */
const assertNoSecrets = (t: ExecutionContext, response: Response<unknown>) => {
  const text = JSON.stringify(response.body);
  t.false(/password/i.test(text), `response mentions a password: ${text}`);
  t.false(text.includes('scrypt'), `response holds a password hash: ${text}`);
};

const createUser = async (t: ExecutionContext<TestPlatform>, role = 'Developer', username = newUsername()) => {
  const response = await t.context.admin.request('POST', USERS, { body: { username, password: PASSWORD, role } });
  t.is(response.status, 201, JSON.stringify(response.body));
  return { username, response };
};

const loginStatus = async (t: ExecutionContext<TestPlatform>, username: string, password: string) =>
  (await t.context.anonymous.request('POST', LOGIN, { body: { username, password }, token: null })).status;

test('POST /users creates a user and never shows the password', async (t) => {
  const { username, response } = await createUser(t, 'Operator');
  t.like(response.body, { username, role: 'Operator', status: 'Active' });
  t.regex(String(response.body.userId), /^user-/);
  t.true(isIsoTimestamp(response.body.createdAt));
  assertNoSecrets(t, response);
  t.is(await loginStatus(t, username, PASSWORD), 200);
});

test('users are never shown with their password, in any response', async (t) => {
  const { username } = await createUser(t, 'Viewer');
  const responses = [
    await t.context.admin.request('GET', USERS),
    await t.context.admin.request('GET', `${USERS}?limit=100`),
    await t.context.admin.request('GET', `${USERS}/${username}`),
    await t.context.admin.request('PUT', `${USERS}/${username}`, { body: { role: 'Developer' } }),
    await t.context.admin.request('PUT', `${USERS}/${username}`, { body: { password: 'N3w-passphrase' } }),
    await t.context.anonymous.request('POST', LOGIN, {
      body: { username, password: 'N3w-passphrase' },
      token: null,
    }),
  ];
  for (const response of responses) {
    t.true(response.status < 300, JSON.stringify(response.body));
    const { token: _token, ...rest } = response.body as Record<string, unknown>;
    assertNoSecrets(t, { ...response, body: rest });
  }
});

test('a weak password is refused on the password field', async (t) => {
  for (const password of ['short1', 'no-digits-here', '12345678901']) {
    const response = await t.context.admin.request('POST', USERS, {
      body: { username: newUsername(), password, role: 'Viewer' },
    });
    assertError(t, response, 400, 'VALIDATION_ERROR', ['password']);
  }
});

test('creating a user that exists is 409, whatever the case of the name', async (t) => {
  const { username } = await createUser(t);
  const again = await t.context.admin.request('POST', USERS, {
    body: { username: username.toUpperCase(), password: PASSWORD, role: 'Viewer' },
  });
  assertError(t, again, 409, 'CONFLICT');
});

test('a role that does not exist is refused', async (t) => {
  const response = await t.context.admin.request('POST', USERS, {
    body: { username: newUsername(), password: PASSWORD, role: 'Superuser' },
  });
  assertError(t, response, 400, 'VALIDATION_ERROR', ['role']);
  const missing = await t.context.admin.request('POST', USERS, {
    body: { username: newUsername(), password: PASSWORD },
  });
  assertError(t, missing, 400, 'VALIDATION_ERROR', ['role']);
  const badName = await t.context.admin.request('POST', USERS, {
    body: { username: '../x', password: PASSWORD, role: 'Viewer' },
  });
  assertError(t, badName, 400, 'VALIDATION_ERROR', ['username']);
});

test('GET /users lists users with paging', async (t) => {
  const { username } = await createUser(t, 'Viewer');
  const response = await t.context.admin.request<{ users: Record<string, unknown>[]; total: number; limit: number }>(
    'GET',
    `${USERS}?limit=100`,
  );
  t.is(response.status, 200);
  t.is(response.body.limit, 100);
  t.true(response.body.total >= 2);
  const names = response.body.users.map((user) => user.username);
  t.true(names.includes(ADMIN.username));
  t.true(names.includes(username));
  t.deepEqual(Object.keys(response.body.users[0] ?? {}).sort(), [
    'createdAt',
    'role',
    'status',
    'updatedAt',
    'userId',
    'username',
  ]);
  const page = await t.context.admin.request<{ users: unknown[]; total: number }>('GET', `${USERS}?limit=1&offset=1`);
  t.is(page.body.users.length, 1);
  t.true(page.body.total >= response.body.total);
});

test('GET /users/{username} shows one user; unknown users are 404', async (t) => {
  const { username } = await createUser(t, 'Operator');
  const response = await t.context.admin.request('GET', `${USERS}/${username}`);
  t.is(response.status, 200);
  t.like(response.body, { username, role: 'Operator', status: 'Active' });
  assertError(t, await t.context.admin.request('GET', `${USERS}/${newUsername()}`), 404, 'NOT_FOUND');
});

test('PUT /users/{username} changes the role', async (t) => {
  const { username } = await createUser(t, 'Viewer');
  const response = await t.context.admin.request('PUT', `${USERS}/${username}`, { body: { role: 'Operator' } });
  t.is(response.status, 200);
  t.like(response.body, { username, role: 'Operator' });
  t.is((await t.context.admin.request('GET', `${USERS}/${username}`)).body.role, 'Operator');
  const login = await t.context.anonymous.request<{ user: { role: string } }>('POST', LOGIN, {
    body: { username, password: PASSWORD },
    token: null,
  });
  t.is(login.body.user.role, 'Operator');
});

test('PUT /users/{username} changes the password: the new one works, the old one does not', async (t) => {
  const { username } = await createUser(t);
  const response = await t.context.admin.request('PUT', `${USERS}/${username}`, {
    body: { password: 'An0ther-secret' },
  });
  t.is(response.status, 200);
  t.is(await loginStatus(t, username, 'An0ther-secret'), 200);
  t.is(await loginStatus(t, username, PASSWORD), 401);
});

test('PUT /users/{username} refuses a weak password, an unknown role, and an empty body', async (t) => {
  const { username } = await createUser(t);
  assertError(
    t,
    await t.context.admin.request('PUT', `${USERS}/${username}`, { body: { password: 'weak' } }),
    400,
    'VALIDATION_ERROR',
    ['password'],
  );
  assertError(
    t,
    await t.context.admin.request('PUT', `${USERS}/${username}`, { body: { role: 'Root' } }),
    400,
    'VALIDATION_ERROR',
    ['role'],
  );
  assertError(t, await t.context.admin.request('PUT', `${USERS}/${username}`, { body: {} }), 400, 'VALIDATION_ERROR');
  const mixed = await t.context.admin.request('PUT', `${USERS}/${username}`, {
    body: { role: 'Admin', password: 'weak' },
  });
  assertError(t, mixed, 400, 'VALIDATION_ERROR', ['password']);
  t.is((await t.context.admin.request('GET', `${USERS}/${username}`)).body.role, 'Developer');
  t.is(await loginStatus(t, username, PASSWORD), 200);
  assertError(
    t,
    await t.context.admin.request('PUT', `${USERS}/${newUsername()}`, { body: { role: 'Viewer' } }),
    404,
    'NOT_FOUND',
  );
});

test('DELETE /users/{username} disables the user', async (t) => {
  const { username } = await createUser(t);
  const token = await t.context.anonymous.login(username, PASSWORD);
  const deleted = await t.context.admin.request<unknown>('DELETE', `${USERS}/${username}`);
  t.is(deleted.status, 204);
  t.is(deleted.body, undefined);
  const fetched = await t.context.admin.request('GET', `${USERS}/${username}`);
  t.is(fetched.status, 200);
  t.is(fetched.body.status, 'Disabled');
  t.is(await loginStatus(t, username, PASSWORD), 401);
  assertError(
    t,
    await createClient(t.context.platform.url, token).request('GET', '/api/v1/functions'),
    401,
    'UNAUTHORIZED',
  );
  assertError(t, await t.context.admin.request('DELETE', `${USERS}/${username}`), 409, 'CONFLICT');
  const reuse = await t.context.admin.request('POST', USERS, {
    body: { username, password: PASSWORD, role: 'Viewer' },
  });
  assertError(t, reuse, 409, 'CONFLICT');
});

test('an Admin cannot disable themselves or change their own role', async (t) => {
  assertError(t, await t.context.admin.request('DELETE', `${USERS}/${ADMIN.username}`), 409, 'CONFLICT');
  assertError(t, await t.context.admin.request('DELETE', `${USERS}/${ADMIN.username.toUpperCase()}`), 409, 'CONFLICT');
  assertError(
    t,
    await t.context.admin.request('PUT', `${USERS}/${ADMIN.username}`, { body: { role: 'Viewer' } }),
    409,
    'CONFLICT',
  );
  t.is((await t.context.admin.request('GET', USERS)).status, 200);
});

test('an Admin can disable another Admin', async (t) => {
  const { username } = await createUser(t, 'Admin');
  const other = createClient(t.context.platform.url, await t.context.anonymous.login(username, PASSWORD));
  t.is((await other.request('GET', USERS)).status, 200);
  t.is((await t.context.admin.request('DELETE', `${USERS}/${username}`)).status, 204);
  assertError(t, await other.request('GET', USERS), 401, 'UNAUTHORIZED');
});
