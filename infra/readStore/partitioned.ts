import type { DocumentWrite, ReadStore } from '../../domain/ports.ts';

/**
 * One ReadStore over two: the named collections live in `side`, everything else (and every checkpoint) in
 * `main`. The embedded platform keeps what each invocation writes (records, logs, metrics, heartbeats) in a
 * side SQLite file, so those commits do not empty the document caches that other processes (the runner, a
 * second API) keep of the main file's users, functions and versions: a cache is dropped whenever another
 * connection commits to its file.
 *
 * `putMany` is all or none within each store; a batch that spans both is two transactions (the recorder's
 * batches never do).
 */
export const createPartitionedReadStore = (
  main: ReadStore,
  side: ReadStore,
  sideCollections: ReadonlySet<string>,
): ReadStore => {
  const storeOf = (collection: string): ReadStore => (sideCollections.has(collection) ? side : main);
  const putManyInto = async (store: ReadStore, documents: readonly DocumentWrite[]) => {
    if (documents.length === 0) return;
    if (store.putMany !== undefined) await store.putMany(documents);
    else for (const { collection, id, document } of documents) await store.put(collection, id, document);
  };
  return {
    get: (collection, id) => storeOf(collection).get(collection, id),
    put: (collection, id, document) => storeOf(collection).put(collection, id, document),
    async putMany(documents) {
      await putManyInto(
        main,
        documents.filter(({ collection }) => !sideCollections.has(collection)),
      );
      await putManyInto(
        side,
        documents.filter(({ collection }) => sideCollections.has(collection)),
      );
    },
    delete: (collection, id) => storeOf(collection).delete(collection, id),
    find: (collection, query) => storeOf(collection).find(collection, query),
    ensureIndex: (collection, fields) => storeOf(collection).ensureIndex(collection, fields),
    getCheckpoint: (projection) => main.getCheckpoint(projection),
    setCheckpoint: (projection, position) => main.setCheckpoint(projection, position),
    dropCollection: (collection) => storeOf(collection).dropCollection(collection),
    async dropAll() {
      await main.dropAll();
      await side.dropAll();
    },
    async close() {
      await Promise.all([main.close(), side.close()]);
    },
  };
};
