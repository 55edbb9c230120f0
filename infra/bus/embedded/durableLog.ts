import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLOutputValue } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { BusError } from './errors.ts';

/** A message as the broker keeps it: its offset in the topic's single partition and when it was accepted. */
export interface StoredMessage {
  readonly offset: number;
  readonly key: string;
  readonly value: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly timestamp: string;
}

/** Everything written in one transaction (one fsync). */
export interface DurableBatch {
  readonly topics: readonly string[];
  /** `rows` holds key, value, headers (JSON or null) and timestamp per message, flattened. */
  readonly appends: ReadonlyArray<{ readonly topic: string; readonly first: number; readonly rows: (string | null)[] }>;
  readonly positions: ReadonlyArray<{ readonly topic: string; readonly group: string; readonly committed: number }>;
  readonly deletes: ReadonlyArray<{ readonly topic: string; readonly below: number }>;
}

export type WriterRequest =
  | { readonly type: 'write'; readonly id: number; readonly batch: DurableBatch }
  | { readonly type: 'close' };
export type WriterReply =
  | { readonly type: 'ready' }
  | { readonly type: 'written'; readonly id: number }
  | { readonly type: 'failed'; readonly id?: number; readonly message: string };

export interface DurableTopicState {
  readonly name: string;
  /** Offset the next message will get. */
  readonly next: number;
  /** Lowest offset still stored (`next` when the topic is empty). */
  readonly low: number;
}

export interface DurableLog {
  readonly topics: readonly DurableTopicState[];
  readonly groups: ReadonlyArray<{ readonly topic: string; readonly group: string; readonly committed: number }>;
  /** Commits the batch in the writer thread; one batch at a time. */
  write(batch: DurableBatch): Promise<void>;
  /** Stored messages of a topic with from ≤ offset < to, in offset order, at most `limit`. */
  read(topic: string, from: number, to: number, limit: number): StoredMessage[];
  close(): Promise<void>;
}

// Another process holding the write lock (only a second broker by mistake) blocks for this long at most.
const busyTimeoutMs = 5_000;

export const schema = `
  PRAGMA journal_mode = WAL;
  PRAGMA synchronous = FULL;
  CREATE TABLE IF NOT EXISTS topics (
    name TEXT PRIMARY KEY,
    next_offset INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE IF NOT EXISTS messages (
    topic TEXT NOT NULL,
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    headers TEXT,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (topic, position)
  ) STRICT;
  CREATE TABLE IF NOT EXISTS groups (
    topic TEXT NOT NULL,
    name TEXT NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (topic, name)
  ) STRICT;
`;

const noHeaders: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Opens the file on this thread for reads and starts the writer thread: fsyncs then never block the
 * event loop that dispatches ephemeral messages.
 */
export const openDurableLog = async (path: string): Promise<DurableLog> => {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs });
  db.exec(schema);
  const topics = db
    .prepare(
      `SELECT name, next_offset AS next, coalesce((SELECT min(position) FROM messages WHERE topic = name), next_offset) AS low
       FROM topics ORDER BY name`,
    )
    .all()
    .map((row) => ({ name: row.name as string, next: Number(row.next), low: Number(row.low) }));
  const groups = db
    .prepare('SELECT topic, name, committed FROM groups ORDER BY topic, name')
    .all()
    .map((row) => ({ topic: row.topic as string, group: row.name as string, committed: Number(row.committed) }));
  const selectRange = db.prepare(
    `SELECT position, key, value, headers, timestamp FROM messages
     WHERE topic = ? AND position >= ? AND position < ? ORDER BY position LIMIT ?`,
  );

  const worker = new Worker(new URL('./durableWriter.ts', import.meta.url), { workerData: { path } });
  const waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>();
  let nextId = 0;
  let failure: BusError | undefined;
  const fail = (error: BusError) => {
    failure ??= error;
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  };
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    worker.on('message', (reply: WriterReply) => {
      if (reply.type === 'ready') resolve();
      else if (reply.type === 'written') {
        waiting.get(reply.id)?.resolve();
        waiting.delete(reply.id);
      } else if (reply.id === undefined) {
        reject(new BusError('UNAVAILABLE', `the bus log could not be opened: ${reply.message}`));
      } else {
        waiting.get(reply.id)?.reject(new BusError('UNAVAILABLE', `the bus log could not commit: ${reply.message}`));
        waiting.delete(reply.id);
      }
    });
    worker.once('error', (error) => {
      const busError = new BusError('UNAVAILABLE', 'the bus log writer stopped', { cause: error });
      fail(busError);
      reject(busError);
    });
    worker.once('exit', () => {
      const busError = new BusError('UNAVAILABLE', 'the bus log writer exited');
      fail(busError);
      reject(busError);
    });
  }).catch(async (error: unknown) => {
    await worker.terminate();
    db.close();
    throw error;
  });

  let closing: Promise<void> | undefined;
  return {
    topics,
    groups,
    write(batch) {
      if (failure) return Promise.reject(failure);
      const id = nextId++;
      return new Promise<void>((resolve, reject) => {
        waiting.set(id, { resolve, reject });
        worker.postMessage({ type: 'write', id, batch } satisfies WriterRequest);
      });
    },
    read(topic, from, to, limit) {
      return selectRange.all(topic, from, to, limit).map(toStoredMessage);
    },
    close() {
      closing ??= (async () => {
        if (!failure) worker.postMessage({ type: 'close' } satisfies WriterRequest);
        await exited;
        db.close();
      })();
      return closing;
    },
  };
};

const toStoredMessage = (row: Record<string, SQLOutputValue>): StoredMessage => ({
  offset: Number(row.position),
  key: row.key as string,
  value: row.value as string,
  headers: row.headers === null ? noHeaders : (JSON.parse(row.headers as string) as Record<string, string>),
  timestamp: row.timestamp as string,
});
