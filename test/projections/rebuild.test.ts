import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { FUNCTION_EVENT_SCHEMA_VERSIONS, type FunctionEvent, functionStreamId } from '../../domain/function/events.ts';
import type { Clock, Document, EventStore, NewEvent, ReadStore } from '../../domain/ports.ts';
import { USER_EVENT_SCHEMA_VERSIONS, type UserEvent, userStreamId } from '../../domain/user/events.ts';
import { createSqliteEventStore } from '../../infra/eventStore/sqlite/index.ts';
import { createSqliteReadStore } from '../../infra/readStore/sqlite/index.ts';
import { COLLECTIONS } from '../../projections/documents.ts';
import { createProjector } from '../../projections/projector.ts';
import { type Projection, READ_MODELS } from '../../projections/readModels.ts';
import { type Client, createClient, type TestPlatform, startTestPlatform, zipBase64 } from '../support/platform.ts';

type Snapshot = Record<string, Document[]>;

const snapshot = async (readStore: ReadStore): Promise<Snapshot> => {
  const documents: Snapshot = {};
  for (const collection of Object.values(COLLECTIONS)) {
    documents[collection] = (await readStore.find(collection, { limit: 100_000 })).items;
  }
  return documents;
};

const DAY_MS = 86_400_000;

/** A clock the test moves forward, so that a deleted function's retention can run out. */
const movableClock = () => {
  let now = Date.now();
  const clock: Clock & { advance(ms: number): void } = {
    now: () => new Date(now),
    advance: (ms) => {
      now += ms;
    },
  };
  return clock;
};

const NODE_CODE = (label: string) =>
  zipBase64({ 'index.js': `exports.handler = async () => ({ statusCode: 200, body: ${JSON.stringify(label)} });\n` });
const PYTHON_CODE = zipBase64({ 'handler.py': 'def main(event, context):\n    return {"statusCode": 200}\n' });

const call = async (t: ExecutionContext, client: Client, method: string, path: string, body?: unknown) => {
  const reply = await client.request(method, path, body === undefined ? {} : { body });
  t.true(reply.status >= 200 && reply.status < 300, `${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
};

/**
 * A platform whose log holds every kind of change: functions created, configured, deleted and purged
 * (then created again under the same name), versions published and deleted, aliases plain, weighted,
 * re-routed and deleted, users registered, promoted, given a new password and disabled.
 */
const platformWithHistory = async (t: ExecutionContext): Promise<TestPlatform> => {
  const clock = movableClock();
  const first = await startTestPlatform({}, { clock });
  let firstStopped = false;
  t.teardown(() => (firstStopped ? undefined : first.stop()));
  const { admin } = first;
  const f = (path: string) => `/api/v1/functions${path}`;

  await call(t, admin, 'POST', '/api/v1/users', {
    username: 'dev@example.com',
    password: 'Passw0rd!',
    role: 'Developer',
  });
  await call(t, admin, 'POST', '/api/v1/users', {
    username: 'watcher@example.com',
    password: 'Passw0rd!',
    role: 'Viewer',
  });
  await call(t, admin, 'POST', '/api/v1/users', {
    username: 'leaver@example.com',
    password: 'Passw0rd!',
    role: 'Developer',
  });
  const developer = createClient(first.platform.url, await first.anonymous.login('dev@example.com', 'Passw0rd!'));

  await call(t, developer, 'POST', f(''), {
    name: 'orders',
    runtime: 'Node24',
    handler: 'index.handler',
    description: 'Takes orders',
    environment: { TABLE: 'orders' },
    tags: { team: 'shop', 'cost-center': '42' },
  });
  await call(t, admin, 'POST', f(''), {
    name: 'billing',
    runtime: 'Python311',
    handler: 'handler.main',
    memorySize: 256,
  });
  await call(t, admin, 'POST', f(''), { name: 'retired', runtime: 'Node24', handler: 'index.handler' });
  await call(t, admin, 'POST', f(''), { name: 'recycled', runtime: 'Node24', handler: 'index.handler' });

  await call(t, developer, 'POST', f('/orders/versions'), { code: NODE_CODE('one'), description: 'first' });
  await call(t, developer, 'POST', f('/orders/versions'), { code: NODE_CODE('two'), environment: { EXTRA: 'yes' } });
  await call(t, developer, 'POST', f('/orders/versions'), { code: NODE_CODE('three') });
  await call(t, admin, 'POST', f('/billing/versions'), { code: PYTHON_CODE });
  await call(t, admin, 'POST', f('/retired/versions'), { code: NODE_CODE('retired') });
  await call(t, admin, 'POST', f('/recycled/versions'), { code: NODE_CODE('recycled') });

  await call(t, admin, 'POST', f('/orders/aliases'), { aliasName: 'live', version: 1, description: 'production' });
  await call(t, admin, 'POST', f('/orders/aliases'), { aliasName: 'beta', routingConfig: { 1: 30, 3: 70 } });
  await call(t, admin, 'POST', f('/orders/aliases'), { aliasName: 'old', version: 2 });
  await call(t, admin, 'PUT', f('/orders/aliases/live'), { routingConfig: { 1: 90, 3: 10 } });
  await call(t, admin, 'DELETE', f('/orders/aliases/old'));
  await call(t, admin, 'DELETE', f('/orders/versions/2'));
  await call(t, admin, 'POST', f('/retired/aliases'), { aliasName: 'live', version: 1 });
  await call(t, admin, 'POST', f('/recycled/aliases'), { aliasName: 'live', version: 1 });

  await call(t, developer, 'PUT', f('/orders'), {
    memorySize: 512,
    timeout: 30,
    publishedVersion: 'v3',
    tags: { team: 'checkout' },
  });
  await call(t, admin, 'PUT', f('/billing'), { publishedVersion: 1, description: 'Sends invoices' });
  await call(t, admin, 'PUT', f('/billing'), { publishedVersion: null, environment: { CURRENCY: 'EUR' } });

  await call(t, admin, 'PUT', '/api/v1/users/dev@example.com', { role: 'Operator' });
  await call(t, admin, 'PUT', '/api/v1/users/watcher@example.com', { password: 'N3wPassword!' });
  await call(t, admin, 'DELETE', '/api/v1/users/leaver@example.com');

  // 'recycled' outlives its retention and is purged by the next start; 'retired' stays reserved.
  await call(t, admin, 'DELETE', f('/recycled'));
  clock.advance(8 * DAY_MS);
  await call(t, admin, 'DELETE', f('/retired'));
  await first.stop({ keepData: true });
  firstStopped = true;
  clock.advance(DAY_MS);
  const second = await startTestPlatform({}, { clock }, first.dataDir);
  t.teardown(() => second.stop());
  const deadline = Date.now() + 30_000;
  while ((await second.platform.readStore.get(COLLECTIONS.functions, 'recycled')) !== null) {
    if (Date.now() > deadline) throw new Error("the purger did not purge 'recycled'");
    await sleep(10);
  }
  await call(t, second.admin, 'POST', f(''), { name: 'recycled', runtime: 'Node24', handler: 'index.handler' });
  const republished = await call(t, second.admin, 'POST', f('/recycled/versions'), {
    code: NODE_CODE('recycled again'),
  });
  t.is((republished as { version: number }).version, 2, 'a purged name does not reuse version numbers');
  return second;
};

const assertVariedHistory = (t: ExecutionContext, documents: Snapshot) => {
  const all = (collection: string) => documents[collection] ?? [];
  t.like(
    all(COLLECTIONS.functions).find((fn) => fn.name === 'retired'),
    { status: 'Deleted' },
  );
  t.is(all(COLLECTIONS.versions).filter((version) => version.functionName === 'orders').length, 2);
  t.deepEqual(
    all(COLLECTIONS.versions)
      .filter((version) => version.functionName === 'recycled')
      .map((version) => version.version),
    [2],
  );
  t.deepEqual(
    all(COLLECTIONS.aliases)
      .map((alias) => `${alias.functionName}:${alias.aliasName}`)
      .sort(),
    ['orders:beta', 'orders:live', 'retired:live'],
  );
  t.like(
    all(COLLECTIONS.users).find((user) => user.username === 'leaver@example.com'),
    { status: 'Disabled' },
  );
};

test('rebuilding the read models from the log gives back every document exactly', async (t) => {
  const { platform, admin } = await platformWithHistory(t);
  const before = await snapshot(platform.readStore);
  assertVariedHistory(t, before);

  await platform.projector.rebuild();

  t.deepEqual(await snapshot(platform.readStore), before);
  t.is(platform.projector.position(), await platform.eventStore.headPosition());
  // The rebuilt projector follows the log again: a new command is visible at once.
  await call(t, admin, 'POST', '/api/v1/functions', {
    name: 'after-rebuild',
    runtime: 'Node24',
    handler: 'index.handler',
  });
  await call(t, admin, 'GET', '/api/v1/functions/after-rebuild');
});

test('applying the whole log again over the read models changes nothing', async (t) => {
  const { platform } = await platformWithHistory(t);
  const before = await snapshot(platform.readStore);
  const events = await platform.eventStore.readAll();

  for (const event of events) {
    for (const projection of READ_MODELS) {
      if (projection.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix))) {
        await projection.apply(event, platform.readStore);
      }
    }
  }

  t.deepEqual(await snapshot(platform.readStore), before);
});

test('applying every event twice in a row builds the same read models as applying it once', async (t) => {
  const { platform } = await platformWithHistory(t);
  const expected = await snapshot(platform.readStore);
  const fresh = createSqliteReadStore({ path: ':memory:' });
  t.teardown(() => fresh.close());

  for (const event of await platform.eventStore.readAll()) {
    for (const projection of READ_MODELS) {
      if (projection.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix))) {
        await projection.apply(event, fresh);
        await projection.apply(event, fresh);
      }
    }
  }

  t.deepEqual(await snapshot(fresh), expected);
});

// The projector over its own stores, fed by events appended straight to the log.

const metadata = {
  userId: 'system',
  occurredAt: '2025-01-01T00:00:00.000Z',
  traceId: 't',
  correlationId: 'c',
  causationId: 'c',
};

const functionEvent = (event: FunctionEvent): NewEvent => ({
  type: event.type,
  schemaVersion: FUNCTION_EVENT_SCHEMA_VERSIONS[event.type],
  data: event.data,
  metadata,
});

const userEvent = (event: UserEvent): NewEvent => ({
  type: event.type,
  schemaVersion: USER_EVENT_SCHEMA_VERSIONS[event.type],
  data: event.data,
  metadata,
});

const created = (name: string): NewEvent =>
  functionEvent({
    type: 'FunctionCreated',
    data: {
      name,
      ownerId: 'user-1',
      description: '',
      runtime: 'Node24',
      handler: 'index.handler',
      memorySize: 128,
      timeout: 3,
      environment: {},
      tags: {},
      concurrencyLimit: null,
      asyncRetries: 2,
      maxEventAgeSeconds: 21_600,
    },
  });

const published = (name: string, version: number): NewEvent =>
  functionEvent({
    type: 'FunctionVersionPublished',
    data: {
      name,
      version,
      description: '',
      codeSha256: 'a'.repeat(64),
      codeSize: 10,
      codeLocation: 'file:///code.zip',
      runtime: 'Node24',
      handler: 'index.handler',
      memorySize: 128,
      timeout: 3,
      environment: {},
    },
  });

interface Stores {
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  /** Positions handed to a projection's apply, and checkpoints stored, since the last `reset`. */
  readonly applied: bigint[];
  readonly checkpoints: bigint[];
  reset(): void;
  /** The read models' file closed and opened again, as after a restart of the process. */
  reopenReadStore(): Promise<void>;
  projections(version?: number): Projection[];
}

const stores = async (t: ExecutionContext): Promise<Stores> => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-projector-'));
  const eventStore = createSqliteEventStore({ path: join(directory, 'events.db'), pollIntervalMs: 20 });
  const readModelsPath = join(directory, 'read-models.db');
  let inner = createSqliteReadStore({ path: readModelsPath });
  const applied: bigint[] = [];
  const checkpoints: bigint[] = [];
  t.teardown(async () => {
    await eventStore.close();
    await inner.close();
    await rm(directory, { recursive: true, force: true });
  });
  // Every call goes to the current file; checkpoint writes are recorded on the way.
  const readStore = new Proxy({} as ReadStore, {
    get: (_target, key) => {
      if (key === 'setCheckpoint') {
        return async (projection: string, position: bigint) => {
          checkpoints.push(position);
          await inner.setCheckpoint(projection, position);
        };
      }
      const value = Reflect.get(inner, key);
      return typeof value === 'function' ? value.bind(inner) : value;
    },
  });
  return {
    eventStore,
    readStore,
    applied,
    checkpoints,
    reset() {
      applied.length = 0;
      checkpoints.length = 0;
    },
    async reopenReadStore() {
      await inner.close();
      inner = createSqliteReadStore({ path: readModelsPath });
    },
    projections: (version = 1) =>
      READ_MODELS.map((projection) => ({
        ...projection,
        version,
        async apply(event, store) {
          applied.push(event.position);
          await projection.apply(event, store);
        },
      })),
  };
};

test('a restarted projector resumes from its checkpoint without applying anything twice', async (t) => {
  const { eventStore, readStore, applied, checkpoints, reset, reopenReadStore, projections } = await stores(t);
  await eventStore.append(functionStreamId('alpha'), [created('alpha'), published('alpha', 1)], 'noStream');
  await eventStore.append(
    userStreamId('ann@example.com'),
    [
      userEvent({
        type: 'UserRegistered',
        data: { userId: 'user-1', username: 'ann@example.com', role: 'Admin', passwordHash: 'x' },
      }),
    ],
    'noStream',
  );
  const head = await eventStore.headPosition();

  const first = createProjector({ eventStore, readStore, projections: projections() });
  await first.start();
  t.is(first.position(), head);
  t.is(checkpoints.at(-1), head);
  t.is(applied.length, 3);
  await first.stop();
  const documents = await snapshot(readStore);

  reset();
  await reopenReadStore();
  const second = createProjector({ eventStore, readStore, projections: projections() });
  await second.start();
  t.deepEqual(applied, [], 'nothing is applied again after a restart');
  t.is(second.position(), head);
  t.deepEqual(await snapshot(readStore), documents);

  // Events appended while no projector ran are the only ones applied after the next start.
  await second.stop();
  const appended = await eventStore.append(functionStreamId('alpha'), [published('alpha', 2)], 1);
  reset();
  const third = createProjector({ eventStore, readStore, projections: projections() });
  await third.start();
  t.deepEqual(applied, [appended.position]);
  t.deepEqual(checkpoints, [appended.position]);
  t.like(await readStore.get(COLLECTIONS.functions, 'alpha'), { versionCount: 2, latestVersion: 2 });

  // Live events follow; waitFor resolves once they are applied.
  const live = await eventStore.append(functionStreamId('beta'), [created('beta')], 'noStream');
  await third.waitFor(live.position);
  t.is(third.position(), live.position);
  t.like(await readStore.get(COLLECTIONS.functions, 'beta'), { name: 'beta' });
  await third.stop();
});

test('a changed projection version rebuilds the read models from the whole log', async (t) => {
  const { eventStore, readStore, applied, reset, projections } = await stores(t);
  await eventStore.append(functionStreamId('alpha'), [created('alpha'), published('alpha', 1)], 'noStream');
  const first = createProjector({ eventStore, readStore, projections: projections(1) });
  await first.start();
  await first.stop();
  const documents = await snapshot(readStore);
  // A stray document that no event explains: a rebuild starts from empty collections.
  await readStore.put(COLLECTIONS.functions, 'stray', { name: 'stray' });

  reset();
  const upgraded = createProjector({ eventStore, readStore, projections: projections(2) });
  await upgraded.start();
  t.is(applied.length, 2);
  t.deepEqual(await snapshot(readStore), documents);
  await upgraded.stop();
});
