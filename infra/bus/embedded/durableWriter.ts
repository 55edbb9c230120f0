// The bus log's writer thread: commits each batch in one transaction, so publishes from every process
// share an fsync, while the broker's event loop goes on dispatching.
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import type { DurableBatch, WriterReply, WriterRequest } from './durableLog.ts';

const port = parentPort;
if (port === null) throw new Error('durableWriter.ts runs as a worker thread');
const reply = (message: WriterReply) => port.postMessage(message);

const open = () => {
  const db = new DatabaseSync((workerData as { path: string }).path, { timeout: 5_000 });
  db.exec('PRAGMA synchronous = FULL');
  return db;
};

let db: DatabaseSync;
try {
  db = open();
} catch (error) {
  reply({ type: 'failed', message: String(error) });
  port.close();
  throw error;
}

const insertTopic = db.prepare('INSERT INTO topics (name, next_offset) VALUES (?, 0) ON CONFLICT (name) DO NOTHING');
const insertMessage = db.prepare(
  'INSERT INTO messages (topic, position, key, value, headers, timestamp) VALUES (?, ?, ?, ?, ?, ?)',
);
const setNextOffset = db.prepare('UPDATE topics SET next_offset = ? WHERE name = ?');
const upsertGroup = db.prepare(
  `INSERT INTO groups (topic, name, committed) VALUES (?, ?, ?)
   ON CONFLICT (topic, name) DO UPDATE SET committed = excluded.committed`,
);
const deleteBelow = db.prepare('DELETE FROM messages WHERE topic = ? AND position < ?');

const write = (batch: DurableBatch) => {
  db.exec('BEGIN IMMEDIATE');
  try {
    for (const name of batch.topics) insertTopic.run(name);
    for (const { topic, first, rows } of batch.appends) {
      let position = first;
      for (let index = 0; index < rows.length; index += 4) {
        insertMessage.run(
          topic,
          position,
          rows[index] ?? '',
          rows[index + 1] ?? '',
          rows[index + 2] ?? null,
          rows[index + 3] ?? '',
        );
        position += 1;
      }
      setNextOffset.run(position, topic);
    }
    for (const { topic, group, committed } of batch.positions) upsertGroup.run(topic, group, committed);
    for (const { topic, below } of batch.deletes) deleteBelow.run(topic, below);
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
};

port.on('message', (request: WriterRequest) => {
  if (request.type === 'close') {
    db.close();
    port.close();
    return;
  }
  try {
    write(request.batch);
    reply({ type: 'written', id: request.id });
  } catch (error) {
    reply({ type: 'failed', id: request.id, message: String(error) });
  }
});
reply({ type: 'ready' });
