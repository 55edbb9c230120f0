import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import type { Document } from '../../domain/ports.ts';
import { createSqliteReadStore } from '../../infra/readStore/sqlite/index.ts';
import { COLLECTIONS } from '../../projections/documents.ts';
import { ADMIN, type Client, createClient, zipBase64 } from '../support/platform.ts';
import { kill, startServer, temporaryDirectory } from '../support/server.ts';

const codeFor = (label: string) =>
  zipBase64({ 'index.js': `exports.handler = async () => ({ statusCode: 200, body: ${JSON.stringify(label)} });\n` });

const sha256Of = (base64: string) => createHash('sha256').update(Buffer.from(base64, 'base64')).digest('hex');

const expectStatus = async <T = Record<string, unknown>>(
  t: ExecutionContext,
  reply: Promise<{ status: number; body: unknown }>,
  status = 200,
): Promise<T> => {
  const { status: actual, body } = await reply;
  t.is(actual, status, JSON.stringify(body));
  return body as T;
};

interface Acknowledged {
  readonly functions: Set<string>;
  /** `name:version` → codeSha256 */
  readonly versions: Map<string, string>;
  /** `name:alias` → the alias as created */
  readonly aliases: Map<string, { version: number; routingConfig: Record<string, number> }>;
  /** name → the configuration as updated */
  readonly configurations: Map<
    string,
    { description: string; memorySize: number; environment: Record<string, string> }
  >;
}

test('every change acknowledged before a kill -9 is there after the restart, and nothing is reused', async (t) => {
  const dataDir = await temporaryDirectory(t);
  const first = await startServer(t, dataDir);
  const anonymous = createClient(first.url);
  const adminToken = await anonymous.login(ADMIN.username, ADMIN.password);
  const admin = createClient(first.url, adminToken);
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/users', {
      body: { username: 'dev@example.com', password: 'Passw0rd!', role: 'Developer' },
    }),
    201,
  );
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/functions', {
      body: { name: 'shared', runtime: 'Node24', handler: 'index.handler' },
    }),
    201,
  );

  const acknowledged: Acknowledged = {
    functions: new Set(['shared']),
    versions: new Map(),
    aliases: new Map(),
    configurations: new Map(),
  };
  const WORKERS = 8;
  const KILL_AFTER = 150;
  let acknowledgements = 0;
  let inFlight = 0;
  let inFlightAtKill = 0;
  let killed = false;
  const refused = new Map<number, number>();

  // Sends one command unless the server was killed; records it only when the whole 2xx reply arrived.
  // A Uint8Array body goes as it is, as a ZIP.
  const send = async (
    method: string,
    path: string,
    body: unknown,
    onAcknowledged: (reply: Record<string, unknown>) => void,
  ) => {
    if (killed) return false;
    inFlight += 1;
    try {
      const reply = await admin.request(
        method,
        path,
        body instanceof Uint8Array ? { raw: body, headers: { 'content-type': 'application/zip' } } : { body },
      );
      if (reply.status < 200 || reply.status > 299) {
        refused.set(reply.status, (refused.get(reply.status) ?? 0) + 1);
        return true;
      }
      onAcknowledged(reply.body);
      acknowledgements += 1;
      if (acknowledgements === KILL_AFTER) {
        killed = true;
        inFlightAtKill = inFlight - 1;
        void kill(first);
      }
      return true;
    } catch {
      return false; // the connection died with the server: the outcome is unknown
    } finally {
      inFlight -= 1;
    }
  };

  /** Publishes as base64 in JSON, or as a ZIP body. */
  const publish = (name: string, label: string, onVersion: (version: number) => void = () => {}, asZip = false) => {
    const code = codeFor(label);
    const body = asZip ? Buffer.from(code, 'base64') : { code };
    return send('POST', `/api/v1/functions/${name}/versions`, body, (reply) => {
      t.is(reply.codeSha256, sha256Of(code));
      acknowledged.versions.set(`${name}:${reply.version as number}`, sha256Of(code));
      onVersion(reply.version as number);
    });
  };

  const worker = async (index: number) => {
    for (let round = 0; !killed; round += 1) {
      const name = `crash-${index}-${round}`;
      let version1 = 0;
      let version2 = 0;
      const steps: Array<() => Promise<boolean>> = [
        () =>
          send('POST', '/api/v1/functions', { name, runtime: 'Node24', handler: 'index.handler' }, () => {
            acknowledged.functions.add(name);
          }),
        () =>
          publish(name, `${name}-1`, (version) => {
            version1 = version;
          }),
        () =>
          send('POST', `/api/v1/functions/${name}/aliases`, { aliasName: 'live', version: version1 }, () => {
            acknowledged.aliases.set(`${name}:live`, { version: version1, routingConfig: { [version1]: 100 } });
          }),
        () => {
          const configuration = {
            description: `configured by worker ${index}`,
            memorySize: 256,
            environment: { ROUND: String(round) },
          };
          return send('PUT', `/api/v1/functions/${name}`, configuration, () => {
            acknowledged.configurations.set(name, configuration);
          });
        },
        () =>
          publish(
            name,
            `${name}-2`,
            (version) => {
              version2 = version;
            },
            true,
          ),
        () => {
          const routingConfig = { [version1]: 90, [version2]: 10 };
          return send('POST', `/api/v1/functions/${name}/aliases`, { aliasName: 'canary', routingConfig }, () => {
            acknowledged.aliases.set(`${name}:canary`, { version: version1, routingConfig });
          });
        },
        // Every worker publishes to one function too: concurrent commands on one stream.
        () => publish('shared', `shared-${index}-${round}`, () => {}, round % 2 === 1),
      ];
      for (const step of steps) {
        if (!(await step())) return;
      }
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, index) => worker(index)));
  await first.exited;
  t.true(killed, 'the stream of commands ended before the kill');
  t.true(inFlightAtKill > 0, 'no request was in flight when the server was killed');

  const second = await startServer(t, dataDir);
  const after = createClient(second.url, adminToken);

  // The token from before the crash still works: the signing secret was kept, readable by its owner only.
  await expectStatus(t, after.request('GET', '/api/v1/functions?limit=1'));
  t.is((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777, 0o600);
  t.truthy(await createClient(second.url).login(ADMIN.username, ADMIN.password));
  t.truthy(await createClient(second.url).login('dev@example.com', 'Passw0rd!'));

  for (const name of acknowledged.functions) {
    await expectStatus(t, after.request('GET', `/api/v1/functions/${name}`));
  }
  for (const [name, configuration] of acknowledged.configurations) {
    const fn = await expectStatus(t, after.request('GET', `/api/v1/functions/${name}`));
    t.like(fn, configuration);
  }
  for (const [key, codeSha256] of acknowledged.versions) {
    const [name, version] = key.split(':');
    const stored = await expectStatus<{ codeSha256: string; codeLocation: string }>(
      t,
      after.request('GET', `/api/v1/functions/${name}/versions/${version}`),
    );
    t.is(stored.codeSha256, codeSha256, key);
    const blob = await readFile(fileURLToPath(stored.codeLocation));
    t.is(createHash('sha256').update(blob).digest('hex'), codeSha256, `the ZIP of ${key}`);
  }
  for (const [key, alias] of acknowledged.aliases) {
    const [name, aliasName] = key.split(':');
    t.like(await expectStatus(t, after.request('GET', `/api/v1/functions/${name}/aliases/${aliasName}`)), alias, key);
  }

  // Version numbers go on from the highest one in the log, acknowledged or not.
  const versioned = new Set([...acknowledged.versions.keys()].map((key) => key.split(':')[0] as string));
  for (const name of versioned) {
    const listed = await expectStatus<{ versions: { version: number }[] }>(
      t,
      after.request('GET', `/api/v1/functions/${name}/versions?limit=100`),
    );
    const highest = Math.max(...listed.versions.map((entry) => entry.version));
    const acknowledgedHighest = Math.max(
      ...[...acknowledged.versions.keys()]
        .filter((key) => key.startsWith(`${name}:`))
        .map((key) => Number(key.split(':')[1])),
    );
    t.true(highest >= acknowledgedHighest);
    const code = codeFor(`${name}-after-restart`);
    const published = await expectStatus<{ version: number }>(
      t,
      after.request('POST', `/api/v1/functions/${name}/versions`, { body: { code } }),
      201,
    );
    t.is(published.version, highest + 1, name);
  }
  t.log(
    `${acknowledgements} acknowledged (${acknowledged.functions.size} functions, ${acknowledged.versions.size} versions, ` +
      `${acknowledged.aliases.size} aliases, ${acknowledged.configurations.size} configurations); ${inFlightAtKill} in flight at the kill; refused: ${JSON.stringify(Object.fromEntries(refused))}`,
  );
});

const snapshotReadModels = async (dataDir: string): Promise<Record<string, Document[]>> => {
  const store = createSqliteReadStore({ path: join(dataDir, 'read-models.db') });
  try {
    const snapshot: Record<string, Document[]> = {};
    for (const collection of Object.values(COLLECTIONS)) {
      snapshot[collection] = (await store.find(collection, { limit: 100_000 })).items;
    }
    return snapshot;
  } finally {
    await store.close();
  }
};

const viewsOf = async (t: ExecutionContext, client: Client, names: readonly string[]) => {
  const views: Record<string, unknown> = {
    functions: await expectStatus(t, client.request('GET', '/api/v1/functions?limit=100')),
    users: await expectStatus(t, client.request('GET', '/api/v1/users?limit=100')),
  };
  for (const name of names) {
    views[name] = await expectStatus(t, client.request('GET', `/api/v1/functions/${name}`));
    views[`${name}/versions`] = await expectStatus(
      t,
      client.request('GET', `/api/v1/functions/${name}/versions?limit=100`),
    );
    views[`${name}/aliases`] = await expectStatus(
      t,
      client.request('GET', `/api/v1/functions/${name}/aliases?limit=100`),
    );
  }
  return views;
};

test('read models deleted from disk are rebuilt from the log on restart, document for document', async (t) => {
  const dataDir = await temporaryDirectory(t);
  const first = await startServer(t, dataDir);
  const adminToken = await createClient(first.url).login(ADMIN.username, ADMIN.password);
  const admin = createClient(first.url, adminToken);
  const create = (name: string) =>
    expectStatus(
      t,
      admin.request('POST', '/api/v1/functions', {
        body: { name, runtime: 'Node24', handler: 'index.handler', tags: { team: name } },
      }),
      201,
    );
  const publish = (name: string, label: string) =>
    expectStatus(
      t,
      admin.request('POST', `/api/v1/functions/${name}/versions`, { body: { code: codeFor(label) } }),
      201,
    );

  await create('orders');
  await create('billing');
  await create('retired');
  for (const label of ['a', 'b', 'c']) await publish('orders', label);
  await publish('billing', 'd');
  await publish('retired', 'e');
  await expectStatus(t, admin.request('DELETE', '/api/v1/functions/orders/versions/2'), 204);
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/functions/orders/aliases', {
      body: { aliasName: 'live', routingConfig: { 1: 70, 3: 30 } },
    }),
    201,
  );
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/functions/orders/aliases', { body: { aliasName: 'old', version: 1 } }),
    201,
  );
  await expectStatus(t, admin.request('DELETE', '/api/v1/functions/orders/aliases/old'), 204);
  await expectStatus(
    t,
    admin.request('PUT', '/api/v1/functions/orders', {
      body: { memorySize: 512, publishedVersion: 3, environment: { MODE: 'fast' } },
    }),
  );
  await expectStatus(t, admin.request('DELETE', '/api/v1/functions/retired'), 204);
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/users', {
      body: { username: 'ops@example.com', password: 'Passw0rd!', role: 'Viewer' },
    }),
    201,
  );
  await expectStatus(t, admin.request('PUT', '/api/v1/users/ops@example.com', { body: { role: 'Operator' } }));
  await expectStatus(
    t,
    admin.request('POST', '/api/v1/users', {
      body: { username: 'gone@example.com', password: 'Passw0rd!', role: 'Developer' },
    }),
    201,
  );
  await expectStatus(t, admin.request('DELETE', '/api/v1/users/gone@example.com'), 204);

  const names = ['orders', 'billing'];
  const viewsBefore = await viewsOf(t, admin, names);
  await kill(first);
  const documentsBefore = await snapshotReadModels(dataDir);
  t.true((documentsBefore.functions?.length ?? 0) === 3 && (documentsBefore.users?.length ?? 0) === 3);
  for (const suffix of ['', '-wal', '-shm']) await rm(join(dataDir, `read-models.db${suffix}`), { force: true });

  const second = await startServer(t, dataDir);
  const after = createClient(second.url, adminToken);
  t.deepEqual(await viewsOf(t, after, names), viewsBefore);
  await expectStatus(t, after.request('GET', '/api/v1/functions/retired'), 404);
  t.truthy(await createClient(second.url).login('ops@example.com', 'Passw0rd!'));

  second.child.kill('SIGTERM');
  await second.exited;
  t.deepEqual(await snapshotReadModels(dataDir), documentsBefore);
});

test('a signing secret left empty by a crash during the first start is replaced, and logins work', async (t) => {
  const dataDir = await temporaryDirectory(t);
  await writeFile(join(dataDir, 'jwt-secret'), '', { mode: 0o600 });

  const first = await startServer(t, dataDir);
  const token = await createClient(first.url).login(ADMIN.username, ADMIN.password);
  await expectStatus(t, createClient(first.url, token).request('GET', '/api/v1/functions'));
  t.not((await readFile(join(dataDir, 'jwt-secret'), 'utf8')).trim(), '');
  t.is((await stat(join(dataDir, 'jwt-secret'))).mode & 0o777, 0o600);

  await kill(first);
  const second = await startServer(t, dataDir);
  await expectStatus(t, createClient(second.url, token).request('GET', '/api/v1/functions'));
});
