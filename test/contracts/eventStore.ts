import type { ExecutionContext, TestFn } from 'ava';
import { type EventStore, isStoreError, type NewEvent, type RecordedEvent } from '../../domain/ports.ts';

export interface EventStoreFixture {
  readonly store: EventStore;
  /** Closes the store and removes whatever the factory created. */
  readonly cleanup: () => Promise<void>;
}

const metadata = {
  userId: 'user-1',
  occurredAt: '2025-01-01T00:00:00.000Z',
  traceId: 'trace-1',
  correlationId: 'correlation-1',
  causationId: 'causation-1',
};

const event = (type: string, data: unknown = {}): NewEvent => ({ type, schemaVersion: 1, data, metadata });

const events = (count: number): NewEvent[] => Array.from({ length: count }, (_, index) => event('Counted', { index }));

const ids = (recorded: readonly RecordedEvent[]) => recorded.map((e) => `${e.streamId}@${e.revision}`);

const isWrongExpectedRevision = (error: unknown) => isStoreError(error, 'WRONG_EXPECTED_REVISION');

/** Collects what a subscription delivers and lets a test wait for a number of events. */
const recorder = () => {
  const received: RecordedEvent[] = [];
  let arrived = () => {};
  return {
    received,
    handler: (recorded: RecordedEvent) => {
      received.push(recorded);
      arrived();
    },
    async until(count: number) {
      while (received.length < count) await new Promise<void>((resolve) => (arrived = resolve));
    },
  };
};

/**
 * Registers the behaviour every EventStore adapter must show. `factory` returns a store whose log is
 * empty and which no other test uses, so the tests may run concurrently.
 */
export function eventStoreContract(test: TestFn, name: string, factory: () => Promise<EventStoreFixture>): void {
  const open = async (t: ExecutionContext) => {
    const { store, cleanup } = await factory();
    t.teardown(cleanup);
    return store;
  };

  test(`${name}: an appended event reads back as it was written`, async (t) => {
    const store = await open(t);
    const data = { name: 'résumé ✓', count: 3, tags: ['a', 'b'], nested: { ok: true, none: null } };
    const result = await store.append(
      'function-1',
      [{ type: 'FunctionCreated', schemaVersion: 2, data, metadata }],
      'noStream',
    );

    const [recorded, ...rest] = await store.readStream('function-1');
    t.deepEqual(rest, []);
    t.like(recorded, { streamId: 'function-1', revision: 0, type: 'FunctionCreated', schemaVersion: 2 });
    t.deepEqual(recorded?.data, data);
    t.deepEqual(recorded?.metadata, metadata);
    t.is(recorded?.position, result.position);
    t.is(result.nextExpectedRevision, 0);
    const recordedAt = recorded?.recordedAt ?? 'missing';
    t.is(new Date(recordedAt).toISOString(), recordedAt);
  });

  test(`${name}: reading a stream that does not exist gives no events`, async (t) => {
    const store = await open(t);
    t.deepEqual(await store.readStream('nothing-here'), []);
  });

  test(`${name}: noStream succeeds on a new stream and fails on an existing one`, async (t) => {
    const store = await open(t);
    await store.append('user-1', [event('UserRegistered')], 'noStream');

    const error = await t.throwsAsync(store.append('user-1', [event('UserRegistered')], 'noStream'));
    t.true(isWrongExpectedRevision(error));
    t.regex(error?.message ?? '', /user-1/);
    t.is((await store.readStream('user-1')).length, 1);
  });

  test(`${name}: an exact expected revision must be the revision of the last event`, async (t) => {
    const store = await open(t);
    await store.append('user-1', events(2), 'noStream');

    for (const wrong of [0, 2, 5]) {
      const error = await t.throwsAsync(store.append('user-1', [event('Renamed')], wrong));
      t.true(isWrongExpectedRevision(error), `expected ${wrong}`);
    }
    t.true(isWrongExpectedRevision(await t.throwsAsync(store.append('user-2', [event('Renamed')], 0))));
    const result = await store.append('user-1', [event('Renamed')], 1);
    t.is(result.nextExpectedRevision, 2);
    t.deepEqual(ids(await store.readStream('user-1')), ['user-1@0', 'user-1@1', 'user-1@2']);
  });

  test(`${name}: 'any' appends whatever the stream holds`, async (t) => {
    const store = await open(t);
    t.is((await store.append('log-1', [event('Noted')], 'any')).nextExpectedRevision, 0);
    t.is((await store.append('log-1', events(2), 'any')).nextExpectedRevision, 2);
    t.is((await store.readStream('log-1')).length, 3);
  });

  test(`${name}: revisions go up by one per event and positions increase`, async (t) => {
    const store = await open(t);
    const first = await store.append('order-1', events(3), 'noStream');
    await store.append('order-2', events(1), 'noStream');
    const second = await store.append('order-1', events(2), first.nextExpectedRevision);
    t.is(first.nextExpectedRevision, 2);
    t.is(second.nextExpectedRevision, 4);

    const stream = await store.readStream('order-1');
    t.deepEqual(
      stream.map((e) => e.revision),
      [0, 1, 2, 3, 4],
    );
    t.deepEqual(
      stream.map((e) => (e.data as { index: number }).index),
      [0, 1, 2, 0, 1],
    );
    t.true(stream.every((e, i) => i === 0 || e.position > (stream[i - 1]?.position ?? -1n)));
    t.is(stream.at(-1)?.position, second.position);
  });

  test(`${name}: appending no events changes nothing and reports where the stream is`, async (t) => {
    const store = await open(t);
    t.deepEqual(await store.append('empty-1', [], 'noStream'), { nextExpectedRevision: -1, position: -1n });
    const written = await store.append('empty-1', events(2), 'noStream');

    t.deepEqual(await store.append('empty-1', [], 1), written);
    t.deepEqual(await store.append('empty-1', [], 'any'), written);
    t.true(isWrongExpectedRevision(await t.throwsAsync(store.append('empty-1', [], 'noStream'))));
    t.is((await store.readAll()).length, 2);
  });

  test(`${name}: readAll gives every stream in position order, after a position and up to a count`, async (t) => {
    const store = await open(t);
    t.deepEqual(await store.readAll(), []);
    await store.append('a-1', events(2), 'noStream');
    await store.append('b-1', events(1), 'noStream');
    await store.append('a-1', events(2), 1);

    const all = await store.readAll();
    t.deepEqual(ids(all), ['a-1@0', 'a-1@1', 'b-1@0', 'a-1@2', 'a-1@3']);
    const positionOf = (index: number) => all[index]?.position ?? -1n;
    t.deepEqual(ids(await store.readAll({ after: positionOf(1) })), ids(all.slice(2)));
    t.deepEqual(ids(await store.readAll({ maxCount: 2 })), ids(all.slice(0, 2)));
    t.deepEqual(ids(await store.readAll({ after: positionOf(0), maxCount: 3 })), ids(all.slice(1, 4)));
    t.deepEqual(await store.readAll({ after: positionOf(4) }), []);
  });

  test(`${name}: headPosition is -1 on an empty log, then the position of the last event`, async (t) => {
    const store = await open(t);
    t.is(await store.headPosition(), -1n);
    await store.append('a-1', events(3), 'noStream');
    const last = await store.append('b-1', events(1), 'noStream');
    t.is(await store.headPosition(), last.position);
    t.is((await store.readAll()).at(-1)?.position, last.position);
  });

  test(`${name}: a subscription catches up, then receives live events, once each and in order`, async (t) => {
    const store = await open(t);
    for (let i = 0; i < 60; i++) await store.append(`before-${i % 3}`, events(10), 'any');

    let running = 0;
    let overlapped = false;
    const { received, handler, until } = recorder();
    const subscription = store.subscribeToAll(async (recorded) => {
      overlapped ||= running > 0;
      running++;
      await new Promise((resolve) => setImmediate(resolve));
      running--;
      handler(recorded);
    });
    t.teardown(() => subscription.close());
    // Appended while the subscription is still catching up.
    await Promise.all(Array.from({ length: 30 }, (_, i) => store.append(`during-${i}`, events(10), 'noStream')));
    await until(900);
    await store.append('after-0', events(1), 'noStream');
    await until(901);

    t.false(overlapped);
    t.deepEqual(ids(received), ids(await store.readAll()));
  });

  test(`${name}: a subscription starts after the given position`, async (t) => {
    const store = await open(t);
    const start = await store.append('a-1', events(2), 'noStream');
    await store.append('a-2', events(1), 'noStream');

    const { received, handler, until } = recorder();
    const subscription = store.subscribeToAll(handler, { after: start.position });
    t.teardown(() => subscription.close());
    await store.append('a-3', events(1), 'noStream');
    await until(2);
    t.deepEqual(ids(received), ['a-2@0', 'a-3@0']);
  });

  test(`${name}: a subscription delivers only the streams with the given prefixes`, async (t) => {
    const store = await open(t);
    await store.append('function-1', events(1), 'noStream');
    await store.append('user-1', events(1), 'noStream');
    await store.append('deployment-1', events(1), 'noStream');

    const { received, handler, until } = recorder();
    const subscription = store.subscribeToAll(handler, { streamPrefixes: ['function-', 'deployment-'] });
    t.teardown(() => subscription.close());
    await store.append('user-2', events(1), 'noStream');
    await store.append('function-2', events(1), 'noStream');
    await until(3);
    t.deepEqual(ids(received), ['function-1@0', 'deployment-1@0', 'function-2@0']);
  });

  test(`${name}: a handler error stops the subscription and is reported`, async (t) => {
    const store = await open(t);
    await store.append('a-1', events(3), 'noStream');

    const witness = recorder();
    const witnessSubscription = store.subscribeToAll(witness.handler);
    t.teardown(() => witnessSubscription.close());
    const failure = new Error('handler failed');
    const delivered: RecordedEvent[] = [];
    const reported = new Promise<Error>((resolve) => {
      const subscription = store.subscribeToAll(
        (recorded) => {
          delivered.push(recorded);
          if (delivered.length === 2) throw failure;
        },
        { onError: resolve },
      );
      t.teardown(() => subscription.close());
    });
    t.is(await reported, failure);

    await store.append('a-2', events(1), 'noStream');
    await witness.until(4);
    t.deepEqual(ids(delivered), ['a-1@0', 'a-1@1']);
  });

  test(`${name}: a closed subscription receives nothing more`, async (t) => {
    const store = await open(t);
    const witness = recorder();
    const witnessSubscription = store.subscribeToAll(witness.handler);
    t.teardown(() => witnessSubscription.close());
    const { received, handler, until } = recorder();
    const subscription = store.subscribeToAll(handler);
    await store.append('a-1', events(1), 'noStream');
    await until(1);

    await subscription.close();
    await store.append('a-2', events(2), 'noStream');
    await witness.until(3);
    t.deepEqual(ids(received), ['a-1@0']);
  });

  test(`${name}: closing a subscription waits for the running handler call`, async (t) => {
    const store = await open(t);
    await store.append('a-1', events(1), 'noStream');
    let finished = false;
    let started = () => {};
    const handlerStarted = new Promise<void>((resolve) => (started = resolve));
    const subscription = store.subscribeToAll(async () => {
      started();
      await new Promise((resolve) => setTimeout(resolve, 50));
      finished = true;
    });
    await handlerStarted;
    await subscription.close();
    t.true(finished);
  });

  test(`${name}: of concurrent appends expecting the same revision exactly one wins`, async (t) => {
    const store = await open(t);
    await store.append('account-1', events(1), 'noStream');

    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => store.append('account-1', [event('Deposited', { i })], 0)),
    );
    const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
    t.is(won.length, 1);
    t.is(won[0]?.value.nextExpectedRevision, 1);
    t.true(lost.every((outcome) => isWrongExpectedRevision(outcome.reason)));
    t.is((await store.readStream('account-1')).length, 2);
  });

  test(`${name}: of concurrent appends creating the same stream exactly one wins`, async (t) => {
    const store = await open(t);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => store.append('function-1', [event('FunctionCreated')], 'noStream')),
    );
    t.is(outcomes.filter((outcome) => outcome.status === 'fulfilled').length, 1);
    t.is(
      outcomes.filter((outcome) => isWrongExpectedRevision(outcome.status === 'rejected' && outcome.reason)).length,
      9,
    );
    t.is((await store.readStream('function-1')).length, 1);
  });

  test(`${name}: a failed append does not affect appends made alongside it`, async (t) => {
    const store = await open(t);
    await store.append('a-1', events(1), 'noStream');
    const [wrong, right, other] = await Promise.allSettled([
      store.append('a-1', events(1), 'noStream'),
      store.append('a-1', events(2), 0),
      store.append('b-1', events(1), 'noStream'),
    ]);
    t.true(wrong?.status === 'rejected' && isWrongExpectedRevision(wrong.reason));
    t.like(right, { status: 'fulfilled', value: { nextExpectedRevision: 2 } });
    t.like(other, { status: 'fulfilled', value: { nextExpectedRevision: 0 } });
    t.deepEqual(ids(await store.readAll()), ['a-1@0', 'a-1@1', 'a-1@2', 'b-1@0']);
  });

  test(`${name}: many concurrent appends to different streams all succeed`, async (t) => {
    const store = await open(t);
    const count = 200;
    const results = await Promise.all(
      Array.from({ length: count }, (_, i) =>
        store.append(`function-${i}`, [event('FunctionCreated', { i })], 'noStream'),
      ),
    );
    t.is(new Set(results.map((result) => result.position)).size, count);
    const all = await store.readAll();
    t.is(all.length, count);
    t.deepEqual(new Set(all.map((e) => e.streamId)).size, count);
    t.deepEqual(
      (await store.readStream('function-123')).map((e) => e.data),
      [{ i: 123 }],
    );
  });
}
