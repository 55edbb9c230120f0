import { randomUUID } from 'node:crypto';
import test from 'ava';
import { assignSticky } from '../../../infra/bus/kafka/assigner.ts';
import { createKafkaBus, isBusError, type KafkaBusOptions } from '../../../infra/bus/kafka/index.ts';
import {
  countDelivery,
  encodeProgress,
  markAbsent,
  markHandled,
  restoreProgress,
} from '../../../infra/bus/kafka/progress.ts';
import { isServiceUnreachable } from '../../../infra/serviceErrors.ts';
import { invocationBusContract, recorder } from '../../contracts/invocationBus.ts';

// The Kafka that scripts/services.sh runs (.ci/run starts it and exports the variable).
const brokers = process.env.STRATA_KAFKA_BROKERS;
// STRATA_SERVICES_REQUIRED=1 (set by .ci/run) turns a missing variable into a failure instead of a skip.
const required = process.env.STRATA_SERVICES_REQUIRED === '1';

const silent = { warn() {}, info() {} };

// Fast retries and heartbeats, as tests should have: a rebalance waits for every member's next heartbeat.
const fast = (brokerList: readonly string[], clientId: string, overrides: Partial<KafkaBusOptions> = {}) =>
  createKafkaBus({
    brokers: brokerList,
    clientId,
    logger: silent,
    retry: { initialRetryTime: 50, maxRetryTime: 1_000, retries: 5 },
    connectionTimeoutMs: 1_000,
    redelivery: { initialMs: 5, maxMs: 50 },
    consumer: { heartbeatIntervalMs: 100, sessionTimeoutMs: 6_000, maxWaitTimeMs: 20, closeTimeoutMs: 10_000 },
    ...overrides,
  });

// --- what needs no broker ---

test('kafka: progress restored from commit metadata skips handled messages and goes on counting attempts', (t) => {
  const progress = restoreProgress(10, null);
  t.is(countDelivery(progress, 10), 1);
  t.is(countDelivery(progress, 11), 1);
  t.is(countDelivery(progress, 12), 1);
  t.is(countDelivery(progress, 11), 2);
  markHandled(progress, 12);
  t.is(progress.committed, 10, 'a message handled out of order holds no commit');

  const restored = restoreProgress(progress.committed, encodeProgress(progress));
  t.is(restored.committed, 10);
  t.deepEqual([...restored.handled], [12]);
  t.is(countDelivery(restored, 10), 2, 'delivered before the hand-over');
  t.is(countDelivery(restored, 11), 3, 'delivered twice before the hand-over');
  t.is(countDelivery(restored, 13), 1, 'never delivered');

  markHandled(restored, 10);
  markHandled(restored, 11);
  t.is(restored.committed, 13, 'the handled message above is passed over');
  markAbsent(restored, 13, 20);
  t.is(restored.committed, 20, 'offsets missing from the log count as handled');
});

test('kafka: progress metadata of a foreign committer, or too long to commit, is safe to read', (t) => {
  t.is(restoreProgress(5, 'checkpoint-7').committed, 5);
  t.is(restoreProgress(5, '{"strata":1,"d":"x","h":[[1]],"a":null}').deliveredEnd, 5);
  const progress = restoreProgress(0, null);
  for (let offset = 0; offset < 5_000; offset += 1) countDelivery(progress, offset);
  for (let offset = 1; offset < 5_000; offset += 2) markHandled(progress, offset);
  const metadata = encodeProgress(progress);
  t.true(metadata.length < 4_000, `metadata of ${metadata.length} characters would fail the commit`);
  const restored = restoreProgress(0, metadata);
  t.is(restored.deliveredEnd, 5_000);
  t.true(restored.handled.has(1), 'the lowest handled ranges are kept');
  t.true(restored.handled.size < 2_500);
});

test('kafka: the sticky assigner keeps partitions with their holders and hands each topic only to its subscribers', (t) => {
  const partitions = new Map([
    ['sync', [0, 1, 2, 3]],
    ['async', [0, 1, 2, 3]],
  ]);
  const first = assignSticky(
    [
      { memberId: 'a', topics: ['sync'], owned: { sync: [0, 1, 2, 3] } },
      { memberId: 'b', topics: ['sync'], owned: {} },
    ],
    partitions,
  );
  t.deepEqual(first.get('a'), { sync: [0, 1] });
  t.deepEqual(first.get('b'), { sync: [2, 3] });

  const mixed = assignSticky(
    [
      { memberId: 'a-sync', topics: ['sync'], owned: { sync: [2, 3] } },
      { memberId: 'b-async', topics: ['async'], owned: {} },
      { memberId: 'c-sync', topics: ['sync'], owned: { sync: [0, 1] } },
    ],
    partitions,
  );
  t.deepEqual(mixed.get('a-sync'), { sync: [2, 3] });
  t.deepEqual(mixed.get('c-sync'), { sync: [0, 1] });
  t.deepEqual(mixed.get('b-async'), { async: [0, 1, 2, 3] });
});

test('kafka: a cluster never reached fails calls within reachTimeoutMs with one line naming Kafka and its address', async (t) => {
  const bus = fast(['127.0.0.1:1'], 'unreachable', { reachTimeoutMs: 500 });
  t.teardown(() => bus.close());
  const started = Date.now();
  const connecting = await t.throwsAsync(bus.connect());
  t.true(Date.now() - started < 5_000, 'bounded by reachTimeoutMs, not by kafkajs retries');
  t.true(isServiceUnreachable(connecting), String(connecting));
  t.is(
    connecting?.message,
    'cannot reach Kafka at 127.0.0.1:1 (connection refused); is it running? (STRATA_KAFKA_BROKERS)',
  );
  for (const call of [
    () => bus.ensureTopics([{ name: 'jobs' }]),
    () => bus.publish('jobs', [{ key: 'k', value: 'v' }]),
    () => bus.consume({ topic: 'jobs', group: 'g' }, async () => {}),
  ]) {
    const error = await t.throwsAsync(call());
    t.like(error, { service: 'Kafka', address: '127.0.0.1:1', reason: 'connection refused' });
  }
  const checked = await t.throwsAsync(bus.check());
  t.true(isBusError(checked, 'UNAVAILABLE'), String(checked));
  t.is(checked?.message, 'Kafka at 127.0.0.1:1 does not answer (connection refused)');
});

test('kafka: a broker name that does not resolve is reported as such', async (t) => {
  const bus = fast(['strata-no-such-host.invalid:9092'], 'unresolvable', { reachTimeoutMs: 500 });
  t.teardown(() => bus.close());
  const error = await t.throwsAsync(bus.connect());
  t.is(
    error?.message,
    'cannot reach Kafka at strata-no-such-host.invalid:9092 (host not found); check the host name (STRATA_KAFKA_BROKERS)',
  );
});

// --- on a real broker ---

if (brokers === undefined || brokers === '') {
  if (required) {
    test('kafka: the InvocationBus contract (STRATA_KAFKA_BROKERS is not set but STRATA_SERVICES_REQUIRED=1)', (t) => {
      t.fail('STRATA_KAFKA_BROKERS is not set: run scripts/services.sh start and eval "$(scripts/services.sh env)"');
    });
  } else {
    console.warn(
      'NOTICE: the Kafka InvocationBus contract is skipped: STRATA_KAFKA_BROKERS is not set (scripts/services.sh start)',
    );
    test.skip('kafka: the InvocationBus contract (set STRATA_KAFKA_BROKERS, e.g. 127.0.0.1:9092)', () => {});
  }
} else {
  const brokerList = brokers.split(',').map((broker) => broker.trim());

  // One client per test, as another process would have; topics and groups are new in every test.
  invocationBusContract(test, 'kafka', async () => {
    const bus = fast(brokerList, `contract-${randomUUID().slice(0, 8)}`);
    return {
      bus,
      second: async () => fast(brokerList, `contract-second-${randomUUID().slice(0, 8)}`),
      cleanup: () => bus.close(),
    };
  });

  test('kafka: a group keeps what it handled across a restart of its only consumer, with no message run twice', async (t) => {
    const bus = fast(brokerList, 'restart-first');
    t.teardown(() => bus.close());
    const topic = `restart-${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([{ name: topic, partitions: 1 }]);
    let release = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    // A slow first message holds the committed offset back while the ones after it are handled.
    const first = recorder(async (message) => {
      if (message.value === 'slow') await held;
    });
    const consumer = await bus.consume({ topic, group: 'restarting', concurrency: 4 }, first.handler);
    await bus.publish(topic, [
      { key: 'k', value: 'slow' },
      { key: 'k', value: 'fast-1' },
      { key: 'k', value: 'fast-2' },
    ]);
    await first.until(() => first.received.length === 3, 'three deliveries');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = consumer.close();
    release();
    await closing;

    const other = fast(brokerList, 'restart-second');
    t.teardown(() => other.close());
    const second = recorder();
    await other.consume({ topic, group: 'restarting', concurrency: 4 }, second.handler);
    await bus.publish(topic, [{ key: 'k', value: 'after' }]);
    await second.until(() => second.values().includes('after'), 'the message after');
    t.deepEqual(second.values(), ['after']);
  });

  test('kafka: a message given up by a closing consumer is redelivered with its attempts counted on', async (t) => {
    const bus = fast(brokerList, 'attempts-first');
    t.teardown(() => bus.close());
    const topic = `attempts-${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([{ name: topic, partitions: 1 }]);
    const first = recorder(async (message) => {
      if (message.deliveryAttempt < 3) throw new Error('not yet');
      await new Promise<void>((_, reject) =>
        message.signal?.addEventListener('abort', () => reject(new Error('stop'))),
      );
    });
    const consumer = await bus.consume({ topic, group: 'counting' }, first.handler);
    await bus.publish(topic, [{ key: 'k', value: 'stubborn' }]);
    await first.until(() => first.received.length === 3, 'three attempts');
    await consumer.close();

    const other = fast(brokerList, 'attempts-second');
    t.teardown(() => other.close());
    const second = recorder();
    await other.consume({ topic, group: 'counting' }, second.handler);
    await second.until(() => second.received.length === 1, 'the redelivery');
    t.deepEqual(
      first.received.map((message) => message.deliveryAttempt),
      [1, 2, 3],
    );
    t.is(second.received[0]?.deliveryAttempt, 4);
  });

  test('kafka: a consumer joining takes over some partitions; work on the others goes on undisturbed', async (t) => {
    const first = fast(brokerList, 'rebalance-first');
    const second = fast(brokerList, 'rebalance-second');
    t.teardown(() => Promise.all([first.close(), second.close()]));
    const topic = `rebalance-${randomUUID().slice(0, 8)}`;
    await first.ensureTopics([{ name: topic, partitions: 4 }]);
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const aborted = new Set<string>();
    const completed: string[] = [];
    const holding = recorder(async (message) => {
      await new Promise<void>((resolve, reject) => {
        message.signal?.addEventListener('abort', () => {
          aborted.add(message.value);
          reject(new Error('taken back'));
        });
        void released.then(resolve);
      });
      completed.push(message.value);
    });
    await first.consume({ topic, group: 'sticky', concurrency: 32 }, holding.handler);
    const published = Array.from({ length: 16 }, (_, index) => `job-${index}`);
    await first.publish(
      topic,
      published.map((value) => ({ key: value, value })),
    );
    await holding.until(() => holding.received.length === 16, 'every job held');
    const partitionsHeld = new Set(holding.received.map((message) => message.partition));

    const taking = recorder(async (message) => {
      completed.push(message.value);
    });
    await second.consume({ topic, group: 'sticky', concurrency: 32 }, taking.handler);
    await taking.until(() => taking.received.length === aborted.size && aborted.size > 0, 'the jobs taken over');
    release();
    await holding.until(() => completed.length === 16, 'every job completed');

    t.is(partitionsHeld.size, 4, 'the keys did not cover the partitions');
    const moved = new Set(taking.received.map((message) => message.partition));
    t.is(moved.size, 2, 'two of the four partitions move to the new consumer');
    t.deepEqual(completed.slice().sort(), published.slice().sort(), 'each job completed exactly once');
    t.deepEqual(taking.values().sort(), [...aborted].sort(), 'only the jobs of moved partitions were taken back');
    t.true(taking.received.every((message) => message.deliveryAttempt === 2));
  });

  test('kafka: a namespace prefixes topics and groups on the cluster, and only there', async (t) => {
    const namespace = `ns-${randomUUID().slice(0, 8)}.`;
    const spaced = fast(brokerList, 'namespaced', { namespace });
    const plain = fast(brokerList, 'plain');
    t.teardown(() => Promise.all([spaced.close(), plain.close()]));
    await spaced.ensureTopics([{ name: 'jobs' }]);
    const unknown = await t.throwsAsync(plain.publish('jobs', [{ key: 'k', value: 'v' }]));
    t.true(isBusError(unknown, 'UNKNOWN_TOPIC'));
    await plain.publish(`${namespace}jobs`, [{ key: 'k', value: 'from outside' }]);
    const consumed = recorder();
    await spaced.consume({ topic: 'jobs', group: 'workers' }, consumed.handler);
    await consumed.until(() => consumed.received.length === 1, 'the message');
    t.like(consumed.received[0], { topic: 'jobs', value: 'from outside' });
  });

  test('kafka: a message larger than the default 1 MB limit goes through, and a too large one fails alone', async (t) => {
    const bus = fast(brokerList, 'large', { maxMessageBytes: 4 * 1024 * 1024 });
    t.teardown(() => bus.close());
    const topic = `large-${randomUUID().slice(0, 8)}`;
    await bus.ensureTopics([{ name: topic, partitions: 1 }]);
    const big = 'x'.repeat(2 * 1024 * 1024);
    const tooBig = 'y'.repeat(5 * 1024 * 1024);
    const [fits, fails, small] = await Promise.allSettled([
      bus.publish(topic, [{ key: 'k', value: big }]),
      bus.publish(topic, [{ key: 'k', value: tooBig }]),
      bus.publish(topic, [{ key: 'k', value: 'small' }]),
    ]);
    t.is(fits?.status, 'fulfilled');
    t.is(small?.status, 'fulfilled');
    t.is(fails?.status, 'rejected');
    t.true(fails?.status === 'rejected' && isBusError(fails.reason, 'INVALID_ARGUMENT'), String(fails));
    const consumed = recorder();
    await bus.consume({ topic, group: 'reader' }, consumed.handler);
    await consumed.until(() => consumed.received.length === 2, 'both messages');
    t.deepEqual(
      consumed
        .values()
        .map((value) => value.length)
        .sort((a, b) => a - b),
      [5, big.length],
    );
  });
}
