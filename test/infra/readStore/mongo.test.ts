import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { MongoClient } from 'mongodb';
import {
  FUNCTION_EVENT_SCHEMA_VERSIONS,
  type FunctionEvent,
  functionStreamId,
} from '../../../domain/function/events.ts';
import { type Document, isStoreError, type NewEvent, type ReadStore } from '../../../domain/ports.ts';
import { USER_EVENT_SCHEMA_VERSIONS, type UserEvent, userStreamId } from '../../../domain/user/events.ts';
import { createSqliteEventStore } from '../../../infra/eventStore/sqlite/index.ts';
import { createMongoReadStore, type MongoReadStoreOptions } from '../../../infra/readStore/mongo/index.ts';
import { createSqliteReadStore } from '../../../infra/readStore/sqlite/index.ts';
import { isServiceUnreachable } from '../../../infra/serviceErrors.ts';
import { COLLECTIONS, tagIndexKey } from '../../../projections/documents.ts';
import { createProjector } from '../../../projections/projector.ts';
import { READ_MODELS } from '../../../projections/readModels.ts';
import { readStoreContract } from '../../contracts/readStore.ts';

// Needs a MongoDB-wire server (scripts/services.sh starts FerretDB): runs wherever STRATA_MONGODB_URL is set.
const url = process.env.STRATA_MONGODB_URL;

test('mongo: an unreachable server fails start-up with one line naming MongoDB and the address, not the password', async (t) => {
  const error = await t.throwsAsync(
    createMongoReadStore({ url: 'mongodb://strata:s3cret@127.0.0.1:1/strata', serverSelectionTimeoutMs: 300 }),
  );
  t.true(isServiceUnreachable(error), String(error));
  t.like(error, {
    service: 'MongoDB',
    address: 'mongodb://strata:***@127.0.0.1:1/strata',
    reason: 'connection refused',
  });
  t.is(
    error?.message,
    'cannot reach MongoDB at mongodb://strata:***@127.0.0.1:1/strata (connection refused); is it running? (STRATA_MONGODB_URL)',
  );
  t.notRegex(String(error?.stack), /s3cret/);
});

const freshDatabase = (): string => `strata_test_${randomBytes(6).toString('hex')}`;

if (url === undefined || url === '') {
  if (process.env.STRATA_SERVICES_REQUIRED === '1') {
    test('mongo: STRATA_MONGODB_URL is set (STRATA_SERVICES_REQUIRED=1)', (t) => {
      t.fail('STRATA_SERVICES_REQUIRED=1 but STRATA_MONGODB_URL is not set: run scripts/services.sh start');
    });
  } else {
    console.warn('NOTICE: MongoDB read store suite skipped: STRATA_MONGODB_URL is not set');
    test.skip('mongo: read store contract (set STRATA_MONGODB_URL, e.g. mongodb://127.0.0.1:27017/strata)', () => {});
  }
} else {
  const admin = new MongoClient(url);
  test.after.always(() => admin.close());

  /** A store on a database of its own, dropped when the test ends. */
  const openStore = async (
    t: ExecutionContext,
    options: Partial<MongoReadStoreOptions> = {},
  ): Promise<{ store: ReadStore; database: string }> => {
    const database = options.database ?? freshDatabase();
    const store = await createMongoReadStore({ url, database, ...options });
    t.teardown(async () => {
      await store.close();
      await admin.db(database).dropDatabase();
    });
    return { store, database };
  };

  readStoreContract(test, 'mongo', async () => {
    const database = freshDatabase();
    const store = await createMongoReadStore({ url, database });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await admin.db(database).dropDatabase();
      },
    };
  });

  test('mongo: keys with dots, a leading $, %, NUL or nothing at all round-trip and stay out of queries', async (t) => {
    const { store, database } = await openStore(t);
    const document = {
      id: 'fn-1',
      status: 'Active',
      tags: {
        'app.kubernetes.io/name': 'orders',
        $where: 'not an operator',
        a$b: 'inner dollar',
        '100%': 'percent',
        '%2E': 'looks escaped',
        'nul\u0000key': 'nul',
        '': 'empty',
        __proto__: 'a plain key',
        team: 'red',
      },
      environment: { PATH: '/bin', 'with.dot': { '$nested.too': [{ 'x.y': 1 }] } },
      routingConfig: { 1: 30, 3: 70 },
      matrix: [[1, [2, [3]]], [], [[]], [{ '%a': ['not a wrapper'] }], { '%a': 'plain' }],
    };
    // A literal "__proto__" key (as JSON.parse makes it), not the prototype.
    const withProtoKey = JSON.parse(JSON.stringify(document).replace('"__proto__":"a plain key"', '"__proto__":"p"'));
    await store.put('functions', 'fn-1', withProtoKey);
    t.deepEqual(await store.get('functions', 'fn-1'), withProtoKey);
    t.deepEqual((await store.find('functions', { where: { 'tags.team': 'red', status: 'Active' } })).items, [
      withProtoKey,
    ]);
    const raw = await admin
      .db(database)
      .collection('rm_functions')
      .findOne({ _id: 'fn-1' as never });
    t.like(raw?.doc?.tags, {
      'app%2Ekubernetes%2Eio/name': 'orders',
      '%24where': 'not an operator',
      a$b: 'inner dollar',
    });
  });

  test('mongo: documents are stored as JSON would keep them, like the SQLite store', async (t) => {
    const { store } = await openStore(t);
    const sqlite = createSqliteReadStore({ path: ':memory:' });
    t.teardown(() => sqlite.close());
    const document = {
      id: 'odd',
      missing: undefined,
      when: new Date('2026-01-02T03:04:05.678Z'),
      notANumber: Number.NaN,
      infinite: Number.POSITIVE_INFINITY,
      negativeZero: -0,
      large: 2 ** 40,
      fraction: 0.1 + 0.2,
      list: [undefined, 1, 'two'],
      nested: { deeper: { empty: {} } },
    } as unknown as Document;
    await store.put('odd', 'odd', document);
    await sqlite.put('odd', 'odd', document);
    t.deepEqual(await store.get('odd', 'odd'), await sqlite.get('odd', 'odd'));
  });

  test('mongo: ensureIndex is idempotent, indexes the fields with the id in both orders, and indexes outlive dropCollection', async (t) => {
    const { store, database } = await openStore(t, { collectionPrefix: 'x_' });
    await store.ensureIndex('functions', ['status', 'name']);
    await store.ensureIndex('functions', ['status', 'name']);
    await store.ensureIndex('functions', ['tags.cost-center']);
    await store.put('functions', 'fn-1', { id: 'fn-1' });
    await store.dropCollection('functions');
    const indexes = await admin.db(database).collection('x_functions').listIndexes().toArray();
    t.deepEqual(
      indexes.map((index) => index.key).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
      [
        { _id: 1 },
        { 'doc.status': 1, 'doc.name': 1, _id: -1 },
        { 'doc.status': 1, 'doc.name': 1, _id: 1 },
        { 'doc.tags.cost-center': 1, _id: -1 },
        { 'doc.tags.cost-center': 1, _id: 1 },
      ],
    );
  });

  test('mongo: dropAll and dropCollection leave stores with other prefixes alone', async (t) => {
    const database = freshDatabase();
    const { store: mine } = await openStore(t, { database, collectionPrefix: 'a_' });
    const other = await createMongoReadStore({ url, database, collectionPrefix: 'b_' });
    t.teardown(() => other.close());
    await mine.put('functions', 'fn-1', { id: 'fn-1' });
    await mine.setCheckpoint('read-models', 3n);
    await other.put('functions', 'fn-1', { id: 'fn-1', other: true });
    await other.setCheckpoint('read-models', 5n);
    await mine.dropCollection('functions');
    t.deepEqual(await other.get('functions', 'fn-1'), { id: 'fn-1', other: true });
    await mine.dropAll();
    t.is(await mine.getCheckpoint('read-models'), null);
    t.deepEqual(await other.get('functions', 'fn-1'), { id: 'fn-1', other: true });
    t.is(await other.getCheckpoint('read-models'), 5n);
  });

  test('mongo: concurrent puts of one new id end with one of the documents', async (t) => {
    const { store } = await openStore(t);
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.put('functions', 'fn-1', { id: 'fn-1', i })));
    const { items, total } = await store.find('functions');
    t.is(total, 1);
    t.is(items[0]?.id, 'fn-1');
  });

  test('mongo: a shared client stays open when the store closes', async (t) => {
    const database = freshDatabase();
    const client = new MongoClient(url);
    t.teardown(() => client.close());
    const store = await createMongoReadStore({ url, database, client });
    t.teardown(() => admin.db(database).dropDatabase());
    await store.put('functions', 'fn-1', { id: 'fn-1' });
    await store.close();
    await t.throwsAsync(store.get('functions', 'fn-1'), { message: /closed/ });
    t.is(await client.db(database).collection('rm_functions').countDocuments(), 1);
  });

  test('mongo: rejects collection names, prefixes and field paths it cannot map safely', async (t) => {
    const { store } = await openStore(t);
    await t.throwsAsync(store.find('functions.x'), { message: /Invalid collection name/ });
    await t.throwsAsync(store.put('a b', 'x', {}), { message: /Invalid collection name/ });
    await t.throwsAsync(store.find('functions', { sortBy: '$where' }), { message: /Invalid field path/ });
    await t.throwsAsync(store.find('functions', { where: { 'tags..team': 'x' } }), { message: /Invalid field path/ });
    await t.throwsAsync(store.ensureIndex('functions', ['tags.$x']), { message: /Invalid field path/ });
    await t.throwsAsync(store.find('functions', { limit: -1 }), { message: /Invalid limit/ });
    await t.throwsAsync(createMongoReadStore({ url, collectionPrefix: 'a.b' }), {
      message: /Invalid collection prefix/,
    });
  });

  // An outage after start: a TCP proxy in front of the server is shut and opened again.
  const target = /^mongodb:\/\/(?:[^@/]*@)?([^:/,]+):(\d+)/.exec(url);

  const listen = (server: Server, port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : port);
      });
    });

  const startProxy = async (host: string, targetPort: number, port = 0) => {
    const sockets = new Set<Socket>();
    const server = createServer((incoming) => {
      const outgoing = connect(targetPort, host);
      for (const socket of [incoming, outgoing]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          sockets.delete(socket);
          incoming.destroy();
          outgoing.destroy();
        });
      }
      incoming.pipe(outgoing).pipe(incoming);
    });
    const bound = await listen(server, port);
    return {
      port: bound,
      close: () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          server.close(() => resolve());
        }),
    };
  };

  (target === null ? test.skip : test)(
    'mongo: an outage fails operations with UNAVAILABLE and the store recovers by itself',
    async (t) => {
      const [, host = '127.0.0.1', port = '27017'] = target ?? [];
      let proxy = await startProxy(host, Number(port));
      t.teardown(() => proxy.close());
      const logged: string[] = [];
      const logger = {
        warn: (_details: Record<string, unknown>, message: string) => logged.push(`warn: ${message}`),
        info: (_details: Record<string, unknown>, message: string) => logged.push(`info: ${message}`),
      };
      const { store } = await openStore(t, {
        url: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true`,
        serverSelectionTimeoutMs: 1_000,
        logger,
      });
      await store.put('functions', 'fn-1', { id: 'fn-1' });

      await proxy.close();
      await t.throwsAsync(store.get('functions', 'fn-1'), { code: 'UNAVAILABLE' });
      await t.throwsAsync(store.put('functions', 'fn-2', { id: 'fn-2' }), { code: 'UNAVAILABLE' });

      proxy = await startProxy(host, Number(port), proxy.port);
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          t.deepEqual(await store.get('functions', 'fn-1'), { id: 'fn-1' });
          break;
        } catch (error) {
          if (!isStoreError(error, 'UNAVAILABLE') || Date.now() > deadline) throw error;
          await sleep(100);
        }
      }
      while (!logged.includes('info: MongoDB reachable again') && Date.now() < deadline) await sleep(50);
      t.deepEqual(logged, ['warn: MongoDB unreachable; retrying in the background', 'info: MongoDB reachable again']);
    },
  );

  // The platform's projections over one event log, into the Mongo store and into the SQLite store.

  const metadata = {
    userId: 'system',
    occurredAt: '2026-01-01T00:00:00.000Z',
    traceId: 't',
    correlationId: 'c',
    causationId: 'c',
  };
  let minute = 0;
  const at = () => ({ ...metadata, occurredAt: new Date(Date.UTC(2026, 0, 1, 0, minute++)).toISOString() });
  const fn = (event: FunctionEvent): NewEvent => ({
    type: event.type,
    schemaVersion: FUNCTION_EVENT_SCHEMA_VERSIONS[event.type],
    data: event.data,
    metadata: at(),
  });
  const user = (event: UserEvent): NewEvent => ({
    type: event.type,
    schemaVersion: USER_EVENT_SCHEMA_VERSIONS[event.type],
    data: event.data,
    metadata: at(),
  });
  const configuration = {
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
  };
  const created = (name: string, overrides: Partial<typeof configuration> = {}): NewEvent =>
    fn({ type: 'FunctionCreated', data: { ...configuration, ...overrides, name, ownerId: 'user-1' } });
  const published = (name: string, version: number, environment: Record<string, string> = {}): NewEvent =>
    fn({
      type: 'FunctionVersionPublished',
      data: {
        name,
        version,
        description: `v${version} of ${name}`,
        codeSha256: version.toString(16).padStart(64, '0'),
        codeSize: 100 + version,
        codeLocation: `gridfs://code/${version.toString(16).padStart(64, '0')}`,
        runtime: 'Node24',
        handler: 'index.handler',
        memorySize: 128,
        timeout: 3,
        environment,
      },
    });

  const history: [string, NewEvent[]][] = [
    [
      userStreamId('ann@example.com'),
      [
        user({
          type: 'UserRegistered',
          data: { userId: 'user-1', username: 'ann@example.com', role: 'Admin', passwordHash: 'h1' },
        }),
      ],
    ],
    [
      userStreamId('Bob@example.com'),
      [
        user({
          type: 'UserRegistered',
          data: { userId: 'user-2', username: 'Bob@example.com', role: 'Developer', passwordHash: 'h2' },
        }),
        user({ type: 'UserRoleChanged', data: { username: 'Bob@example.com', role: 'Operator' } }),
        user({ type: 'UserPasswordChanged', data: { username: 'Bob@example.com', passwordHash: 'h3' } }),
        user({ type: 'UserDisabled', data: { username: 'Bob@example.com' } }),
      ],
    ],
    [
      functionStreamId('orders'),
      [
        created('orders', {
          description: 'Takes orders — größe 🚀',
          environment: { TABLE: 'orders', EMPTY: '' },
          tags: { team: 'shop', 'cost-center': '42', 'app.kubernetes.io/name': 'orders', $odd: 'x', '100%': 'y' },
        }),
        published('orders', 1, { TABLE: 'orders' }),
        published('orders', 2),
        published('orders', 3, { EXTRA: 'yes' }),
        fn({
          type: 'FunctionAliasCreated',
          data: { name: 'orders', aliasName: 'live', version: 1, routingConfig: {}, description: 'production' },
        }),
        fn({
          type: 'FunctionAliasCreated',
          data: { name: 'orders', aliasName: 'beta', version: 1, routingConfig: { 1: 30, 3: 70 }, description: '' },
        }),
        fn({
          type: 'FunctionAliasRoutingChanged',
          data: { name: 'orders', aliasName: 'live', version: 1, routingConfig: { 1: 90, 3: 10 }, description: 'p' },
        }),
        fn({
          type: 'FunctionAliasCreated',
          data: { name: 'orders', aliasName: 'old', version: 2, routingConfig: {}, description: '' },
        }),
        fn({ type: 'FunctionAliasDeleted', data: { name: 'orders', aliasName: 'old' } }),
        fn({ type: 'FunctionVersionDeleted', data: { name: 'orders', version: 2 } }),
        fn({
          type: 'FunctionConfigurationUpdated',
          data: {
            name: 'orders',
            changes: { memorySize: 512, timeout: 30, publishedVersion: 3, tags: { team: 'checkout', 'a.b': 'c' } },
          },
        }),
      ],
    ],
    [
      functionStreamId('billing'),
      [
        created('billing', { runtime: 'Python311', handler: 'handler.main', memorySize: 256 }),
        published('billing', 1),
        fn({ type: 'FunctionConfigurationUpdated', data: { name: 'billing', changes: { publishedVersion: 1 } } }),
        fn({ type: 'FunctionConfigurationUpdated', data: { name: 'billing', changes: { publishedVersion: null } } }),
        fn({ type: 'FunctionDeleted', data: { name: 'billing', purgeAfter: '2026-02-01T00:00:00.000Z' } }),
      ],
    ],
    [
      functionStreamId('recycled'),
      [
        created('recycled'),
        published('recycled', 1),
        fn({
          type: 'FunctionAliasCreated',
          data: { name: 'recycled', aliasName: 'live', version: 1, routingConfig: {}, description: '' },
        }),
        fn({ type: 'FunctionDeleted', data: { name: 'recycled', purgeAfter: '2026-01-08T00:00:00.000Z' } }),
        fn({ type: 'FunctionPurged', data: { name: 'recycled' } }),
        created('recycled', { runtime: 'Python311' }),
        published('recycled', 2),
      ],
    ],
    // Names whose order differs between byte-wise and locale-aware comparison.
    ...['Zeta', 'alpha', 'émile', 'Émile', 'a-b', 'a_b', 'a0', 'ab', 'A', '_first', 'zz'].map(
      (name, i): [string, NewEvent[]] => [
        functionStreamId(name),
        [created(name, { runtime: i % 2 === 0 ? 'Node24' : 'Python311', memorySize: 128 * ((i % 3) + 1) })],
      ],
    ),
  ];

  test('mongo: the platform projections build the same documents as over the SQLite store', async (t) => {
    const directory = await mkdtemp(join(tmpdir(), 'strata-mongo-projection-'));
    const eventStore = createSqliteEventStore({ path: join(directory, 'events.db'), pollIntervalMs: 20 });
    const sqlite = createSqliteReadStore({ path: join(directory, 'read-models.db') });
    t.teardown(async () => {
      await eventStore.close();
      await sqlite.close();
      await rm(directory, { recursive: true, force: true });
    });
    const { store: mongo } = await openStore(t);
    for (const [stream, events] of history) await eventStore.append(stream, events, 'any');
    const head = await eventStore.headPosition();

    const projectors = [sqlite, mongo].map((readStore) =>
      createProjector({ eventStore, readStore, projections: READ_MODELS }),
    );
    for (const projector of projectors) {
      await projector.start();
      t.teardown(() => projector.stop());
      t.is(projector.position(), head);
    }
    // Live events too, after both caught up.
    const live = await eventStore.append(functionStreamId('late'), [created('late'), published('late', 1)], 'noStream');
    for (const projector of projectors) await projector.waitFor(live.position);

    for (const collection of Object.values(COLLECTIONS)) {
      const expected = await sqlite.find(collection);
      t.true(expected.total > 0, collection);
      t.deepEqual(await mongo.find(collection), expected, collection);
    }
    const queries: [string, Parameters<ReadStore['find']>[1]][] = [
      [COLLECTIONS.functions, { where: { status: 'Active' }, sortBy: 'name', limit: 5, offset: 2 }],
      [COLLECTIONS.functions, { where: { status: 'Active', runtime: 'Python311' }, sortBy: 'name' }],
      [COLLECTIONS.functions, { where: { status: 'Deleted' }, sortBy: 'name', descending: true }],
      [COLLECTIONS.functions, { where: { [`tagIndex.${tagIndexKey('a.b')}`]: 'c' } }],
      [COLLECTIONS.functions, { where: { publishedVersion: null }, sortBy: 'memorySize', descending: true }],
      [COLLECTIONS.versions, { where: { functionName: 'orders' }, sortBy: 'version', descending: true }],
      [COLLECTIONS.aliases, { where: { functionName: 'orders' }, sortBy: 'aliasName' }],
      [COLLECTIONS.users, { sortBy: 'username', limit: 1, offset: 1 }],
      [COLLECTIONS.users, { where: { status: 'Active' }, limit: 0 }],
    ];
    for (const [collection, query] of queries) {
      t.deepEqual(await mongo.find(collection, query), await sqlite.find(collection, query), JSON.stringify(query));
    }
    const tagged = await mongo.find(COLLECTIONS.functions, { where: { [`tagIndex.${tagIndexKey('a.b')}`]: 'c' } });
    t.deepEqual(
      tagged.items.map((item) => item.name),
      ['orders'],
    );
    t.like(await mongo.get(COLLECTIONS.functions, 'orders'), { tags: { team: 'checkout', 'a.b': 'c' } });
  });
}
