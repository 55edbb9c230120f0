import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadConfig } from '../../../infra/config.ts';
import { createLogger } from '../../../infra/logger.ts';
import { createPartitionedReadStore } from '../../../infra/readStore/partitioned.ts';
import { createSqliteReadStore, moveCollections } from '../../../infra/readStore/sqlite/index.ts';
import { openReadStore } from '../../../infra/stores.ts';
import { readStoreContract } from '../../contracts/readStore.ts';

const temporaryDirectory = () => mkdtemp(join(tmpdir(), 'strata-partitioned-'));

// Every behaviour of a ReadStore holds when some collections (here `functions`) live in a second store.
readStoreContract(test, 'partitioned sqlite', async () => {
  const directory = await temporaryDirectory();
  const store = createPartitionedReadStore(
    createSqliteReadStore({ path: join(directory, 'main.db') }),
    createSqliteReadStore({ path: join(directory, 'side.db') }),
    new Set(['functions']),
  );
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

test('embedded: invocation records and heartbeats go to invocations.db, functions and checkpoints to read-models.db', async (t) => {
  const directory = await temporaryDirectory();
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const config = loadConfig({ STRATA_DATA_DIR: directory });
  const store = await openReadStore(config, createLogger('error'));
  await store.putMany?.([
    { collection: 'invocations', id: 'req-1', document: { requestId: 'req-1' } },
    { collection: 'functions', id: 'hello', document: { name: 'hello' } },
  ]);
  await store.put('runners', 'runner-1', { nodeId: 'runner-1' });
  await store.setCheckpoint('functions', 7n);
  await store.close();

  const main = createSqliteReadStore({ path: join(directory, 'read-models.db') });
  const side = createSqliteReadStore({ path: join(directory, 'invocations.db') });
  t.teardown(async () => {
    await main.close();
    await side.close();
  });
  t.deepEqual(await main.get('functions', 'hello'), { name: 'hello' });
  t.is(await main.get('invocations', 'req-1'), null);
  t.is(await main.get('runners', 'runner-1'), null);
  t.is(await main.getCheckpoint('functions'), 7n);
  t.deepEqual(await side.get('invocations', 'req-1'), { requestId: 'req-1' });
  t.deepEqual(await side.get('runners', 'runner-1'), { nodeId: 'runner-1' });
  t.is(await side.get('functions', 'hello'), null);
});

test('embedded: a data directory from before the split has its invocation data moved on start, nothing lost', async (t) => {
  const directory = await temporaryDirectory();
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const old = createSqliteReadStore({ path: join(directory, 'read-models.db') });
  for (let i = 0; i < 5; i += 1) await old.put('invocations', `req-${i}`, { requestId: `req-${i}`, status: 'Success' });
  await old.put('invocationLogs', 'req-0', { logs: ['hello'] });
  await old.put('functions', 'hello', { name: 'hello' });
  await old.close();

  const config = loadConfig({ STRATA_DATA_DIR: directory });
  const store = await openReadStore(config, createLogger('error'));
  t.teardown(() => store.close());
  t.is((await store.find('invocations')).total, 5);
  t.deepEqual(await store.get('invocationLogs', 'req-0'), { logs: ['hello'] });
  t.deepEqual(await store.get('functions', 'hello'), { name: 'hello' });
  // Moved, not copied: a second start has nothing left to move.
  t.is(moveCollections(join(directory, 'read-models.db'), join(directory, 'invocations.db'), ['invocations']), 0);
});

test('moving keeps a document the target already holds', async (t) => {
  const directory = await temporaryDirectory();
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const from = join(directory, 'from.db');
  const to = join(directory, 'to.db');
  const source = createSqliteReadStore({ path: from });
  await source.put('invocations', 'req-1', { status: 'Queued' });
  await source.put('invocations', 'req-2', { status: 'Success' });
  await source.close();
  const target = createSqliteReadStore({ path: to });
  await target.put('invocations', 'req-1', { status: 'Success' });
  await target.close();

  t.is(moveCollections(from, to, ['invocations']), 2);
  const moved = createSqliteReadStore({ path: to });
  t.teardown(() => moved.close());
  t.deepEqual(await moved.get('invocations', 'req-1'), { status: 'Success' });
  t.deepEqual(await moved.get('invocations', 'req-2'), { status: 'Success' });
});
