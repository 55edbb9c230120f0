import anyTest, { type TestFn } from 'ava';
import { startTestPlatform, type TestPlatform } from '../support/platform.ts';
import { assertError, assertRateLimitHeaders, NODE_FUNCTION, uniqueName } from './support.ts';

const test = anyTest as TestFn<TestPlatform>;

// Rate limiting on (the reference's defaults), so that the limit headers can be checked on every error.
test.before(async (t) => {
  t.context = await startTestPlatform({ STRATA_RATE_LIMITS: '' });
});

test.after.always(async (t) => {
  await t.context.stop();
});

test('an unknown route is 404 NOT_FOUND in the error format', async (t) => {
  for (const path of ['/api/v1/nothing-here', '/api/v2/functions', '/', '/api/v1/functions/a/b/c/d']) {
    const response = await t.context.admin.request('GET', path);
    const error = assertError(t, response, 404, 'NOT_FOUND');
    t.deepEqual(error.details, []);
    assertRateLimitHeaders(t, response);
  }
  assertError(t, await t.context.anonymous.request('GET', '/api/v1/nothing-here'), 404, 'NOT_FOUND');
});

test('every response carries its trace id', async (t) => {
  const response = await t.context.admin.request('GET', `/api/v1/functions/${uniqueName('missing')}`);
  const error = assertError(t, response, 404, 'NOT_FOUND');
  t.is(response.headers.get('x-trace-id'), error.traceId);
  const other = await t.context.admin.request('GET', `/api/v1/functions/${uniqueName('missing')}`);
  t.not(assertError(t, other, 404, 'NOT_FOUND').traceId, error.traceId);
});

test('a wrong method on a known route is 405 in the error format, with Allow', async (t) => {
  const cases: [string, string, string[]][] = [
    ['PATCH', '/api/v1/functions', ['GET', 'POST']],
    ['DELETE', '/api/v1/functions', ['GET', 'POST']],
    ['POST', '/api/v1/functions/some-function', ['GET', 'PUT', 'DELETE']],
    ['PUT', '/api/v1/functions/some-function/versions', ['GET', 'POST']],
    ['GET', '/api/v1/authentication/login', ['POST']],
  ];
  for (const [method, path, allowed] of cases) {
    const response = await t.context.admin.request(method, path);
    assertError(t, response, 405, 'METHOD_NOT_ALLOWED');
    assertRateLimitHeaders(t, response);
    const allow = (response.headers.get('allow') ?? '').split(',').map((entry) => entry.trim());
    for (const expected of allowed) t.true(allow.includes(expected), `${method} ${path}: Allow: ${allow.join(', ')}`);
  }
});

test('a method the API does not know is 405 on a known route and 404 elsewhere, never a server error', async (t) => {
  const known = await t.context.admin.request('PROPFIND', '/api/v1/functions');
  assertError(t, known, 405, 'METHOD_NOT_ALLOWED');
  t.regex(known.headers.get('allow') ?? '', /GET/);
  assertError(t, await t.context.admin.request('PROPFIND', '/api/v1/nowhere'), 404, 'NOT_FOUND');
});

test('malformed JSON is 400 VALIDATION_ERROR on the body', async (t) => {
  for (const raw of ['{"name": ', '{name: "x"}', "{'a': 1}", '[1, 2', 'nul']) {
    const response = await t.context.admin.request('POST', '/api/v1/functions', {
      raw,
      headers: { 'content-type': 'application/json' },
    });
    assertError(t, response, 400, 'VALIDATION_ERROR', ['body']);
    assertRateLimitHeaders(t, response);
  }
});

test('a JSON body that is not an object is 400 VALIDATION_ERROR', async (t) => {
  for (const raw of ['[]', '"text"', '42', 'null']) {
    const response = await t.context.admin.request('POST', '/api/v1/functions', {
      raw,
      headers: { 'content-type': 'application/json' },
    });
    assertError(t, response, 400, 'VALIDATION_ERROR');
  }
});

test('a body that is not JSON is 415', async (t) => {
  const response = await t.context.admin.request('POST', '/api/v1/functions', {
    raw: JSON.stringify({ name: uniqueName('plain'), ...NODE_FUNCTION }),
    headers: { 'content-type': 'text/plain' },
  });
  assertError(t, response, 415, 'UNSUPPORTED_MEDIA_TYPE', ['Content-Type']);
  assertRateLimitHeaders(t, response);
  const form = await t.context.admin.request('PUT', '/api/v1/functions/anything', {
    raw: 'timeout=5',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
  assertError(t, form, 415, 'UNSUPPORTED_MEDIA_TYPE');
});

test('JSON with a charset parameter is accepted', async (t) => {
  const name = uniqueName('charset');
  const response = await t.context.admin.request('POST', '/api/v1/functions', {
    raw: JSON.stringify({ name, ...NODE_FUNCTION }),
    headers: { 'content-type': 'application/json; charset=utf-8' },
  });
  t.is(response.status, 201, JSON.stringify(response.body));
});

test('every error response has the rate limit headers', async (t) => {
  const viewer = await t.context.as('Viewer');
  const responses = [
    await t.context.anonymous.request('GET', '/api/v1/functions'),
    await t.context.anonymous.request('GET', '/api/v1/functions', { token: 'garbage' }),
    await t.context.anonymous.request('POST', '/api/v1/authentication/login', {
      body: { username: `${uniqueName('nobody')}@example.com`, password: 'Wrong-passw0rd' },
      token: null,
    }),
    await t.context.anonymous.request('POST', '/api/v1/authentication/login', { body: {}, token: null }),
    await viewer.request('POST', '/api/v1/functions', { body: { name: uniqueName('forbidden'), ...NODE_FUNCTION } }),
    await t.context.admin.request('GET', `/api/v1/functions/${uniqueName('missing')}`),
    await t.context.admin.request('GET', '/api/v1/functions?limit=0'),
    await t.context.admin.request('POST', '/api/v1/functions', { body: { name: 'x' } }),
    await t.context.admin.request('GET', '/api/v1/nowhere'),
    await t.context.admin.request('PATCH', '/api/v1/functions'),
    await t.context.admin.request('POST', '/api/v1/functions', {
      raw: 'name=x',
      headers: { 'content-type': 'text/plain' },
    }),
    await t.context.admin.request('POST', '/api/v1/functions', {
      body: { name: uniqueName('huge'), ...NODE_FUNCTION, description: 'x'.repeat(7 * 1024 * 1024) },
    }),
  ];
  t.deepEqual(
    responses.map((response) => response.status),
    [401, 401, 401, 400, 403, 404, 400, 400, 404, 405, 415, 413],
  );
  for (const response of responses) {
    assertRateLimitHeaders(t, response);
    t.false(response.headers.has('retry-after'), `no Retry-After on a ${response.status}`);
  }
});

test('GET /health answers without a token, with rate limit headers', async (t) => {
  const response = await t.context.anonymous.request('GET', '/health');
  t.is(response.status, 200);
  t.is(response.body.status, 'ok');
  assertRateLimitHeaders(t, response);
});

test('server errors are never shown for bad input in paths', async (t) => {
  for (const path of [
    '/api/v1/functions/%E0%A4%A',
    `/api/v1/functions/${'a'.repeat(300)}`,
    '/api/v1/functions/..%2F..%2Fetc',
    '/api/v1/users/%00',
    `/api/v1/functions/${uniqueName('x')}/versions/99999999999999999999`,
  ]) {
    const response = await t.context.admin.request('GET', path);
    t.true(
      response.status >= 400 && response.status < 500,
      `${path}: ${response.status} ${JSON.stringify(response.body)}`,
    );
    t.truthy((response.body as { error?: unknown }).error, path);
  }
});
