import { randomBytes } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { zipSync } from 'fflate';
import { HELLO_NODE, startTestPlatform, type TestPlatform, zipBase64 } from '../support/platform.ts';
import {
  assertError,
  createFunction,
  isIsoTimestamp,
  NODE_FUNCTION,
  publishVersion,
  sha256OfBase64,
  uniqueName,
  uniqueNodeZip,
} from './support.ts';

const test = anyTest as TestFn<TestPlatform & { adminId: string }>;

const versionsOf = (name: string) => `/api/v1/functions/${name}/versions`;

interface VersionList {
  functionName: string;
  versions: Record<string, unknown>[];
  total: number;
  limit: number;
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

test('POST /versions publishes numbered versions with the code package described', async (t) => {
  const name = uniqueName('publish');
  await createFunction(t, t.context.admin, name);
  const code = uniqueNodeZip();
  const response = await t.context.admin.request('POST', versionsOf(name), {
    body: { code, description: 'First cut' },
  });
  t.is(response.status, 201);
  t.like(response.body, {
    functionName: name,
    version: 1,
    versionString: 'v1',
    codeSha256: sha256OfBase64(code),
    codeSize: Buffer.from(code, 'base64').byteLength,
    runtime: 'Node24',
    createdBy: t.context.adminId,
  });
  t.is(typeof response.body.codeLocation, 'string');
  t.true(String(response.body.codeLocation).length > 0);
  t.true(isIsoTimestamp(response.body.createdAt));

  const second = await publishVersion(t, t.context.admin, name, uniqueNodeZip());
  t.like(second, { version: 2, versionString: 'v2' });
});

test('versions published by a Developer are created by them', async (t) => {
  const developer = await t.context.as('Developer');
  const name = uniqueName('dev');
  const created = await createFunction(t, developer, name);
  const version = await publishVersion(t, developer, name, HELLO_NODE);
  t.is(version.createdBy, created.ownerId);
});

test('identical ZIP bytes in two functions have the same codeSha256', async (t) => {
  const first = uniqueName('same');
  const second = uniqueName('same');
  await createFunction(t, t.context.admin, first);
  await createFunction(t, t.context.admin, second);
  const a = await publishVersion(t, t.context.admin, first, HELLO_NODE);
  const b = await publishVersion(t, t.context.admin, second, HELLO_NODE);
  t.is(a.codeSha256, b.codeSha256);
  t.is(a.codeSha256, sha256OfBase64(HELLO_NODE));
  t.is(a.codeSize, b.codeSize);
});

test('concurrent publishes get distinct consecutive versions', async (t) => {
  const name = uniqueName('concurrent');
  await createFunction(t, t.context.admin, name);
  const responses = await Promise.all(
    Array.from({ length: 5 }, () =>
      t.context.admin.request('POST', versionsOf(name), { body: { code: uniqueNodeZip() } }),
    ),
  );
  t.deepEqual(
    responses.map((response) => response.status),
    [201, 201, 201, 201, 201],
  );
  t.deepEqual(responses.map((response) => response.body.version).sort(), [1, 2, 3, 4, 5]);
});

test('code that is not base64 is INVALID_CODE_PACKAGE', async (t) => {
  const name = uniqueName('base64');
  await createFunction(t, t.context.admin, name);
  for (const code of ['not base64!', 'QUJD\nREVG', 'QUJDRA']) {
    const response = await t.context.admin.request('POST', versionsOf(name), { body: { code } });
    assertError(t, response, 400, 'INVALID_CODE_PACKAGE', ['code']);
  }
});

test('code that is not a ZIP is INVALID_CODE_PACKAGE', async (t) => {
  const name = uniqueName('notzip');
  await createFunction(t, t.context.admin, name);
  const response = await t.context.admin.request('POST', versionsOf(name), {
    body: { code: Buffer.from('just some text, no archive here').toString('base64') },
  });
  assertError(t, response, 400, 'INVALID_CODE_PACKAGE', ['code']);
});

test('a ZIP without the handler file is INVALID_CODE_PACKAGE on code', async (t) => {
  const name = uniqueName('nohandler');
  await createFunction(t, t.context.admin, name);
  const response = await t.context.admin.request('POST', versionsOf(name), {
    body: { code: zipBase64({ 'main.js': 'exports.handler = async () => 1;\n' }) },
  });
  const error = assertError(t, response, 400, 'INVALID_CODE_PACKAGE', ['code']);
  t.regex(error.details[0]?.message ?? '', /index\.js/);
  const list = await t.context.admin.request<VersionList>('GET', versionsOf(name));
  t.is(list.body.total, 0);
});

test('a ZIP with a path escaping its directory is INVALID_CODE_PACKAGE', async (t) => {
  const name = uniqueName('slip');
  await createFunction(t, t.context.admin, name);
  const response = await t.context.admin.request('POST', versionsOf(name), {
    body: { code: zipBase64({ 'index.js': 'exports.handler = async () => 1;\n', '../x.js': 'boom\n' }) },
  });
  assertError(t, response, 400, 'INVALID_CODE_PACKAGE', ['code']);
});

test('POST /versions without code is a validation error', async (t) => {
  const name = uniqueName('nocode');
  await createFunction(t, t.context.admin, name);
  assertError(t, await t.context.admin.request('POST', versionsOf(name), { body: {} }), 400, 'VALIDATION_ERROR', [
    'code',
  ]);
  const extra = await t.context.admin.request('POST', versionsOf(name), { body: { code: HELLO_NODE, runtime: 'x' } });
  assertError(t, extra, 400, 'VALIDATION_ERROR', ['runtime']);
});

test('POST /versions of an unknown function is 404', async (t) => {
  const response = await t.context.admin.request('POST', versionsOf(uniqueName('missing')), {
    body: { code: HELLO_NODE },
  });
  assertError(t, response, 404, 'NOT_FOUND');
});

test("a version's environment overrides merge with the function's", async (t) => {
  const name = uniqueName('env');
  await createFunction(t, t.context.admin, name, {
    memorySize: 256,
    timeout: 10,
    environment: { BUCKET_NAME: 'images', MAX_SIZE: '1024' },
  });
  const published = await publishVersion(t, t.context.admin, name, HELLO_NODE, {
    description: 'Fix orientation',
    environment: { BUCKET_NAME: 'processed-images', EXTRA: 'yes' },
  });
  const response = await t.context.admin.request('GET', `${versionsOf(name)}/${published.version}`);
  t.is(response.status, 200);
  t.like(response.body, {
    functionName: name,
    version: 1,
    versionString: 'v1',
    description: 'Fix orientation',
    codeSha256: sha256OfBase64(HELLO_NODE),
    codeSize: published.codeSize,
    codeLocation: published.codeLocation,
    runtime: 'Node24',
    handler: 'index.handler',
    memorySize: 256,
    timeout: 10,
    environment: { BUCKET_NAME: 'processed-images', MAX_SIZE: '1024', EXTRA: 'yes' },
    invocationCount: 0,
    createdAt: published.createdAt,
    createdBy: t.context.adminId,
    status: 'Active',
  });
  const fn = await t.context.admin.request('GET', `/api/v1/functions/${name}`);
  t.deepEqual(fn.body.environment, { BUCKET_NAME: 'images', MAX_SIZE: '1024' });
});

test('a version keeps the configuration it was published with', async (t) => {
  const name = uniqueName('snapshot');
  await createFunction(t, t.context.admin, name, { memorySize: 256 });
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  t.is((await t.context.admin.request('PUT', `/api/v1/functions/${name}`, { body: { memorySize: 512 } })).status, 200);
  const version = await t.context.admin.request('GET', `${versionsOf(name)}/1`);
  t.is(version.body.memorySize, 256);
});

test('GET /versions lists newest first with total and limit', async (t) => {
  const name = uniqueName('list');
  await createFunction(t, t.context.admin, name);
  const codes = [uniqueNodeZip(), uniqueNodeZip(), uniqueNodeZip()];
  for (const code of codes) await publishVersion(t, t.context.admin, name, code);

  const all = await t.context.admin.request<VersionList>('GET', versionsOf(name));
  t.is(all.status, 200);
  t.is(all.body.functionName, name);
  t.is(all.body.total, 3);
  t.deepEqual(
    all.body.versions.map((version) => version.version),
    [3, 2, 1],
  );
  t.deepEqual(
    all.body.versions.map((version) => version.versionString),
    ['v3', 'v2', 'v1'],
  );
  t.deepEqual(
    all.body.versions.map((version) => version.codeSha256),
    codes.map(sha256OfBase64).reverse(),
  );
  for (const version of all.body.versions) {
    t.is(version.invocationCount, 0);
    t.true(isIsoTimestamp(version.createdAt));
  }

  const limited = await t.context.admin.request<VersionList>('GET', `${versionsOf(name)}?limit=2`);
  t.is(limited.body.total, 3);
  t.is(limited.body.limit, 2);
  t.deepEqual(
    limited.body.versions.map((version) => version.version),
    [3, 2],
  );
  assertError(t, await t.context.admin.request('GET', `${versionsOf(name)}?limit=0`), 400, 'VALIDATION_ERROR', [
    'limit',
  ]);
});

test('a version can be addressed as 6 or v6; other forms are 400, missing ones 404', async (t) => {
  const name = uniqueName('address');
  await createFunction(t, t.context.admin, name);
  for (let i = 0; i < 6; i += 1) await publishVersion(t, t.context.admin, name, HELLO_NODE);
  const plain = await t.context.admin.request('GET', `${versionsOf(name)}/6`);
  const prefixed = await t.context.admin.request('GET', `${versionsOf(name)}/v6`);
  t.is(plain.status, 200);
  t.is(prefixed.status, 200);
  t.is(plain.body.version, 6);
  t.deepEqual(prefixed.body, plain.body);

  for (const bad of ['abc', '0', 'v0', '-1', '1.5', 'v']) {
    assertError(t, await t.context.admin.request('GET', `${versionsOf(name)}/${bad}`), 400, 'VALIDATION_ERROR', [
      'version',
    ]);
  }
  assertError(t, await t.context.admin.request('GET', `${versionsOf(name)}/7`), 404, 'NOT_FOUND');
  assertError(t, await t.context.admin.request('GET', `${versionsOf(name)}/v99`), 404, 'NOT_FOUND');
});

test('DELETE /versions/{version} removes it, and version numbers are never reused', async (t) => {
  const name = uniqueName('delete');
  await createFunction(t, t.context.admin, name);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);

  const deleted = await t.context.admin.request<unknown>('DELETE', `${versionsOf(name)}/2`);
  t.is(deleted.status, 204);
  t.is(deleted.body, undefined);
  assertError(t, await t.context.admin.request('GET', `${versionsOf(name)}/2`), 404, 'NOT_FOUND');
  assertError(t, await t.context.admin.request('DELETE', `${versionsOf(name)}/2`), 404, 'NOT_FOUND');

  const next = await publishVersion(t, t.context.admin, name, HELLO_NODE);
  t.like(next, { version: 3, versionString: 'v3' });
  const list = await t.context.admin.request<VersionList>('GET', versionsOf(name));
  t.deepEqual(
    list.body.versions.map((version) => version.version),
    [3, 1],
  );
  t.is(list.body.total, 2);
});

test('a Developer can delete a version', async (t) => {
  const developer = await t.context.as('Developer');
  const name = uniqueName('devdelete');
  await createFunction(t, developer, name);
  await publishVersion(t, developer, name, HELLO_NODE);
  t.is((await developer.request('DELETE', `${versionsOf(name)}/v1`)).status, 204);
});

test('a version an alias routes to cannot be deleted', async (t) => {
  const name = uniqueName('aliased');
  await createFunction(t, t.context.admin, name);
  for (let i = 0; i < 3; i += 1) await publishVersion(t, t.context.admin, name, HELLO_NODE);
  const alias = await t.context.admin.request('POST', `/api/v1/functions/${name}/aliases`, {
    body: { aliasName: 'live', version: 1 },
  });
  t.is(alias.status, 201);
  const canary = await t.context.admin.request('PUT', `/api/v1/functions/${name}/aliases/live`, {
    body: { version: 1, routingConfig: { '1': 90, '2': 10 } },
  });
  t.is(canary.status, 200);

  assertError(t, await t.context.admin.request('DELETE', `${versionsOf(name)}/1`), 409, 'CONFLICT');
  assertError(t, await t.context.admin.request('DELETE', `${versionsOf(name)}/2`), 409, 'CONFLICT');
  t.is((await t.context.admin.request('GET', `${versionsOf(name)}/1`)).status, 200);
  t.is((await t.context.admin.request('DELETE', `${versionsOf(name)}/3`)).status, 204);

  t.is((await t.context.admin.request('DELETE', `/api/v1/functions/${name}/aliases/live`)).status, 204);
  t.is((await t.context.admin.request('DELETE', `${versionsOf(name)}/1`)).status, 204);
});

test("the function's publishedVersion cannot be deleted", async (t) => {
  const name = uniqueName('published');
  await createFunction(t, t.context.admin, name);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  await publishVersion(t, t.context.admin, name, HELLO_NODE);
  t.is(
    (await t.context.admin.request('PUT', `/api/v1/functions/${name}`, { body: { publishedVersion: 'v2' } })).status,
    200,
  );
  assertError(t, await t.context.admin.request('DELETE', `${versionsOf(name)}/2`), 409, 'CONFLICT');
  t.is((await t.context.admin.request('DELETE', `${versionsOf(name)}/1`)).status, 204);
});

test('a body over 6 MB on a normal endpoint is 413 PAYLOAD_TOO_LARGE', async (t) => {
  const name = uniqueName('huge');
  const response = await t.context.admin.request('POST', '/api/v1/functions', {
    body: { name, ...NODE_FUNCTION, description: 'x'.repeat(7 * 1024 * 1024) },
  });
  assertError(t, response, 413, 'PAYLOAD_TOO_LARGE');
  assertError(t, await t.context.admin.request('GET', `/api/v1/functions/${name}`), 404, 'NOT_FOUND');
});

test('a code package of about 7 MB is accepted', async (t) => {
  const name = uniqueName('big');
  await createFunction(t, t.context.admin, name);
  const zip = zipSync({
    'index.js': Buffer.from('exports.handler = async () => ({ statusCode: 200 });\n'),
    'assets/blob.bin': [randomBytes(7 * 1024 * 1024), { level: 0 }],
  });
  t.true(zip.byteLength > 7 * 1024 * 1024);
  const code = Buffer.from(zip).toString('base64');
  const published = await publishVersion(t, t.context.admin, name, code);
  t.is(published.codeSize, zip.byteLength);
  t.is(published.codeSha256, sha256OfBase64(code));
});

const zipBody = (base64: string) => ({
  raw: Buffer.from(base64, 'base64'),
  headers: { 'content-type': 'application/zip' },
});

test('a ZIP body (application/zip) publishes like the JSON form, with description and environment in the query', async (t) => {
  const name = uniqueName('zipbody');
  await createFunction(t, t.context.admin, name, { environment: { BUCKET_NAME: 'images', MAX_SIZE: '1024' } });
  const code = uniqueNodeZip();
  const query = `description=${encodeURIComponent('Raw cut')}&environment%5BBUCKET_NAME%5D=processed&environment[EXTRA]=yes`;
  const response = await t.context.admin.request('POST', `${versionsOf(name)}?${query}`, zipBody(code));
  t.is(response.status, 201, JSON.stringify(response.body));
  t.like(response.body, {
    functionName: name,
    version: 1,
    versionString: 'v1',
    description: 'Raw cut',
    codeSha256: sha256OfBase64(code),
    codeSize: Buffer.from(code, 'base64').byteLength,
    runtime: 'Node24',
    createdBy: t.context.adminId,
  });
  const version = await t.context.admin.request('GET', `${versionsOf(name)}/1`);
  t.deepEqual(version.body.environment, { BUCKET_NAME: 'processed', MAX_SIZE: '1024', EXTRA: 'yes' });

  const bare = await t.context.admin.request('POST', versionsOf(name), zipBody(code));
  t.is(bare.status, 201);
  t.like(bare.body, { version: 2, description: '', codeSha256: sha256OfBase64(code) });
  const json = await publishVersion(t, t.context.admin, name, code);
  t.like(json, { version: 3, codeSha256: sha256OfBase64(code), codeLocation: response.body.codeLocation });
});

test("a ZIP body's errors are those of the JSON form, and publish nothing", async (t) => {
  const name = uniqueName('zipbad');
  await createFunction(t, t.context.admin, name);
  const packages = {
    'not a ZIP': Buffer.from('just some text, no archive here').toString('base64'),
    empty: '',
    'no handler file': zipBase64({ 'main.js': 'exports.handler = async () => 1;\n' }),
    'a path escaping its directory': zipBase64({ 'index.js': 'exports.handler = 1;\n', '../x.js': 'boom\n' }),
  };
  for (const [what, code] of Object.entries(packages)) {
    const raw = await t.context.admin.request('POST', versionsOf(name), zipBody(code));
    const json = await t.context.admin.request('POST', versionsOf(name), { body: { code } });
    const error = assertError(t, raw, 400, 'INVALID_CODE_PACKAGE', ['code']);
    t.deepEqual(error.details, assertError(t, json, 400, 'INVALID_CODE_PACKAGE', ['code']).details, what);
    t.is(error.message, (json.body as { error: { message: string } }).error.message, what);
  }
  const list = await t.context.admin.request<VersionList>('GET', versionsOf(name));
  t.is(list.body.total, 0);
});

test('a ZIP body over 50 MB is 413 PAYLOAD_TOO_LARGE', async (t) => {
  const name = uniqueName('zipbig');
  await createFunction(t, t.context.admin, name);
  const response = await t.context.admin.request('POST', versionsOf(name), {
    raw: Buffer.alloc(50 * 1024 * 1024 + 1),
    headers: { 'content-type': 'application/zip' },
  });
  assertError(t, response, 413, 'PAYLOAD_TOO_LARGE');
  t.is((await t.context.admin.request<VersionList>('GET', versionsOf(name))).body.total, 0);
});

test('the query of a ZIP body is validated, and is refused with a JSON body', async (t) => {
  const name = uniqueName('zipquery');
  await createFunction(t, t.context.admin, name);
  const badName = await t.context.admin.request('POST', `${versionsOf(name)}?environment[1BAD]=x`, zipBody(HELLO_NODE));
  assertError(t, badName, 400, 'VALIDATION_ERROR', ['environment.1BAD']);
  const long = await t.context.admin.request(
    'POST',
    `${versionsOf(name)}?description=${'x'.repeat(300)}`,
    zipBody(HELLO_NODE),
  );
  assertError(t, long, 400, 'VALIDATION_ERROR', ['description']);
  const twice = await t.context.admin.request(
    'POST',
    `${versionsOf(name)}?environment[A]=1&environment[A]=2`,
    zipBody(HELLO_NODE),
  );
  assertError(t, twice, 400, 'VALIDATION_ERROR', ['environment.A']);
  const json = await t.context.admin.request('POST', `${versionsOf(name)}?description=x&environment[A]=1`, {
    body: { code: HELLO_NODE },
  });
  assertError(t, json, 400, 'VALIDATION_ERROR', ['description', 'environment']);
  t.is((await t.context.admin.request<VersionList>('GET', versionsOf(name))).body.total, 0);
});

test('a ZIP body is refused like a JSON one for a missing function or a Viewer; other media types are 415', async (t) => {
  assertError(
    t,
    await t.context.admin.request('POST', versionsOf(uniqueName('zipmissing')), zipBody(HELLO_NODE)),
    404,
    'NOT_FOUND',
  );
  const name = uniqueName('zipviewer');
  await createFunction(t, t.context.admin, name);
  const viewer = await t.context.as('Viewer');
  assertError(t, await viewer.request('POST', versionsOf(name), zipBody(HELLO_NODE)), 403, 'FORBIDDEN');
  const octets = await t.context.admin.request('POST', versionsOf(name), {
    raw: Buffer.from(HELLO_NODE, 'base64'),
    headers: { 'content-type': 'application/octet-stream' },
  });
  const error = assertError(t, octets, 415, 'UNSUPPORTED_MEDIA_TYPE');
  t.regex(error.message, /application\/zip/);
});
