import anyTest, { type TestFn } from 'ava';
import { ADMIN, type Client, HELLO_NODE, startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, NODE_FUNCTION, uniqueName } from './support.ts';

type Role = 'Admin' | 'Developer' | 'Operator' | 'Viewer';
const ROLES: readonly Role[] = ['Admin', 'Developer', 'Operator', 'Viewer'];
const PASSWORD = 'Passw0rd!';

interface Context extends TestPlatform {
  readonly clients: Readonly<Record<Role, Client>>;
  /** A function with versions 1 and 2 and an alias `live` on version 1, which the reads use. */
  readonly fixture: string;
  /** A user the user endpoints read and update. */
  readonly someUser: string;
  /** A user only the Admin's DELETE /users/{username} disables. */
  readonly disposableUser: string;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const platform = await startTestPlatform();
  const clients = Object.fromEntries(
    await Promise.all(ROLES.map(async (role) => [role, await platform.as(role)] as const)),
  ) as Record<Role, Client>;
  const fixture = uniqueName('fixture');
  const someUser = `${uniqueName('someone')}@example.com`;
  const disposableUser = `${uniqueName('disposable')}@example.com`;
  const setup = [
    await platform.admin.request('POST', '/api/v1/functions', { body: { name: fixture, ...NODE_FUNCTION } }),
    await platform.admin.request('POST', `/api/v1/functions/${fixture}/versions`, { body: { code: HELLO_NODE } }),
    await platform.admin.request('POST', `/api/v1/functions/${fixture}/versions`, { body: { code: HELLO_NODE } }),
    await platform.admin.request('POST', `/api/v1/functions/${fixture}/aliases`, {
      body: { aliasName: 'live', version: 1 },
    }),
    ...(await Promise.all(
      [someUser, disposableUser].map((username) =>
        platform.admin.request('POST', '/api/v1/users', { body: { username, password: PASSWORD, role: 'Viewer' } }),
      ),
    )),
  ];
  if (setup.some((response) => response.status !== 201)) throw new Error('the fixture could not be set up');
  t.context = Object.assign(platform, { clients, fixture, someUser, disposableUser });
});

test.after.always(async (t) => {
  await t.context.stop();
});

interface Call {
  readonly path: string;
  readonly body?: unknown;
}

interface Row {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  readonly path: string;
  /** The roles the reference authorises. */
  readonly allowed: readonly Role[];
  /** What an authorised caller gets. */
  readonly success: number;
  /** The request for one role; may first create what a destructive request consumes. */
  prepare(context: Context, role: Role): Promise<Call>;
}

const admin = (context: Context) => context.admin;

/** A new function (with version 1 and alias `canary` on it) that a destructive request may consume. */
const throwaway = async (context: Context, role: Role): Promise<string> => {
  const name = uniqueName(`throwaway-${role.toLowerCase()}`);
  const steps = [
    await admin(context).request('POST', '/api/v1/functions', { body: { name, ...NODE_FUNCTION } }),
    await admin(context).request('POST', `/api/v1/functions/${name}/versions`, { body: { code: HELLO_NODE } }),
    await admin(context).request('POST', `/api/v1/functions/${name}/versions`, { body: { code: HELLO_NODE } }),
    await admin(context).request('POST', `/api/v1/functions/${name}/aliases`, {
      body: { aliasName: 'canary', version: 1 },
    }),
  ];
  if (steps.some((response) => response.status !== 201)) throw new Error(`could not set up ${name}`);
  return name;
};

const ALL: readonly Role[] = ROLES;

const ROWS: readonly Row[] = [
  {
    method: 'POST',
    path: '/functions',
    allowed: ['Developer', 'Admin'],
    success: 201,
    prepare: async (_, role) => ({
      path: '/api/v1/functions',
      body: { name: uniqueName(`created-by-${role.toLowerCase()}`), ...NODE_FUNCTION },
    }),
  },
  {
    method: 'GET',
    path: '/functions',
    allowed: ALL,
    success: 200,
    prepare: async () => ({ path: '/api/v1/functions' }),
  },
  {
    method: 'GET',
    path: '/functions/{name}',
    allowed: ALL,
    success: 200,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}` }),
  },
  {
    method: 'PUT',
    path: '/functions/{name}',
    allowed: ['Developer', 'Admin'],
    success: 200,
    prepare: async (context, role) => ({
      path: `/api/v1/functions/${await throwaway(context, role)}`,
      body: { timeout: 30 },
    }),
  },
  {
    method: 'DELETE',
    path: '/functions/{name}',
    allowed: ['Admin'],
    success: 204,
    prepare: async (context, role) => ({ path: `/api/v1/functions/${await throwaway(context, role)}` }),
  },
  {
    method: 'POST',
    path: '/functions/{name}/versions',
    allowed: ['Developer', 'Admin'],
    success: 201,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}/versions`, body: { code: HELLO_NODE } }),
  },
  {
    method: 'GET',
    path: '/functions/{name}/versions',
    allowed: ALL,
    success: 200,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}/versions` }),
  },
  {
    method: 'GET',
    path: '/functions/{name}/versions/{version}',
    allowed: ALL,
    success: 200,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}/versions/1` }),
  },
  {
    method: 'DELETE',
    path: '/functions/{name}/versions/{version}',
    allowed: ['Developer', 'Admin'],
    success: 204,
    prepare: async (context, role) => ({ path: `/api/v1/functions/${await throwaway(context, role)}/versions/2` }),
  },
  {
    method: 'POST',
    path: '/functions/{name}/aliases',
    allowed: ['Developer', 'Admin'],
    success: 201,
    prepare: async ({ fixture }, role) => ({
      path: `/api/v1/functions/${fixture}/aliases`,
      body: { aliasName: `by-${role.toLowerCase()}`, version: 2 },
    }),
  },
  {
    method: 'GET',
    path: '/functions/{name}/aliases',
    allowed: ALL,
    success: 200,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}/aliases` }),
  },
  {
    method: 'GET',
    path: '/functions/{name}/aliases/{alias}',
    allowed: ALL,
    success: 200,
    prepare: async ({ fixture }) => ({ path: `/api/v1/functions/${fixture}/aliases/live` }),
  },
  {
    method: 'PUT',
    path: '/functions/{name}/aliases/{alias}',
    allowed: ['Operator', 'Admin'],
    success: 200,
    prepare: async (context, role) => ({
      path: `/api/v1/functions/${await throwaway(context, role)}/aliases/canary`,
      body: { version: 1, routingConfig: { '1': 90, '2': 10 } },
    }),
  },
  {
    method: 'DELETE',
    path: '/functions/{name}/aliases/{alias}',
    allowed: ['Operator', 'Admin'],
    success: 204,
    prepare: async (context, role) => ({ path: `/api/v1/functions/${await throwaway(context, role)}/aliases/canary` }),
  },
  {
    method: 'POST',
    path: '/users',
    allowed: ['Admin'],
    success: 201,
    prepare: async (_, role) => ({
      path: '/api/v1/users',
      body: {
        username: `${uniqueName(`made-by-${role.toLowerCase()}`)}@example.com`,
        password: PASSWORD,
        role: 'Viewer',
      },
    }),
  },
  {
    method: 'GET',
    path: '/users',
    allowed: ['Admin'],
    success: 200,
    prepare: async () => ({ path: '/api/v1/users' }),
  },
  {
    method: 'GET',
    path: '/users/{username}',
    allowed: ['Admin'],
    success: 200,
    prepare: async ({ someUser }) => ({ path: `/api/v1/users/${someUser}` }),
  },
  {
    method: 'PUT',
    path: '/users/{username}',
    allowed: ['Admin'],
    success: 200,
    prepare: async ({ someUser }) => ({ path: `/api/v1/users/${someUser}`, body: { role: 'Viewer' } }),
  },
  {
    method: 'DELETE',
    path: '/users/{username}',
    allowed: ['Admin'],
    success: 204,
    // Only the Admin's request may succeed, so every role aims at the same user.
    prepare: async ({ disposableUser }) => ({ path: `/api/v1/users/${disposableUser}` }),
  },
];

for (const row of ROWS) {
  test(`${row.method} ${row.path}: ${row.allowed.join(', ')}`, async (t) => {
    // Forbidden roles first, so that what only an authorised request consumes is still there for them.
    const order = [...ROLES].sort((a, b) => Number(row.allowed.includes(a)) - Number(row.allowed.includes(b)));
    for (const role of order) {
      const call = await row.prepare(t.context, role);
      const response = await t.context.clients[role].request(
        row.method,
        call.path,
        call.body === undefined ? {} : { body: call.body },
      );
      if (row.allowed.includes(role)) {
        t.is(response.status, row.success, `${role}: ${JSON.stringify(response.body)}`);
      } else {
        const error = assertError(t, response, 403, 'FORBIDDEN');
        t.regex(error.message, new RegExp(role));
      }
    }
  });
}

test('a forbidden request changes nothing', async (t) => {
  const name = uniqueName('untouched');
  t.is(
    (await t.context.clients.Viewer.request('POST', '/api/v1/functions', { body: { name, ...NODE_FUNCTION } })).status,
    403,
  );
  t.is((await t.context.admin.request('GET', `/api/v1/functions/${name}`)).status, 404);
  const fixture = t.context.fixture;
  t.is((await t.context.clients.Developer.request('DELETE', `/api/v1/functions/${fixture}`)).status, 403);
  t.is(
    (await t.context.clients.Operator.request('PUT', `/api/v1/functions/${fixture}`, { body: { timeout: 99 } })).status,
    403,
  );
  const fetched = await t.context.admin.request('GET', `/api/v1/functions/${fixture}`);
  t.is(fetched.status, 200);
  t.not(fetched.body.timeout, 99);
  t.is(
    (await t.context.clients.Developer.request('PUT', `/api/v1/users/${ADMIN.username}`, { body: { role: 'Viewer' } }))
      .status,
    403,
  );
});

test('a forbidden request is 403 even when its body is invalid or its target missing', async (t) => {
  assertError(
    t,
    await t.context.clients.Viewer.request('POST', '/api/v1/functions', { body: { nonsense: true } }),
    403,
    'FORBIDDEN',
  );
  assertError(
    t,
    await t.context.clients.Operator.request('DELETE', `/api/v1/functions/${uniqueName('missing')}`),
    403,
    'FORBIDDEN',
  );
});
