import { setTimeout as sleep } from 'node:timers/promises';
import type Router from '@koa/router';
import anyTest, { type TestFn } from 'ava';
import type { OpenApiDocument } from '../../api/openapi.ts';
import { type Conformance, createConformance, fill } from '../support/openapi.ts';
import { type Client, HELLO_NODE, startTestPlatform, type TestPlatform, zipBase64 } from '../support/platform.ts';
import { uniqueName } from './support.ts';

const test = anyTest as TestFn<{ platform: TestPlatform; document: OpenApiDocument; conformance: Conformance }>;

test.before(async (t) => {
  const platform = await startTestPlatform({ STRATA_HEARTBEAT_INTERVAL: 'PT0.2S' }, { runners: 'inProcess' });
  const response = await platform.anonymous.request<OpenApiDocument>('GET', '/api/v1/openapi.json');
  if (response.status !== 200) throw new Error(`no document: ${response.status}`);
  t.context = { platform, document: response.body, conformance: createConformance(response.body) };
});

test.after.always(async (t) => {
  await t.context.platform?.stop();
});

const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];

/** `METHOD /path/{param}` of every route the app's routers answer (HEAD comes with GET and is left out). */
const registeredRoutes = (platform: TestPlatform): Set<string> => {
  const routes = new Set<string>();
  for (const middleware of platform.platform.app.middleware) {
    const router = (middleware as { router?: Router }).router;
    if (router === undefined) continue;
    for (const layer of router.stack) {
      const path = String(layer.path).replace(/:(\w+)/g, '{$1}');
      for (const method of layer.methods) if (method !== 'HEAD') routes.add(`${method} ${path}`);
    }
  }
  return routes;
};

const documentedOperations = (document: OpenApiDocument): Set<string> =>
  new Set(
    Object.entries(document.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .filter((key) => METHODS.includes(key))
        .map((method) => `${method.toUpperCase()} ${path}`),
    ),
  );

test('the document is OpenAPI 3.1, served without a token', async (t) => {
  const response = await t.context.platform.anonymous.request('GET', '/api/v1/openapi.json', {
    headers: { authorization: 'Bearer not-a-token' },
  });
  t.is(response.status, 200);
  t.is(response.headers.get('content-type')?.split(';')[0], 'application/json');
  t.is(response.body.openapi, '3.1.0');
  t.deepEqual(t.context.document.components && Object.keys(t.context.document.components).sort(), [
    'headers',
    'responses',
    'schemas',
    'securitySchemes',
  ]);
});

test('every route the server answers is documented, and every documented operation has a route', (t) => {
  const routes = registeredRoutes(t.context.platform);
  const operations = documentedOperations(t.context.document);
  t.true(routes.size > 20, `only ${routes.size} routes found: are the routers still found?`);
  t.deepEqual(
    [...routes].filter((route) => !operations.has(route)),
    [],
    'routes without a documented operation',
  );
  t.deepEqual(
    [...operations].filter((operation) => !routes.has(operation)),
    [],
    'documented operations without a route',
  );
  for (const route of ['GET /health', 'GET /api/v1/openapi.json', 'GET /docs', 'POST /api/v1/functions']) {
    t.true(operations.has(route), route);
  }
});

test('every operation documents its errors, its security and the rate-limit and trace headers', (t) => {
  const { document } = t.context;
  const responses = (document.components as { responses: Record<string, { headers: Record<string, unknown> }> })
    .responses;
  for (const [path, item] of Object.entries(document.paths)) {
    for (const [method, operation] of Object.entries(item)) {
      const label = `${method.toUpperCase()} ${path}`;
      const statuses = Object.keys(operation.responses as object);
      const isPublic = Array.isArray(operation.security) && operation.security.length === 0;
      t.is(statuses.includes('401'), !isPublic || path.endsWith('/login'), `${label} 401`);
      t.is(statuses.includes('415'), operation.requestBody !== undefined, `${label} 415`);
      t.is(statuses.includes('413'), operation.requestBody !== undefined, `${label} 413`);
      if (path.startsWith('/api/v1/') && !path.endsWith('openapi.json')) {
        t.true(statuses.includes('429') && statuses.includes('500') && statuses.includes('503'), label);
      }
      t.true(
        statuses.some((status) => status.startsWith('2')),
        `${label} has a success`,
      );
      for (const [status, response] of Object.entries(operation.responses as Record<string, { $ref?: string }>)) {
        const headers =
          response.$ref === undefined
            ? (response as { headers: Record<string, unknown> }).headers
            : responses[response.$ref.split('/').pop() ?? '']?.headers;
        for (const header of ['X-Trace-Id', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) {
          t.truthy(headers?.[header], `${label} ${status} ${header}`);
        }
        if (status === '429') t.truthy(headers?.['Retry-After'], `${label} 429 Retry-After`);
      }
    }
  }
  t.deepEqual((document.components as { securitySchemes: object }).securitySchemes, {
    bearerAuth: {
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'JWT',
      description: 'The token from POST /api/v1/authentication/login.',
    },
  });
});

test('the documentation page and its assets are served from the server itself', async (t) => {
  const { anonymous } = t.context.platform;
  const page = await anonymous.request<string>('GET', '/docs');
  t.is(page.status, 200);
  t.regex(page.body, /swagger-ui-bundle\.js/);
  t.regex(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  t.notRegex(page.body, /https?:\/\//);
  const bundle = await anonymous.request<string>('GET', '/docs/swagger-ui-bundle.js');
  t.is(bundle.status, 200);
  t.is(bundle.headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.true(bundle.body.length > 100_000);
});

interface Call {
  readonly as?: Client;
  readonly body?: unknown;
  readonly raw?: string | Uint8Array;
  readonly headers?: Record<string, string>;
  readonly params?: Record<string, string | number>;
  readonly query?: string;
}

test.serial('responses match their documented schemas', async (t) => {
  const { platform, conformance } = t.context;
  const { admin, anonymous } = platform;
  const call = async <T = Record<string, unknown>>(
    method: string,
    template: string,
    expected: number,
    options: Call = {},
  ) => {
    const client = options.as ?? admin;
    const path = `${fill(template, options.params)}${options.query === undefined ? '' : `?${options.query}`}`;
    const response = await client.request<T>(method, path, {
      ...(options.body === undefined ? {} : { body: options.body }),
      ...(options.raw === undefined ? {} : { raw: options.raw }),
      ...(options.headers === undefined ? {} : { headers: options.headers }),
    });
    t.is(response.status, expected, `${method} ${path}: ${String(JSON.stringify(response.body)).slice(0, 500)}`);
    conformance.check(t, method, template, response);
    return response;
  };

  await call('GET', '/health', 200, { as: anonymous });
  await call('GET', '/api/v1/openapi.json', 200, { as: anonymous });
  await call('GET', '/docs', 200, { as: anonymous });
  await call('GET', '/docs/{asset}', 200, { as: anonymous, params: { asset: 'swagger-ui.css' } });
  await call('GET', '/docs/{asset}', 404, { as: anonymous, params: { asset: 'index.html' } });

  const login = '/api/v1/authentication/login';
  await call('POST', login, 200, { as: anonymous, body: { username: 'admin@example.com', password: 'Admin123!' } });
  await call('POST', login, 401, { as: anonymous, body: { username: 'nobody@example.com', password: 'wrong' } });
  await call('POST', login, 400, { as: anonymous, body: { username: 'admin@example.com' } });

  const username = `${uniqueName('openapi')}@example.com`;
  await call('POST', '/api/v1/users', 201, { body: { username, password: 'Passw0rd!', role: 'Viewer' } });
  await call('POST', '/api/v1/users', 409, { body: { username, password: 'Passw0rd!', role: 'Viewer' } });
  await call('GET', '/api/v1/users', 200, { query: 'limit=5' });
  await call('GET', '/api/v1/users/{username}', 200, { params: { username } });
  await call('GET', '/api/v1/users/{username}', 404, { params: { username: 'missing@example.com' } });
  await call('PUT', '/api/v1/users/{username}', 200, { params: { username }, body: { role: 'Developer' } });
  await call('DELETE', '/api/v1/users/{username}', 409, { params: { username: 'admin@example.com' } });
  await call('DELETE', '/api/v1/users/{username}', 204, { params: { username } });

  const viewer = await platform.as('Viewer');
  await call('GET', '/api/v1/functions', 401, { as: anonymous });
  await call('GET', '/api/v1/users', 403, { as: viewer });

  const name = uniqueName('openapi');
  const fn = { name, runtime: 'Node24', handler: 'index.handler', tags: { team: 'docs' } };
  await call('POST', '/api/v1/functions', 403, { as: viewer, body: fn });
  await call('POST', '/api/v1/functions', 201, { body: fn });
  await call('POST', '/api/v1/functions', 409, { body: fn });
  await call('POST', '/api/v1/functions', 400, { body: { ...fn, name: uniqueName('bad'), memorySize: 100 } });
  await call('POST', '/api/v1/functions', 415, { raw: '{}', headers: { 'content-type': 'text/plain' } });
  await call('POST', '/api/v1/functions', 413, {
    raw: JSON.stringify({ ...fn, description: 'x'.repeat(7 * 1024 * 1024) }),
    headers: { 'content-type': 'application/json' },
  });
  await call('GET', '/api/v1/functions', 200, { query: 'tag=team:docs&limit=100' });
  await call('GET', '/api/v1/functions', 400, { query: 'limit=0' });
  await call('GET', '/api/v1/functions/{name}', 200, { params: { name } });
  await call('GET', '/api/v1/functions/{name}', 404, { params: { name: uniqueName('missing') } });
  await call('PUT', '/api/v1/functions/{name}', 200, { params: { name }, body: { memorySize: 256 } });

  const versions = '/api/v1/functions/{name}/versions';
  await call('POST', versions, 201, { params: { name }, body: { code: HELLO_NODE, description: 'first' } });
  await call('POST', versions, 400, { params: { name }, body: { code: 'bm90IGEgemlw' } });
  const failing = zipBase64({ 'index.js': 'exports.handler = async () => { throw new TypeError("boom"); };\n' });
  await call('POST', versions, 201, { params: { name }, body: { code: failing } });
  const zip = { 'content-type': 'application/zip' };
  await call('POST', versions, 201, {
    params: { name },
    query: 'description=zip&environment[A]=b',
    raw: Buffer.from(HELLO_NODE, 'base64'),
    headers: zip,
  });
  await call('POST', versions, 400, { params: { name }, raw: Buffer.from('not a zip'), headers: zip });
  await call('GET', versions, 200, { params: { name } });
  await call('GET', `${versions}/{version}`, 200, { params: { name, version: 'v1' } });
  await call('GET', `${versions}/{version}`, 400, { params: { name, version: 'first' } });
  await call('GET', `${versions}/{version}`, 404, { params: { name, version: 99 } });

  const aliases = '/api/v1/functions/{name}/aliases';
  await call('POST', aliases, 201, { params: { name }, body: { aliasName: 'live', version: 1 } });
  await call('POST', aliases, 409, { params: { name }, body: { aliasName: 'live', version: 1 } });
  await call('GET', aliases, 200, { params: { name } });
  await call('GET', `${aliases}/{alias}`, 200, { params: { name, alias: 'live' } });
  await call('PUT', `${aliases}/{alias}`, 200, {
    params: { name, alias: 'live' },
    body: { version: 1, routingConfig: { 1: 100 } },
  });
  await call('PUT', '/api/v1/functions/{name}', 200, { params: { name }, body: { publishedVersion: 'v1' } });

  await waitForRunner(admin);
  const invoke = '/api/v1/functions/{name}/invoke';
  const answered = await call<{ requestId: string }>('POST', invoke, 200, {
    params: { name },
    body: { payload: '{"name":"Ada"}', alias: 'live' },
  });
  await call('POST', invoke, 200, { params: { name }, body: { version: 2 } });
  await call('POST', invoke, 204, { params: { name }, body: { invocationType: 'DryRun' } });
  await call('POST', invoke, 202, { params: { name }, body: { invocationType: 'Event' } });
  await call('POST', invoke, 404, { params: { name }, body: { alias: 'missing' } });
  await call('POST', '/api/v1/functions/{name}/invoke-async', 202, { params: { name }, body: { payload: {} } });
  const requestId = answered.body.requestId;
  const invocation = '/api/v1/functions/{name}/invocations/{requestId}';
  await call('GET', invocation, 200, { params: { name, requestId } });
  await call('GET', `${invocation}/logs`, 200, { params: { name, requestId } });
  await call('GET', invocation, 404, { params: { name, requestId: 'req-missing' } });
  await call('GET', '/api/v1/functions/{name}/metrics', 200, { params: { name }, query: 'window=PT5M' });
  await call('GET', '/api/v1/functions/{name}/metrics', 200, { params: { name }, query: 'version=1' });
  await call('GET', '/api/v1/functions/{name}/metrics', 400, { params: { name }, query: 'window=forever' });

  const runners = await call<{ runners: { nodeId: string }[] }>('GET', '/api/v1/runners', 200);
  await call('GET', '/api/v1/runners/{nodeId}', 200, { params: { nodeId: runners.body.runners[0]?.nodeId ?? '' } });
  await call('GET', '/api/v1/runners/{nodeId}', 404, { params: { nodeId: 'runner-missing' } });

  await call('DELETE', `${aliases}/{alias}`, 204, { params: { name, alias: 'live' } });
  await call('DELETE', `${versions}/{version}`, 204, { params: { name, version: 2 } });
  await call('DELETE', '/api/v1/functions/{name}', 204, { params: { name } });
  await call('DELETE', '/api/v1/functions/{name}', 404, { params: { name } });

  const untested = [...documentedOperations(t.context.document)].filter(
    (operation) => ![...conformance.seen].some((seen) => seen.startsWith(`${operation} `)),
  );
  t.deepEqual(untested, [], 'operations this test does not exercise');
});

/** The in-process runner has sent its first heartbeat. */
const waitForRunner = async (admin: Client): Promise<void> => {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const response = await admin.request<{ total: number }>('GET', '/api/v1/runners');
    if (response.body.total > 0) return;
    await sleep(100);
  }
  throw new Error('no runner sent a heartbeat');
};
