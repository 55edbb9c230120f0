import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isStoreError, type NewEvent, type ReadStore, StoreError } from '../../domain/ports.ts';
import { createSqliteEventStore } from '../../infra/eventStore/sqlite/index.ts';
import { createSqliteReadStore } from '../../infra/readStore/sqlite/index.ts';
import { createProjector } from '../../projections/projector.ts';
import type { Projection } from '../../projections/readModels.ts';

const note = (text: string): NewEvent => ({
  type: 'NoteWritten',
  schemaVersion: 1,
  data: { text },
  metadata: { userId: 'u', occurredAt: new Date(0).toISOString(), traceId: 't', correlationId: 'c', causationId: 'c' },
});

const notes: Projection = {
  name: 'notes',
  version: 1,
  streamPrefixes: ['note-'],
  indexes: { notes: [] },
  async apply(event, store) {
    await store.put('notes', event.streamId, { text: (event.data as { text: string }).text });
  },
};

/** A read store whose writes fail as a MongoDB outage does while `down` is set. */
const flaky = (store: ReadStore) => {
  const state = { down: false };
  const guard =
    <A extends unknown[], R>(operation: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> =>
      state.down ? Promise.reject(new StoreError('UNAVAILABLE', 'MongoDB unavailable (test)')) : operation(...args);
  const wrapped: ReadStore = {
    ...store,
    get: guard(store.get),
    put: guard(store.put),
    find: guard(store.find),
    getCheckpoint: guard(store.getCheckpoint),
    setCheckpoint: guard(store.setCheckpoint),
  };
  return { store: wrapped, state };
};

test('a read store outage fails waiting commands as UNAVAILABLE, and the projection goes on by itself once it is back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-projector-outage-'));
  const eventStore = createSqliteEventStore({ path: join(dir, 'events.db') });
  const sqlite = createSqliteReadStore({ path: join(dir, 'read-models.db') });
  const { store: readStore, state } = flaky(sqlite);
  const outages: number[] = [];
  const stopped: Error[] = [];
  const projector = createProjector({
    eventStore,
    readStore,
    projections: [notes],
    onError: (error) => stopped.push(error),
    onOutage: (_error, retryInMs) => outages.push(retryInMs),
  });
  t.teardown(async () => {
    await projector.stop();
    await eventStore.close();
    await sqlite.close();
    await rm(dir, { recursive: true, force: true });
  });
  await projector.start();
  const first = await eventStore.append('note-1', [note('before')], 'noStream');
  await projector.waitFor(first.position);

  state.down = true;
  const during = await eventStore.append('note-2', [note('during')], 'noStream');
  const waited = await t.throwsAsync(projector.waitFor(during.position));
  t.true(isStoreError(waited, 'UNAVAILABLE'), String(waited));
  const later = await eventStore.append('note-3', [note('later')], 'noStream');
  t.true(isStoreError(await projector.waitFor(later.position).catch((error: unknown) => error), 'UNAVAILABLE'));

  state.down = false;
  await projector.waitFor(later.position, 20_000);
  t.deepEqual(await readStore.get('notes', 'note-2'), { text: 'during' });
  t.deepEqual(await readStore.get('notes', 'note-3'), { text: 'later' });
  t.deepEqual(stopped, [], 'an outage does not stop the projection');
  t.true(outages.length >= 1);
  const after = await eventStore.append('note-4', [note('after')], 'noStream');
  await projector.waitFor(after.position);
  t.deepEqual(await readStore.get('notes', 'note-4'), { text: 'after' });
});

test('a handler that fails for another reason still stops the projection for good', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-projector-failure-'));
  const eventStore = createSqliteEventStore({ path: join(dir, 'events.db') });
  const readStore = createSqliteReadStore({ path: join(dir, 'read-models.db') });
  const stopped: Error[] = [];
  const broken: Projection = {
    ...notes,
    async apply(event, store) {
      if ((event.data as { text: string }).text === 'bad') throw new Error('a bug');
      await notes.apply(event, store);
    },
  };
  const projector = createProjector({ eventStore, readStore, projections: [broken], onError: (e) => stopped.push(e) });
  t.teardown(async () => {
    await projector.stop();
    await eventStore.close();
    await readStore.close();
    await rm(dir, { recursive: true, force: true });
  });
  await projector.start();
  const bad = await eventStore.append('note-1', [note('bad')], 'noStream');
  await t.throwsAsync(projector.waitFor(bad.position), { message: 'a bug' });
  t.is(stopped.length, 1);
});
