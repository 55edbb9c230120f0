import { createHash, randomBytes } from 'node:crypto';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { MongoClient, ObjectId } from 'mongodb';
import { isStoreError } from '../../../domain/ports.ts';
import { createGridFsCodeStore, type GridFsCodeStoreOptions } from '../../../infra/codeStore/gridfs/index.ts';
import { isServiceUnreachable } from '../../../infra/serviceErrors.ts';
import { codeStoreContract } from '../../contracts/codeStore.ts';

// Needs a MongoDB-wire server (scripts/services.sh starts FerretDB): runs wherever STRATA_MONGODB_URL is set.
const url = process.env.STRATA_MONGODB_URL;

test('gridfs: an unreachable server fails operations with UNAVAILABLE naming the address', async (t) => {
  const store = createGridFsCodeStore({ url: 'mongodb://127.0.0.1:1/strata', serverSelectionTimeoutMs: 300 });
  t.teardown(() => store.close());
  const error = await t.throwsAsync(store.put(new Uint8Array([1])));
  t.true(isStoreError(error, 'UNAVAILABLE'), String(error));
  t.regex(error?.message ?? '', /MongoDB unavailable at mongodb:\/\/127\.0\.0\.1:1\b/);
  t.true(isStoreError(await store.has('0'.repeat(64)).catch((e: unknown) => e), 'UNAVAILABLE'));
  const connecting = await t.throwsAsync(store.connect());
  t.true(isServiceUnreachable(connecting), String(connecting));
  t.regex(
    connecting?.message ?? '',
    /^cannot reach MongoDB at mongodb:\/\/127\.0\.0\.1:1\/strata \(connection refused\)/,
  );
});

const freshDatabase = (): string => `strata_test_${randomBytes(6).toString('hex')}`;

const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

if (url === undefined || url === '') {
  if (process.env.STRATA_SERVICES_REQUIRED === '1') {
    test('gridfs: STRATA_MONGODB_URL is set (STRATA_SERVICES_REQUIRED=1)', (t) => {
      t.fail('STRATA_SERVICES_REQUIRED=1 but STRATA_MONGODB_URL is not set: run scripts/services.sh start');
    });
  } else {
    console.warn('NOTICE: GridFS code store suite skipped: STRATA_MONGODB_URL is not set');
    test.skip('gridfs: code store contract (set STRATA_MONGODB_URL, e.g. mongodb://127.0.0.1:27017/strata)', () => {});
  }
} else {
  const admin = new MongoClient(url);
  test.after.always(() => admin.close());

  const open = (options: Partial<GridFsCodeStoreOptions> = {}) => {
    const database = freshDatabase();
    const bucketName = options.bucketName ?? 'code';
    const store = createGridFsCodeStore({ url, database, ...options });
    const db = admin.db(database);
    return {
      store,
      db,
      bucketName,
      copies: (sha256: string) => db.collection(`${bucketName}.files`).countDocuments({ filename: sha256 }),
      cleanup: async () => {
        await store.close();
        await db.dropDatabase();
      },
    };
  };

  const setup = (t: ExecutionContext, options: Partial<GridFsCodeStoreOptions> = {}) => {
    const opened = open(options);
    t.teardown(opened.cleanup);
    return opened;
  };

  codeStoreContract(test, 'gridfs', async () => open());

  test('gridfs: the location names the bucket and the hash', async (t) => {
    const { store } = setup(t, { bucketName: 'packages' });
    const bytes = new TextEncoder().encode('PK location');
    t.is((await store.put(bytes)).location, `gridfs://packages/${sha256Of(bytes)}`);
  });

  test('gridfs: a put that loses a race leaves no chunks behind', async (t) => {
    const { store, db, bucketName } = setup(t);
    const bytes = new Uint8Array(randomBytes(700_000));
    await Promise.all(Array.from({ length: 6 }, () => store.put(bytes)));
    const [file] = await db
      .collection(`${bucketName}.files`)
      .find({ filename: sha256Of(bytes) })
      .toArray();
    t.is(file?.length, bytes.byteLength);
    const chunkOwners = await db.collection(`${bucketName}.chunks`).distinct('files_id');
    t.deepEqual(
      chunkOwners.map((id) => String(id)),
      [String(file?._id)],
    );
  });

  test('gridfs: chunks left by an upload that never finished do not count as a package', async (t) => {
    const { store, db, bucketName } = setup(t);
    const bytes = new TextEncoder().encode('PK crashed mid-upload');
    const sha256 = sha256Of(bytes);
    await db
      .collection(`${bucketName}.chunks`)
      .insertOne({ _id: new ObjectId(), files_id: new ObjectId(), n: 0, data: Buffer.from(bytes) });
    t.false(await store.has(sha256));
    t.is(await store.get(sha256), null);
    await store.put(bytes);
    t.deepEqual(await store.get(sha256), bytes);
  });

  test('gridfs: a second store on the same bucket sees the packages of the first', async (t) => {
    const first = setup(t);
    const second = createGridFsCodeStore({ url, database: first.db.databaseName });
    t.teardown(() => second.close());
    const bytes = new TextEncoder().encode('PK shared');
    const stored = await first.store.put(bytes);
    t.true(await second.has(stored.sha256));
    t.deepEqual(await second.put(bytes), stored);
    t.is(await first.copies(stored.sha256), 1);
  });

  // The driver closes its topology when its very first connection fails, and then fails every operation
  // with "Topology is closed" even once the server answers: the store must connect again by itself.
  test('gridfs: a store whose server was down at its first operation works once the server is there', async (t) => {
    const target = /^mongodb:\/\/(?:[^@/]*@)?([^:/,]+):(\d+)/.exec(url);
    if (target === null) return t.pass('STRATA_MONGODB_URL names no single host:port to put a proxy in front of');
    const [, host = '127.0.0.1', port = '27017'] = target;
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const proxyPort = (free.address() as AddressInfo).port;
    await new Promise<void>((resolve) => free.close(() => resolve()));

    const database = freshDatabase();
    const store = createGridFsCodeStore({
      url: `mongodb://127.0.0.1:${proxyPort}/${database}?directConnection=true`,
      serverSelectionTimeoutMs: 500,
    });
    t.teardown(async () => {
      await store.close();
      await admin.db(database).dropDatabase();
    });
    const bytes = new TextEncoder().encode('PK after an outage at start');
    t.true(isStoreError(await store.put(bytes).catch((error: unknown) => error), 'UNAVAILABLE'));

    const sockets = new Set<Socket>();
    const proxy = createServer((incoming) => {
      const outgoing = connect(Number(port), host);
      for (const socket of [incoming, outgoing]) {
        sockets.add(socket);
        socket.on('error', () => {});
        socket.on('close', () => {
          incoming.destroy();
          outgoing.destroy();
        });
      }
      incoming.pipe(outgoing).pipe(incoming);
    });
    await new Promise<void>((resolve) => proxy.listen(proxyPort, '127.0.0.1', resolve));
    t.teardown(() => {
      for (const socket of sockets) socket.destroy();
      proxy.close();
    });
    const stored = await store.put(bytes);
    t.deepEqual(await store.get(stored.sha256), bytes);
  });
}
