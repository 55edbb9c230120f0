import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { createSqliteReadStore } from '../../../infra/readStore/sqlite/index.ts';
import { readStoreContract } from '../../contracts/readStore.ts';

const temporaryDirectory = () => mkdtemp(join(tmpdir(), 'strata-read-store-'));

readStoreContract(test, 'sqlite', async () => {
  const directory = await temporaryDirectory();
  const store = createSqliteReadStore({ path: join(directory, 'read.db') });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

test('sqlite: documents and checkpoints persist across reopening', async (t) => {
  const directory = await temporaryDirectory();
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const path = join(directory, 'nested', 'read.db');
  const first = createSqliteReadStore({ path });
  await first.ensureIndex('functions', ['name']);
  await first.put('functions', 'fn-1', { id: 'fn-1', name: 'resize' });
  await first.put('functions', 'fn-2', { id: 'fn-2', name: 'archive' });
  await first.setCheckpoint('functions', 2n ** 60n);
  await first.close();

  const second = createSqliteReadStore({ path });
  t.teardown(() => second.close());
  t.deepEqual(await second.get('functions', 'fn-1'), { id: 'fn-1', name: 'resize' });
  t.deepEqual((await second.find('functions', { sortBy: 'name' })).items, [
    { id: 'fn-2', name: 'archive' },
    { id: 'fn-1', name: 'resize' },
  ]);
  t.is(await second.getCheckpoint('functions'), 2n ** 60n);
});

test('sqlite: rejects collection names and field paths it cannot splice into SQL safely', async (t) => {
  const directory = await temporaryDirectory();
  const store = createSqliteReadStore({ path: join(directory, 'read.db') });
  t.teardown(async () => {
    await store.close();
    await rm(directory, { recursive: true, force: true });
  });
  await t.throwsAsync(store.find("functions' OR 1=1 --"), { message: /Invalid collection name/ });
  await t.throwsAsync(store.put('a b', 'x', {}), { message: /Invalid collection name/ });
  await t.throwsAsync(store.find('functions', { sortBy: "name') --" }), { message: /Invalid field path/ });
  await t.throwsAsync(store.find('functions', { where: { 'tags..team': 'x' } }), { message: /Invalid field path/ });
  await t.throwsAsync(store.ensureIndex('functions', ['tags."x"']), { message: /Invalid field path/ });
  await t.throwsAsync(store.find('functions', { limit: -1 }), { message: /Invalid limit/ });
});

/** Another connection's commits are looked for once per turn of the event loop. */
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

test('sqlite: a document read again reflects every write since, through this store, or another connection from the next turn', async (t) => {
  const directory = await temporaryDirectory();
  const path = join(directory, 'read.db');
  const api = createSqliteReadStore({ path });
  const projector = createSqliteReadStore({ path });
  t.teardown(async () => {
    await api.close();
    await projector.close();
    await rm(directory, { recursive: true, force: true });
  });
  await api.put('users', 'u-1', { role: 'Admin' });
  t.deepEqual(await api.get('users', 'u-1'), { role: 'Admin' });
  await projector.put('users', 'u-1', { role: 'Viewer' });
  await nextTurn();
  t.deepEqual(await api.get('users', 'u-1'), { role: 'Viewer' }, 'a commit by another connection');
  await projector.delete('users', 'u-1');
  await nextTurn();
  t.is(await api.get('users', 'u-1'), null);

  await api.put('functions', 'f', { status: 'Active' });
  t.deepEqual(await api.get('functions', 'f'), { status: 'Active' });
  await api.putMany?.([{ collection: 'functions', id: 'f', document: { status: 'Deleted' } }]);
  t.deepEqual(await api.get('functions', 'f'), { status: 'Deleted' }, 'putMany through this store');
  await api.dropCollection('functions');
  t.is(await api.get('functions', 'f'), null);
  await api.put('functions', 'f', { status: 'Active' });
  t.deepEqual(await api.get('functions', 'f'), { status: 'Active' });
  await api.dropAll();
  t.is(await api.get('functions', 'f'), null);

  await api.put('versions', 'v', { environment: { A: '1' } });
  const read = await api.get('versions', 'v');
  (read?.environment as Record<string, string>).A = 'changed by a caller';
  t.deepEqual(await api.get('versions', 'v'), { environment: { A: '1' } }, 'every read is a copy of its own');
});
