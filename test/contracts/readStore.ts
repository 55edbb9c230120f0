import type { ExecutionContext, TestFn } from 'ava';
import type { Document, ReadStore } from '../../domain/ports.ts';

export type ReadStoreFactory = () => Promise<{ store: ReadStore; cleanup: () => Promise<void> }>;

/** The behaviour every ReadStore adapter must show; runs against a fresh store per test. */
export const readStoreContract = (test: TestFn, name: string, factory: ReadStoreFactory): void => {
  const open = async (t: ExecutionContext): Promise<ReadStore> => {
    const { store, cleanup } = await factory();
    t.teardown(cleanup);
    return store;
  };

  const ids = (items: readonly Document[]): unknown[] => items.map((item) => item.id);

  const putAll = async (store: ReadStore, collection: string, documents: readonly Document[]): Promise<void> => {
    for (const document of documents) await store.put(collection, String(document.id), document);
  };

  test(`${name}: put then get returns the document, get of a missing id returns null`, async (t) => {
    const store = await open(t);
    await store.put('functions', 'fn-1', { id: 'fn-1', name: 'resize' });
    t.deepEqual(await store.get('functions', 'fn-1'), { id: 'fn-1', name: 'resize' });
    t.is(await store.get('functions', 'fn-2'), null);
    t.is(await store.get('unknown', 'fn-1'), null);
  });

  test(`${name}: put overwrites the whole document`, async (t) => {
    const store = await open(t);
    await store.put('functions', 'fn-1', { id: 'fn-1', name: 'resize', memoryMb: 128 });
    await store.put('functions', 'fn-1', { id: 'fn-1', name: 'thumbnail' });
    t.deepEqual(await store.get('functions', 'fn-1'), { id: 'fn-1', name: 'thumbnail' });
    t.is((await store.find('functions')).total, 1);
  });

  test(`${name}: delete removes the document and ignores missing ids`, async (t) => {
    const store = await open(t);
    await store.put('functions', 'fn-1', { id: 'fn-1' });
    await store.delete('functions', 'fn-1');
    await store.delete('functions', 'fn-1');
    await store.delete('unknown', 'fn-1');
    t.is(await store.get('functions', 'fn-1'), null);
    t.deepEqual(await store.find('functions'), { items: [], total: 0 });
  });

  test(`${name}: putMany, where the store has it, stores every document, later ones winning over earlier ones`, async (t) => {
    const store = await open(t);
    if (store.putMany === undefined) {
      t.pass('this store has no putMany: callers put one document at a time');
      return;
    }
    await store.put('functions', 'fn-1', { id: 'fn-1', name: 'old' });
    await store.putMany([
      { collection: 'functions', id: 'fn-1', document: { id: 'fn-1', name: 'first' } },
      { collection: 'users', id: 'u-1', document: { id: 'u-1' } },
      { collection: 'functions', id: 'fn-2', document: { id: 'fn-2', name: 'two' } },
      { collection: 'functions', id: 'fn-1', document: { id: 'fn-1', name: 'last' } },
    ]);
    await store.putMany([]);
    t.deepEqual(await store.get('functions', 'fn-1'), { id: 'fn-1', name: 'last' });
    t.deepEqual(await store.get('users', 'u-1'), { id: 'u-1' });
    t.deepEqual(ids((await store.find('functions')).items), ['fn-1', 'fn-2']);
    await t.throwsAsync(
      () =>
        store.putMany?.([
          { collection: 'functions', id: 'fn-3', document: { id: 'fn-3' } },
          { collection: 'bad name', id: 'x', document: {} },
        ]) ?? Promise.resolve(),
    );
    t.is(await store.get('functions', 'fn-3'), null, 'all or none');
  });

  test(`${name}: collections are separate`, async (t) => {
    const store = await open(t);
    await store.put('functions', 'x', { id: 'x', kind: 'function' });
    await store.put('users', 'x', { id: 'x', kind: 'user' });
    t.deepEqual(await store.get('functions', 'x'), { id: 'x', kind: 'function' });
    t.deepEqual(await store.get('users', 'x'), { id: 'x', kind: 'user' });
    await store.delete('users', 'x');
    t.deepEqual(await store.get('functions', 'x'), { id: 'x', kind: 'function' });
  });

  test(`${name}: documents round-trip nested objects, arrays, null, numbers and unicode`, async (t) => {
    const store = await open(t);
    const document = {
      id: 'fn-ü',
      name: 'größe-計算-🚀',
      description: 'quotes " and \\ backslash, newline\nand tab\t, e\u0301 combining',
      empty: '',
      nothing: null,
      enabled: false,
      numbers: [0, -1, 3.25, Number.MAX_SAFE_INTEGER, -1e-7],
      nested: { deeper: { list: [{ a: 1 }, [], {}, null, 'x'] } },
      tags: { 'cost-center': 'cc-42', ключ: 'значение' },
    };
    await store.put('functions', 'fn-ü', document);
    t.deepEqual(await store.get('functions', 'fn-ü'), document);
    t.deepEqual((await store.find('functions')).items, [document]);
  });

  test(`${name}: find on an empty or unknown collection returns nothing`, async (t) => {
    const store = await open(t);
    t.deepEqual(await store.find('unknown'), { items: [], total: 0 });
    t.deepEqual(await store.find('unknown', { where: { runtime: 'nodejs22' }, sortBy: 'name', limit: 5, offset: 5 }), {
      items: [],
      total: 0,
    });
    await store.put('functions', 'fn-1', { id: 'fn-1' });
    await store.delete('functions', 'fn-1');
    t.deepEqual(await store.find('functions', { sortBy: 'name' }), { items: [], total: 0 });
  });

  const functions: Document[] = [
    { id: 'fn-1', name: 'b', runtime: 'nodejs22', tags: { team: 'red', 'cost-center': 'cc-1' }, memoryMb: 128 },
    { id: 'fn-2', name: 'a', runtime: 'python3.13', tags: { team: 'blue', 'cost-center': 'cc-2' }, memoryMb: 256 },
    { id: 'fn-3', name: 'c', runtime: 'nodejs22', tags: { team: 'blue', 'cost-center': 'cc-1' }, memoryMb: 128 },
    { id: 'fn-4', name: 'b', runtime: 'nodejs22', tags: { team: 'red' }, memoryMb: 512, enabled: true },
    { id: 'fn-5', name: 'a', runtime: 'go1.x', tags: {}, memoryMb: 1, enabled: 1, owner: null },
  ];

  test(`${name}: find filters by equality on top-level and nested paths`, async (t) => {
    const store = await open(t);
    await putAll(store, 'functions', functions);
    const find = async (where: Record<string, string | number | boolean | null>) => {
      const result = await store.find('functions', { where, sortBy: 'name' });
      return { ids: ids(result.items).sort(), total: result.total };
    };
    t.deepEqual(await find({ runtime: 'nodejs22' }), { ids: ['fn-1', 'fn-3', 'fn-4'], total: 3 });
    t.deepEqual(await find({ 'tags.team': 'blue' }), { ids: ['fn-2', 'fn-3'], total: 2 });
    t.deepEqual(await find({ 'tags.cost-center': 'cc-1' }), { ids: ['fn-1', 'fn-3'], total: 2 });
    t.deepEqual(await find({ runtime: 'nodejs22', 'tags.team': 'red' }), { ids: ['fn-1', 'fn-4'], total: 2 });
    t.deepEqual(await find({ memoryMb: 128 }), { ids: ['fn-1', 'fn-3'], total: 2 });
    t.deepEqual(await find({ runtime: 'rust' }), { ids: [], total: 0 });
    t.deepEqual(await find({ 'tags.missing': 'x' }), { ids: [], total: 0 });
  });

  test(`${name}: find compares types strictly: true is not 1, "128" is not 128`, async (t) => {
    const store = await open(t);
    await putAll(store, 'functions', functions);
    const found = async (where: Record<string, string | number | boolean | null>) =>
      ids((await store.find('functions', { where })).items);
    t.deepEqual(await found({ enabled: true }), ['fn-4']);
    t.deepEqual(await found({ enabled: 1 }), ['fn-5']);
    t.deepEqual(await found({ memoryMb: '128' }), []);
  });

  test(`${name}: where null matches a null or missing field`, async (t) => {
    const store = await open(t);
    await putAll(store, 'functions', functions);
    const result = await store.find('functions', { where: { owner: null, runtime: 'go1.x' } });
    t.deepEqual(ids(result.items), ['fn-5']);
    t.is((await store.find('functions', { where: { owner: null } })).total, 5);
    t.is((await store.find('functions', { where: { enabled: null } })).total, 3);
  });

  test(`${name}: find sorts ascending and descending, ties broken by id ascending`, async (t) => {
    const store = await open(t);
    await putAll(store, 'functions', [...functions].reverse());
    t.deepEqual(ids((await store.find('functions', { sortBy: 'name' })).items), [
      'fn-2',
      'fn-5',
      'fn-1',
      'fn-4',
      'fn-3',
    ]);
    t.deepEqual(ids((await store.find('functions', { sortBy: 'name', descending: true })).items), [
      'fn-3',
      'fn-1',
      'fn-4',
      'fn-2',
      'fn-5',
    ]);
    t.deepEqual(ids((await store.find('functions', { sortBy: 'memoryMb', descending: true })).items), [
      'fn-4',
      'fn-2',
      'fn-1',
      'fn-3',
      'fn-5',
    ]);
    t.deepEqual(ids((await store.find('functions', { sortBy: 'tags.team', where: { runtime: 'nodejs22' } })).items), [
      'fn-3',
      'fn-1',
      'fn-4',
    ]);
  });

  test(`${name}: find pages with limit and offset; total counts every match`, async (t) => {
    const store = await open(t);
    const documents = Array.from({ length: 25 }, (_, i) => ({
      id: `fn-${String(i).padStart(2, '0')}`,
      rank: 24 - i,
      odd: i % 2 === 1,
    }));
    await putAll(store, 'functions', documents);
    const page = await store.find('functions', { sortBy: 'rank', limit: 10, offset: 20 });
    t.deepEqual(ids(page.items), ['fn-04', 'fn-03', 'fn-02', 'fn-01', 'fn-00']);
    t.is(page.total, 25);
    const first = await store.find('functions', { sortBy: 'rank', descending: true, limit: 3 });
    t.deepEqual(ids(first.items), ['fn-00', 'fn-01', 'fn-02']);
    const odd = await store.find('functions', { where: { odd: true }, sortBy: 'rank', limit: 2, offset: 1 });
    t.deepEqual(ids(odd.items), ['fn-21', 'fn-19']);
    t.is(odd.total, 12);
    t.deepEqual(await store.find('functions', { sortBy: 'rank', offset: 30 }), { items: [], total: 25 });
    t.deepEqual(await store.find('functions', { where: { odd: false }, limit: 0 }), { items: [], total: 13 });
  });

  test(`${name}: declared indexes keep find results the same`, async (t) => {
    const store = await open(t);
    await store.ensureIndex('functions', ['name', 'runtime', 'tags.cost-center']);
    await store.ensureIndex('functions', ['name']);
    await putAll(store, 'functions', functions);
    const result = await store.find('functions', { where: { 'tags.cost-center': 'cc-1' }, sortBy: 'name' });
    t.deepEqual(ids(result.items), ['fn-1', 'fn-3']);
    t.deepEqual(ids((await store.find('functions', { sortBy: 'name', descending: true, limit: 2 })).items), [
      'fn-3',
      'fn-1',
    ]);
    t.deepEqual(ids((await store.find('functions', { where: { runtime: 'nodejs22' }, sortBy: 'name' })).items), [
      'fn-1',
      'fn-4',
      'fn-3',
    ]);
  });

  test(`${name}: checkpoints round-trip bigint positions, including values above 2^53`, async (t) => {
    const store = await open(t);
    t.is(await store.getCheckpoint('functions'), null);
    await store.setCheckpoint('functions', 0n);
    t.is(await store.getCheckpoint('functions'), 0n);
    const large = 2n ** 53n + 1n;
    await store.setCheckpoint('functions', large);
    t.is(await store.getCheckpoint('functions'), large);
    const largest = 2n ** 64n - 1n;
    await store.setCheckpoint('users', largest);
    t.is(await store.getCheckpoint('users'), largest);
    t.is(await store.getCheckpoint('functions'), large);
  });

  test(`${name}: dropCollection removes one collection's documents and leaves the others`, async (t) => {
    const { store, cleanup } = await factory();
    t.teardown(cleanup);
    await store.put('functions', 'a', { name: 'a' });
    await store.put('functions', 'b', { name: 'b' });
    await store.put('users', 'u', { username: 'u' });
    await store.setCheckpoint('read-models', 7n);
    await store.dropCollection('functions');
    t.is((await store.find('functions')).total, 0);
    t.deepEqual(await store.get('users', 'u'), { username: 'u' });
    t.is(await store.getCheckpoint('read-models'), 7n);
  });

  test(`${name}: dropAll removes every document and checkpoint, and the store stays usable`, async (t) => {
    const store = await open(t);
    await store.ensureIndex('functions', ['name']);
    await putAll(store, 'functions', functions);
    await store.put('users', 'user-1', { id: 'user-1' });
    await store.setCheckpoint('functions', 42n);
    await store.dropAll();
    t.deepEqual(await store.find('functions', { sortBy: 'name' }), { items: [], total: 0 });
    t.is(await store.get('users', 'user-1'), null);
    t.is(await store.getCheckpoint('functions'), null);
    await store.put('functions', 'fn-1', { id: 'fn-1', name: 'again' });
    await store.setCheckpoint('functions', 1n);
    t.deepEqual((await store.find('functions', { sortBy: 'name' })).items, [{ id: 'fn-1', name: 'again' }]);
    t.is(await store.getCheckpoint('functions'), 1n);
  });
};
