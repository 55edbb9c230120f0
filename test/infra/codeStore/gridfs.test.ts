import { createHash, randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { MongoClient, ObjectId } from 'mongodb';
import { isStoreError } from '../../../domain/ports.ts';
import { createGridFsCodeStore, type GridFsCodeStoreOptions } from '../../../infra/codeStore/gridfs/index.ts';
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
}
