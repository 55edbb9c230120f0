import type { Collection, Filter, MongoClient, Sort } from 'mongodb';
import type { Document, FindQuery, ReadStore } from '../../../domain/ports.ts';
import { isDuplicateKeyError, type MongoLogger, openDatabase, translateMongoError } from './connection.ts';
import { fromStored, toStored } from './encoding.ts';

export interface MongoReadStoreOptions {
  /** e.g. `mongodb://127.0.0.1:27017/strata`. */
  readonly url: string;
  /** Database to use; defaults to the one named in `url`, else `strata`. */
  readonly database?: string;
  /**
   * Prepended to every collection name (`rm_functions`); checkpoints live in `<prefix>.checkpoints`.
   * `dropAll` removes only collections whose name starts with it. Default `rm_`.
   */
  readonly collectionPrefix?: string;
  /**
   * How long an operation waits for a reachable server before failing with `UNAVAILABLE`, and how long
   * opening the store waits for the first answer. Default 5 s.
   */
  readonly serverSelectionTimeoutMs?: number;
  /** How long an operation waits for the answer of a server that hangs. Default 20 s. */
  readonly socketTimeoutMs?: number;
  /** A client to share (e.g. with the GridFS code store); the store then leaves closing it to the caller. */
  readonly client?: MongoClient;
  readonly logger?: MongoLogger;
}

interface StoredDocument {
  _id: string;
  doc: Document;
}

interface StoredCheckpoint {
  _id: string;
  /** Decimal: log positions may use all 64 unsigned bits, beyond what BSON's signed int64 holds. */
  position: string;
}

const collectionPattern = /^[A-Za-z0-9_]+$/;
const fieldPathPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

const checkCollection = (collection: string): void => {
  if (!collectionPattern.test(collection)) throw new Error(`Invalid collection name: ${JSON.stringify(collection)}`);
};

// Field paths never need key escaping (see encoding.ts): their segments hold none of the escaped characters.
const documentPath = (path: string): string => {
  if (!fieldPathPattern.test(path)) throw new Error(`Invalid field path: ${JSON.stringify(path)}`);
  return `doc.${path}`;
};

const nonNegativeInteger = (name: string, value: number | undefined): number | undefined => {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`Invalid ${name}: ${value}`);
  return value;
};

/**
 * The read store on MongoDB (and MongoDB-wire servers such as FerretDB 1.x): one collection per read-model
 * collection, each document stored as `{ _id: id, doc: <document> }`, queried on `doc.<path>`. Uses only
 * single-document operations, plain and compound indexes and `countDocuments`: no transactions, change
 * streams, TTL or partial indexes.
 *
 * Pings the server (through a given client too) before it resolves, so a missing server fails start-up
 * within `serverSelectionTimeoutMs` with one `ServiceUnreachableError` naming MongoDB and the address.
 * Afterwards an outage fails operations with `StoreError` `UNAVAILABLE` (after `serverSelectionTimeoutMs`,
 * or `socketTimeoutMs` for a server that hangs) and the driver reconnects by itself when the server is back.
 */
export const createMongoReadStore = async (options: MongoReadStoreOptions): Promise<ReadStore> => {
  const prefix = options.collectionPrefix ?? 'rm_';
  if (!collectionPattern.test(prefix)) throw new Error(`Invalid collection prefix: ${JSON.stringify(prefix)}`);
  const { client, db, ownsClient, address, connect, ping } = openDatabase(options);
  const checkpoints = db.collection<StoredCheckpoint>(`${prefix}.checkpoints`);
  let closed = false;

  const collectionOf = (collection: string): Collection<StoredDocument> => {
    checkCollection(collection);
    return db.collection<StoredDocument>(`${prefix}${collection}`);
  };

  const run = async <T>(operation: () => Promise<T>): Promise<T> => {
    if (closed) throw new Error('The MongoDB read store is closed');
    try {
      await connect();
      return await operation();
    } catch (error) {
      throw translateMongoError(error, address);
    }
  };

  // Two upserts of one new _id may race to insert it. MongoDB 4.2+ retries the loser itself; a compatible
  // server may answer it with a duplicate key error instead, and the retry then finds and replaces the winner.
  const upsert = async (write: () => Promise<unknown>): Promise<void> => {
    try {
      await write();
    } catch (error) {
      if (!isDuplicateKeyError(error)) throw error;
      await write();
    }
  };

  const find = async (collection: string, query: FindQuery) => {
    const target = collectionOf(collection);
    const filter: Record<string, unknown> = {};
    for (const [path, value] of Object.entries(query.where ?? {})) filter[documentPath(path)] = value;
    // Ties by id ascending in both directions; ids compare as binary strings, as in the SQLite store.
    const sort: Sort =
      query.sortBy === undefined ? { _id: 1 } : { [documentPath(query.sortBy)]: query.descending ? -1 : 1, _id: 1 };
    const limit = nonNegativeInteger('limit', query.limit);
    const offset = nonNegativeInteger('offset', query.offset) ?? 0;
    const [rows, total] = await Promise.all([
      limit === 0
        ? []
        : target
            .find(filter as Filter<StoredDocument>, {
              sort,
              projection: { _id: 0, doc: 1 },
              ...(offset > 0 ? { skip: offset } : {}),
              ...(limit === undefined ? {} : { limit }),
            })
            .toArray(),
      target.countDocuments(filter as Filter<StoredDocument>),
    ]);
    return { items: rows.map((row) => fromStored(row.doc)), total };
  };

  const store: ReadStore = {
    get: (collection, id) =>
      run(async () => {
        const row = await collectionOf(collection).findOne({ _id: id }, { projection: { _id: 0, doc: 1 } });
        return row === null ? null : fromStored(row.doc);
      }),
    put: (collection, id, document) =>
      run(async () => {
        const target = collectionOf(collection);
        const stored = { doc: toStored(document) };
        await upsert(() => target.replaceOne({ _id: id }, stored, { upsert: true }));
      }),
    delete: (collection, id) =>
      run(async () => {
        await collectionOf(collection).deleteOne({ _id: id });
      }),
    find: (collection, query = {}) => run(() => find(collection, query)),
    ensureIndex: (collection, fields) =>
      run(async () => {
        const target = collectionOf(collection);
        const keys = fields.map((field) => documentPath(field));
        if (keys.length === 0) return;
        // Ties are broken by id ascending in both directions: one index per id order lets a filtered page
        // sorted either way be read straight off an index (walked forwards or backwards).
        for (const idOrder of [1, -1] as const) {
          await target.createIndex({ ...Object.fromEntries(keys.map((key) => [key, 1])), _id: idOrder });
        }
      }),
    getCheckpoint: (projection) =>
      run(async () => {
        const row = await checkpoints.findOne({ _id: projection });
        return row === null ? null : BigInt(row.position);
      }),
    setCheckpoint: (projection, position) =>
      run(() =>
        upsert(() =>
          checkpoints.updateOne({ _id: projection }, { $set: { position: position.toString() } }, { upsert: true }),
        ),
      ),
    dropCollection: (collection) =>
      run(async () => {
        // Documents only: indexes are declarations of how the collection is queried and stay.
        await collectionOf(collection).deleteMany({});
      }),
    dropAll: () =>
      run(async () => {
        const collections = await db.listCollections({}, { nameOnly: true }).toArray();
        for (const { name } of collections) {
          if (name.startsWith(prefix)) await db.collection(name).deleteMany({});
        }
      }),
    async close() {
      if (closed) return;
      closed = true;
      if (ownsClient) await client.close();
    },
  };

  try {
    await ping();
  } catch (error) {
    if (ownsClient) await client.close().catch(() => {});
    throw error;
  }
  return store;
};
