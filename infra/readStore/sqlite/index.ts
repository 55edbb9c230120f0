import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { Document, FindQuery, FindResult, ReadStore, Scalar } from '../../../domain/ports.ts';

export interface SqliteReadStoreOptions {
  /** Database file; its directory is created when missing. */
  readonly path: string;
}

const collectionPattern = /^[A-Za-z0-9_]+$/;
const fieldPathPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const statementCacheSize = 256;
/** Documents whose text is kept after a read (the oldest go first). */
const documentCacheSize = 4_096;

// Collection names and field paths are spliced into SQL as literals (a partial or expression index only
// matches a query that repeats its exact text), so both are validated against conservative patterns.
const checkCollection = (collection: string): void => {
  if (!collectionPattern.test(collection)) throw new Error(`Invalid collection name: ${JSON.stringify(collection)}`);
};

// Each segment is quoted so that keys such as `cost-center` are read as keys: `$."tags"."cost-center"`.
const jsonPath = (path: string): string => {
  if (!fieldPathPattern.test(path)) throw new Error(`Invalid field path: ${JSON.stringify(path)}`);
  return `'$.${path
    .split('.')
    .map((segment) => `"${segment}"`)
    .join('.')}'`;
};

const fieldExpression = (path: string): string => `json_extract(body, ${jsonPath(path)})`;

const nonNegativeInteger = (name: string, value: number | undefined, fallback: number): number => {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`Invalid ${name}: ${value}`);
  return value;
};

const condition = (path: string, value: Scalar, parameters: SQLInputValue[]): string => {
  const field = fieldExpression(path);
  if (value === null) return `${field} IS NULL`;
  // json_extract turns JSON booleans into 1 and 0; json_type tells them apart from numbers.
  const type = `json_type(body, ${jsonPath(path)})`;
  if (typeof value === 'boolean') return `${field} = ${value ? 1 : 0} AND ${type} = '${value}'`;
  parameters.push(value);
  return typeof value === 'number' ? `${field} = ? AND ${type} IN ('integer', 'real')` : `${field} = ?`;
};

export const createSqliteReadStore = (options: SqliteReadStoreOptions): ReadStore => {
  if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
  const db = new DatabaseSync(options.path);
  // Documents and checkpoints share one file and one connection: WAL commits survive a crash as an ordered
  // prefix, so synchronous=NORMAL may lose the latest writes but never keeps a checkpoint ahead of the
  // documents written before it. Losing a tail is fine: projections replay it from the event log.
  // Bodies are JSONB, which json_extract reads without parsing text: unindexed filters run several times faster.
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    PRAGMA busy_timeout = 5000;
    PRAGMA cache_size = -65536;
    CREATE TABLE IF NOT EXISTS documents (
      collection TEXT NOT NULL,
      id TEXT NOT NULL,
      body BLOB NOT NULL,
      PRIMARY KEY (collection, id)
    );
    CREATE TABLE IF NOT EXISTS checkpoints (
      projection TEXT PRIMARY KEY,
      position TEXT NOT NULL
    );
  `);

  const statements = new Map<string, StatementSync>();
  const statement = (sql: string): StatementSync => {
    let prepared = statements.get(sql);
    if (prepared) {
      statements.delete(sql);
    } else {
      prepared = db.prepare(sql);
      if (statements.size >= statementCacheSize) {
        const oldest = statements.keys().next();
        if (!oldest.done) statements.delete(oldest.value);
      }
    }
    statements.set(sql, prepared);
    return prepared;
  };

  const getDocument = db.prepare('SELECT json(body) AS body FROM documents WHERE collection = ? AND id = ?');
  // The text of documents read lately, so the same user, function and version read on every request cost a
  // map lookup instead of a b-tree walk and a JSONB conversion. Writes through this store drop their keys;
  // PRAGMA data_version changes when another connection (another process) commits, and then all is dropped.
  // It is asked once per turn of the event loop (it opens a read transaction: ~15-30 µs of locking here under
  // load), so a read sees other processes' commits made before the turn began, as a fresh read would.
  const dataVersion = db.prepare('PRAGMA data_version');
  dataVersion.setReturnArrays(true);
  const documentCache = new Map<string, string>();
  let cachedVersion: unknown;
  let checkedThisTurn = false;
  const newTurn = () => {
    checkedThisTurn = false;
  };
  const cacheKey = (collection: string, id: string) => `${collection}\u0000${id}`;
  const readDocument = (collection: string, id: string): string | undefined => {
    if (!checkedThisTurn) {
      checkedThisTurn = true;
      setImmediate(newTurn);
      const version = (dataVersion.get() as unknown as unknown[] | undefined)?.[0];
      if (version !== cachedVersion) {
        documentCache.clear();
        cachedVersion = version;
      }
    }
    const key = cacheKey(collection, id);
    const cached = documentCache.get(key);
    if (cached !== undefined) return cached;
    const row = getDocument.get(collection, id);
    if (row === undefined) return undefined;
    const text = row.body as string;
    if (documentCache.size >= documentCacheSize) {
      const oldest = documentCache.keys().next();
      if (!oldest.done) documentCache.delete(oldest.value);
    }
    documentCache.set(key, text);
    return text;
  };
  const putDocument = db.prepare(
    'INSERT INTO documents (collection, id, body) VALUES (?, ?, jsonb(?)) ON CONFLICT (collection, id) DO UPDATE SET body = excluded.body',
  );
  const deleteDocument = db.prepare('DELETE FROM documents WHERE collection = ? AND id = ?');
  const deleteCollection = db.prepare('DELETE FROM documents WHERE collection = ?');
  const getCheckpoint = db.prepare('SELECT position FROM checkpoints WHERE projection = ?');
  const putCheckpoint = db.prepare(
    'INSERT INTO checkpoints (projection, position) VALUES (?, ?) ON CONFLICT (projection) DO UPDATE SET position = excluded.position',
  );

  const find = (collection: string, query: FindQuery): FindResult => {
    checkCollection(collection);
    const parameters: SQLInputValue[] = [];
    const conditions = [`collection = '${collection}'`];
    for (const [path, value] of Object.entries(query.where ?? {})) conditions.push(condition(path, value, parameters));
    const where = conditions.join(' AND ');
    const direction = query.descending ? 'DESC' : 'ASC';
    const order = query.sortBy === undefined ? 'id' : `${fieldExpression(query.sortBy)} ${direction}, id`;
    const limit = nonNegativeInteger('limit', query.limit, -1);
    const offset = nonNegativeInteger('offset', query.offset, 0);
    const rows = statement(
      `SELECT json(body) AS body FROM documents WHERE ${where} ORDER BY ${order} LIMIT ? OFFSET ?`,
    ).all(...parameters, limit, offset);
    const total = statement(`SELECT count(*) AS total FROM documents WHERE ${where}`).get(...parameters);
    return {
      items: rows.map((row) => JSON.parse(row.body as string) as Document),
      total: Number(total?.total ?? 0),
    };
  };

  return {
    async get(collection, id) {
      checkCollection(collection);
      const text = readDocument(collection, id);
      return text === undefined ? null : (JSON.parse(text) as Document);
    },
    async put(collection, id, document) {
      checkCollection(collection);
      documentCache.delete(cacheKey(collection, id));
      putDocument.run(collection, id, JSON.stringify(document));
    },
    async putMany(documents) {
      for (const { collection } of documents) checkCollection(collection);
      // One commit for the lot: the WAL append and index page writes of a commit cost far more than a row.
      db.exec('BEGIN');
      try {
        for (const { collection, id, document } of documents) {
          documentCache.delete(cacheKey(collection, id));
          putDocument.run(collection, id, JSON.stringify(document));
        }
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    async delete(collection, id) {
      checkCollection(collection);
      documentCache.delete(cacheKey(collection, id));
      deleteDocument.run(collection, id);
    },
    async find(collection, query = {}) {
      return find(collection, query);
    },
    async ensureIndex(collection, fields) {
      checkCollection(collection);
      const expressions = fields.map((field) => fieldExpression(field)).join(', ');
      const name = fields.join('+');
      // Ties are broken by id ascending in both directions, so each direction gets an index whose (forward or
      // backward) order is exactly the requested one: a filtered, sorted page is then read straight off the index.
      for (const idOrder of ['asc', 'desc']) {
        db.exec(
          `CREATE INDEX IF NOT EXISTS "documents:${collection}:${name}:${idOrder}" ON documents (collection, ${expressions}, id ${idOrder}) WHERE collection = '${collection}'`,
        );
      }
    },
    async getCheckpoint(projection) {
      const row = getCheckpoint.get(projection);
      return row ? BigInt(row.position as string) : null;
    },
    async setCheckpoint(projection, position) {
      // TEXT, because log positions may use all 64 unsigned bits and SQLite integers are signed.
      putCheckpoint.run(projection, position.toString());
    },
    async dropCollection(collection) {
      checkCollection(collection);
      documentCache.clear();
      deleteCollection.run(collection);
    },
    async dropAll() {
      // Indexes stay: they are declarations of how collections are queried, not data.
      documentCache.clear();
      db.exec('BEGIN');
      try {
        db.exec('DELETE FROM documents; DELETE FROM checkpoints;');
        db.exec('COMMIT');
      } catch (error) {
        db.exec('ROLLBACK');
        throw error;
      }
    },
    async close() {
      if (db.isOpen) db.close();
    },
  };
};

/**
 * Moves the documents of `collections` from the read store file `fromPath` into the one at `toPath` (a data
 * directory from before invocation data had a file of its own). One transaction over both files: a second
 * process starting at the same time waits, then finds nothing left to move. Each file commits atomically but
 * not both together, so a crash in between leaves a copy in both, which the next start moves again, keeping
 * the copy already moved. Returns how many documents moved.
 */
export const moveCollections = (fromPath: string, toPath: string, collections: readonly string[]): number => {
  if (!existsSync(fromPath)) return 0;
  for (const collection of collections) checkCollection(collection);
  const db = new DatabaseSync(fromPath);
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'documents'").get();
    if (hasTable === undefined) return 0;
    const names = collections.map((collection) => `'${collection}'`).join(', ');
    const pending = db.prepare(`SELECT 1 FROM documents WHERE collection IN (${names}) LIMIT 1`).get();
    if (pending === undefined) return 0;
    db.prepare('ATTACH DATABASE ? AS target').run(toPath);
    db.exec(`
      CREATE TABLE IF NOT EXISTS target.documents (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (collection, id)
      );
      BEGIN IMMEDIATE;
    `);
    try {
      db.exec(`INSERT OR IGNORE INTO target.documents SELECT * FROM main.documents WHERE collection IN (${names})`);
      const { changes } = db.prepare(`DELETE FROM main.documents WHERE collection IN (${names})`).run();
      db.exec('COMMIT');
      return Number(changes);
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  } finally {
    db.close();
  }
};
