import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { isStoreError, type NewEvent, type RecordedEvent } from '../../../domain/ports.ts';
import { createSqliteEventStore } from '../../../infra/eventStore/sqlite/index.ts';
import { eventStoreContract } from '../../contracts/eventStore.ts';

const temporaryDatabase = async (t: ExecutionContext) => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-events-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return join(directory, 'nested', 'events.db');
};

const event = (index: number): NewEvent => ({
  type: 'Written',
  schemaVersion: 1,
  data: { index },
  metadata: { userId: 'u', occurredAt: new Date(0).toISOString(), traceId: 't', correlationId: 'c', causationId: 'c' },
});

eventStoreContract(test, 'sqlite', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-events-'));
  const store = createSqliteEventStore({ path: join(directory, 'events.db'), pollIntervalMs: 20 });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
});

test('sqlite: events survive closing and reopening the file', async (t) => {
  const path = await temporaryDatabase(t);
  const first = createSqliteEventStore({ path });
  const written = await first.append('a-1', [event(0), event(1)], 'noStream');
  const before = await first.readAll();
  await first.close();

  const reopened = createSqliteEventStore({ path });
  t.teardown(() => reopened.close());
  t.deepEqual(await reopened.readAll(), before);
  t.is(await reopened.headPosition(), written.position);
  t.is((await reopened.append('a-1', [event(2)], 1)).nextExpectedRevision, 2);
});

test('sqlite: a closed store rejects appends and reads as unavailable', async (t) => {
  const store = createSqliteEventStore({ path: await temporaryDatabase(t) });
  await store.close();
  t.true(isStoreError(await t.throwsAsync(store.append('a-1', [event(0)], 'noStream')), 'UNAVAILABLE'));
  t.true(isStoreError(await t.throwsAsync(store.readAll()), 'UNAVAILABLE'));
});

test('sqlite: appends queued when the store is closed are committed first', async (t) => {
  const path = await temporaryDatabase(t);
  const store = createSqliteEventStore({ path });
  const appended = store.append('a-1', [event(0)], 'noStream');
  await store.close();
  await appended;

  const reopened = createSqliteEventStore({ path });
  t.teardown(() => reopened.close());
  t.is((await reopened.readStream('a-1')).length, 1);
});

test('sqlite: a second store on the same file sees appends from the first and checks revisions against them', async (t) => {
  const path = await temporaryDatabase(t);
  const reader = createSqliteEventStore({ path, pollIntervalMs: 20 });
  const writer = createSqliteEventStore({ path });
  t.teardown(() => Promise.all([reader.close(), writer.close()]));

  const received: RecordedEvent[] = [];
  let arrived = () => {};
  const subscription = reader.subscribeToAll((recorded) => {
    received.push(recorded);
    arrived();
  });
  t.teardown(() => subscription.close());
  await writer.append('a-1', [event(0), event(1)], 'noStream');
  await writer.append('b-1', [event(2)], 'noStream');
  while (received.length < 3) await new Promise<void>((resolve) => (arrived = resolve));

  t.deepEqual(received, await writer.readAll());
  const error = await t.throwsAsync(reader.append('a-1', [event(3)], 'noStream'));
  t.true(isStoreError(error, 'WRONG_EXPECTED_REVISION'));
  t.is((await reader.append('a-1', [event(3)], 1)).nextExpectedRevision, 2);
});

test('sqlite: every acknowledged append survives the process being killed', async (t) => {
  const path = await temporaryDatabase(t);
  const fixture = fileURLToPath(new URL('../../fixtures/appendUntilKilled.ts', import.meta.url));
  const total = 1_000_000;
  const child = spawn(process.execPath, [fixture, path, String(total)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));

  const acknowledged: bigint[] = [];
  for await (const line of createInterface({ input: child.stdout })) {
    acknowledged.push(BigInt(line));
    if (acknowledged.length === 500) child.kill('SIGKILL');
  }
  t.is(await exited, 'SIGKILL');

  const store = createSqliteEventStore({ path });
  t.teardown(() => store.close());
  const stored = new Set((await store.readAll()).map((recorded) => recorded.position));
  t.true(acknowledged.length >= 500 && acknowledged.length < total);
  t.deepEqual(
    acknowledged.filter((position) => !stored.has(position)),
    [],
  );
});
