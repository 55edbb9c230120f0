import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import {
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type RecordedEvent,
  StoreError,
  type SubscribeToAllOptions,
  type Subscription,
} from '../../../domain/ports.ts';

/** Where the adapter reports failures that no caller can be told about; `console` fits. */
export interface EventStoreLogger {
  warn(message: string, details?: Record<string, unknown>): void;
}

export interface SqliteEventStoreOptions {
  /** The database file; its parent directories are created. Several processes may share it. */
  readonly path: string;
  /** How often subscriptions look for events appended by other processes. Default 200. */
  readonly pollIntervalMs?: number;
  /** Default `console`. */
  readonly logger?: EventStoreLogger;
}

const pageSize = 500;
// Another process holds the write lock for one commit at most; waiting for it blocks the event loop.
const busyTimeoutMs = 5_000;

const schema = `
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = FULL;
  CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    recorded_at TEXT NOT NULL
  ) STRICT;
  CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream_id, revision);
`;
const columns = 'position, stream_id, revision, type, schema_version, data, metadata, recorded_at';

interface SerialisedEvent {
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: string;
  readonly metadata: string;
}

interface PendingAppend {
  readonly streamId: string;
  readonly events: readonly SerialisedEvent[];
  readonly expected: ExpectedRevision;
  readonly resolve: (result: AppendResult) => void;
  readonly reject: (error: Error) => void;
}

interface StreamHead {
  readonly revision: number;
  readonly position: bigint;
}

const emptyStream: StreamHead = { revision: -1, position: -1n };

export function createSqliteEventStore(options: SqliteEventStoreOptions): EventStore {
  const { path, pollIntervalMs = 200, logger = console } = options;
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs });
  db.exec(schema);

  const selectHead = db.prepare(
    `SELECT revision, position FROM events WHERE stream_id = ? ORDER BY revision DESC LIMIT 1`,
  );
  const insert = db.prepare(
    `INSERT INTO events (stream_id, revision, type, schema_version, data, metadata, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const selectStream = db.prepare(`SELECT ${columns} FROM events WHERE stream_id = ? ORDER BY revision`);
  const selectAll = db.prepare(`SELECT ${columns} FROM events WHERE position > ? ORDER BY position LIMIT ?`);
  const selectHeadPosition = db.prepare('SELECT coalesce(max(position), -1) AS position FROM events');
  for (const statement of [selectHead, insert, selectStream, selectAll, selectHeadPosition]) {
    statement.setReadBigInts(true);
  }

  let queue: PendingAppend[] = [];
  let closing: Promise<void> | undefined;
  const subscriptions = new Set<{ wake(): void; close(): Promise<void> }>();

  // Handlers still running while the store closes may read and append until the file is closed.
  const ensureOpen = () => {
    if (!db.isOpen) throw new StoreError('UNAVAILABLE', 'the event store is closed');
  };

  const read = <T>(query: () => T): T => {
    ensureOpen();
    try {
      return query();
    } catch (error) {
      throw new StoreError('UNAVAILABLE', 'the event store could not be read', { cause: error });
    }
  };

  const readHead = (streamId: string): StreamHead => {
    const row = selectHead.get(streamId);
    return row ? { revision: Number(row.revision), position: row.position as bigint } : emptyStream;
  };

  const readAll = (after: bigint, maxCount: number): RecordedEvent[] =>
    read(() => selectAll.all(after, maxCount).map(toRecordedEvent));

  // One transaction, hence one fsync, for every append queued since the last commit.
  const commitQueued = (): void => {
    const batch = queue;
    queue = [];
    if (batch.length === 0) return;
    const settlements: Array<() => void> = [];
    const recordedAt = new Date().toISOString();
    let appended = false;
    try {
      db.exec('BEGIN IMMEDIATE');
      for (const append of batch) {
        // Reads inside the transaction see the events of earlier appends in this batch.
        const head = readHead(append.streamId);
        if (!isExpected(append.expected, head.revision)) {
          const error = wrongExpectedRevision(append.streamId, append.expected, head.revision);
          settlements.push(() => append.reject(error));
          continue;
        }
        let { revision, position } = head;
        for (const event of append.events) {
          revision += 1;
          const { type, schemaVersion, data, metadata } = event;
          const inserted = insert.run(append.streamId, revision, type, schemaVersion, data, metadata, recordedAt);
          position = BigInt(inserted.lastInsertRowid);
          appended = true;
        }
        const result = { nextExpectedRevision: revision, position };
        settlements.push(() => append.resolve(result));
      }
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      const failure = new StoreError('UNAVAILABLE', 'the event store could not commit', { cause: error });
      for (const append of batch) append.reject(failure);
      return;
    }
    for (const settle of settlements) settle();
    if (appended) for (const subscription of subscriptions) subscription.wake();
  };

  const subscribeToAll = (
    handler: (event: RecordedEvent) => Promise<void> | void,
    subscribeOptions: SubscribeToAllOptions = {},
  ): Subscription => {
    const { streamPrefixes, onError } = subscribeOptions;
    const wanted = (event: RecordedEvent) =>
      streamPrefixes === undefined || streamPrefixes.some((prefix) => event.streamId.startsWith(prefix));
    let active = true;
    let wake = () => {};
    const sleep = () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => wake(), pollIntervalMs);
        wake = () => {
          clearTimeout(timer);
          wake = () => {};
          resolve();
        };
      });

    const deliver = async () => {
      // Nothing reaches the handler before subscribeToAll has returned the subscription.
      await Promise.resolve();
      let after = subscribeOptions.after ?? -1n;
      while (active) {
        const page = readAll(after, pageSize);
        if (page.length === 0) await sleep();
        for (const event of page) {
          if (!active) return;
          after = event.position;
          if (wanted(event)) await handler(event);
        }
      }
    };

    const subscription = {
      wake: () => wake(),
      close: async () => {
        active = false;
        wake();
        await finished;
      },
    };
    const finished = deliver()
      .catch((error: unknown) => {
        active = false;
        const failure = error instanceof Error ? error : new Error(String(error));
        try {
          if (onError) onError(failure);
          else logger.warn('event store subscription stopped', { error: failure });
        } catch (reportError) {
          logger.warn('onError of an event store subscription threw', { error: reportError });
        }
      })
      .finally(() => subscriptions.delete(subscription));
    subscriptions.add(subscription);
    return { close: subscription.close };
  };

  const shutdown = async () => {
    await Promise.all([...subscriptions].map((subscription) => subscription.close()));
    commitQueued();
    db.close();
  };

  return {
    async append(streamId, events, expected) {
      ensureOpen();
      const serialised = events.map(serialise);
      return new Promise<AppendResult>((resolve, reject) => {
        if (queue.length === 0) setImmediate(commitQueued);
        queue.push({ streamId, events: serialised, expected, resolve, reject });
      });
    },
    async readStream(streamId) {
      return read(() => selectStream.all(streamId).map(toRecordedEvent));
    },
    async readAll(readOptions = {}) {
      return readAll(readOptions.after ?? -1n, readOptions.maxCount ?? -1);
    },
    subscribeToAll,
    async headPosition() {
      return read(() => selectHeadPosition.get()?.position as bigint);
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}

const isExpected = (expected: ExpectedRevision, revision: number): boolean =>
  expected === 'any' || (expected === 'noStream' ? revision === -1 : expected === revision);

const wrongExpectedRevision = (streamId: string, expected: ExpectedRevision, revision: number) =>
  new StoreError(
    'WRONG_EXPECTED_REVISION',
    `stream ${JSON.stringify(streamId)}: expected ${expected}, actual ${revision === -1 ? 'noStream' : revision}`,
  );

const toJson = (value: unknown, what: string): string => {
  const json: string | undefined = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`event ${what} is not JSON-serialisable`);
  return json;
};

const serialise = (event: NewEvent): SerialisedEvent => ({
  type: event.type,
  schemaVersion: event.schemaVersion,
  data: toJson(event.data, 'data'),
  metadata: toJson(event.metadata, 'metadata'),
});

const toRecordedEvent = (row: Record<string, SQLOutputValue>): RecordedEvent => ({
  streamId: row.stream_id as string,
  revision: Number(row.revision),
  position: row.position as bigint,
  type: row.type as string,
  schemaVersion: Number(row.schema_version),
  data: JSON.parse(row.data as string),
  metadata: JSON.parse(row.metadata as string),
  recordedAt: row.recorded_at as string,
});
