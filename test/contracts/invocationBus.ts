import { randomUUID } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import type { BusMessage, DeliveredMessage, InvocationBus } from '../../domain/ports.ts';

export interface InvocationBusFixture {
  readonly bus: InvocationBus;
  /** Opens another client of the same bus (another process's, say); the suite closes it. */
  readonly second?: () => Promise<InvocationBus>;
  /** Closes the bus and removes whatever the factory created. */
  readonly cleanup: () => Promise<void>;
}

// Only a guard against a hung test, so that it fails saying what it was waiting for.
const patienceMs = 30_000;

/** Collects deliveries and lets a test wait until what it expects has arrived. */
export const recorder = (onMessage?: (message: DeliveredMessage) => Promise<void> | void) => {
  const received: DeliveredMessage[] = [];
  const waiters = new Set<() => void>();
  return {
    received,
    values: () => received.map((message) => message.value),
    handler: async (message: DeliveredMessage) => {
      received.push(message);
      for (const wake of waiters) wake();
      await onMessage?.(message);
    },
    async until(done: () => boolean, what: string) {
      const deadline = Date.now() + patienceMs;
      while (!done()) {
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}; received ${received.length}`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            clearTimeout(timer);
            resolve();
          };
          const timer = setTimeout(wake, 100);
          waiters.add(wake);
        });
      }
    },
  };
};

const messages = (prefix: string, count: number): BusMessage[] =>
  Array.from({ length: count }, (_, index) => ({ key: `${prefix}-${index % 7}`, value: `${prefix}-${index}` }));

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

const codeOf = (error: unknown) => (error as { code?: unknown } | undefined)?.code;

/**
 * Registers the behaviour every InvocationBus adapter must show. Topic names are new in every test, so
 * `factory` may hand out one shared bus (a Kafka cluster) or a fresh one per test.
 */
export function invocationBusContract(test: TestFn, name: string, factory: () => Promise<InvocationBusFixture>): void {
  const open = async (t: ExecutionContext) => {
    const fixture = await factory();
    t.teardown(fixture.cleanup);
    const second = async () => {
      if (!fixture.second) return fixture.bus;
      const other = await fixture.second();
      t.teardown(() => other.close());
      return other;
    };
    return { bus: fixture.bus, second };
  };
  const topicName = (label: string) => `${label}-${randomUUID().slice(0, 8)}`;

  for (const ephemeral of [false, true]) {
    const kind = ephemeral ? 'ephemeral' : 'durable';

    test(`${name}: a ${kind} topic delivers key, value and headers as published`, async (t) => {
      const { bus } = await open(t);
      const topic = topicName('round-trip');
      await bus.ensureTopics([{ name: topic, ephemeral }]);
      await bus.publish(topic, [
        {
          key: 'order-1',
          value: '{"amount":12.5,"note":"naïve ✓\\n"}',
          headers: { 'content-type': 'json', trace: 't-1' },
        },
        { key: 'order-2', value: '' },
      ]);
      const consumed = recorder();
      await bus.consume({ topic, group: 'readers' }, consumed.handler);
      await consumed.until(() => consumed.received.length === 2, 'two messages');

      // Different keys may land in different partitions, which keep no order between them.
      const first = consumed.received.find((message) => message.key === 'order-1');
      const second = consumed.received.find((message) => message.key === 'order-2');
      t.like(first, {
        topic,
        key: 'order-1',
        value: '{"amount":12.5,"note":"naïve ✓\\n"}',
        headers: { 'content-type': 'json', trace: 't-1' },
        deliveryAttempt: 1,
      });
      t.like(second, { topic, key: 'order-2', value: '', headers: {}, deliveryAttempt: 1 });
      t.deepEqual(second?.headers, {});
      for (const message of consumed.received) {
        t.true(Number.isInteger(message.partition) && message.partition >= 0);
        t.regex(message.offset, /^\d+$/);
        t.is(new Date(message.timestamp).toISOString(), message.timestamp);
      }
      t.not(`${first?.partition}:${first?.offset}`, `${second?.partition}:${second?.offset}`);
    });

    test(`${name}: a handler that throws on a ${kind} topic gets the message again, as attempt 2`, async (t) => {
      const { bus } = await open(t);
      const topic = topicName('retry');
      await bus.ensureTopics([{ name: topic, ephemeral }]);
      const consumed = recorder((message) => {
        if (message.value === 'poison' && message.deliveryAttempt === 1) throw new Error('handler failed');
      });
      await bus.consume({ topic, group: 'workers', concurrency: 2 }, consumed.handler);
      await bus.publish(topic, [
        { key: 'a', value: 'poison' },
        { key: 'b', value: 'fine' },
      ]);
      await consumed.until(() => consumed.received.length === 3, 'the redelivery');

      const poison = consumed.received.filter((message) => message.value === 'poison');
      t.deepEqual(
        poison.map((message) => message.deliveryAttempt),
        [1, 2],
      );
      t.is(poison[0]?.offset, poison[1]?.offset);
      t.is(poison[1]?.key, 'a');
      t.deepEqual(
        consumed.received.filter((message) => message.value === 'fine').map((message) => message.deliveryAttempt),
        [1],
      );
    });
  }

  test(`${name}: an unconfirmed publish (from another client too) is delivered like a confirmed one, in order`, async (t) => {
    const { bus, second } = await open(t);
    const other = await second();
    const topic = topicName('unconfirmed');
    await bus.ensureTopics([{ name: topic, partitions: 1 }]);
    const consumed = recorder();
    await bus.consume({ topic, group: 'readers', concurrency: 1 }, consumed.handler);
    for (const publisher of [bus, other]) {
      await publisher.publish(topic, [{ key: 'k', value: 'first' }], { confirm: false });
      await publisher.publish(topic, [{ key: 'k', value: 'second' }]);
    }
    await consumed.until(() => consumed.received.length === 4, 'four messages');
    t.deepEqual(consumed.values(), ['first', 'second', 'first', 'second']);
  });

  test(`${name}: one consumer with concurrency 1 gets messages one at a time, in publishing order`, async (t) => {
    const { bus } = await open(t);
    const topic = topicName('ordered');
    // Order holds within a partition (Kafka's promise, and the port's: it says nothing across partitions).
    await bus.ensureTopics([{ name: topic, partitions: 1 }]);
    const published = messages('m', 150);
    await bus.publish(topic, published.slice(0, 100));
    let running = 0;
    let mostRunning = 0;
    const consumed = recorder(async () => {
      running += 1;
      mostRunning = Math.max(mostRunning, running);
      await tick();
      running -= 1;
    });
    await bus.consume({ topic, group: 'in-order', concurrency: 1 }, consumed.handler);
    for (const message of published.slice(100)) await bus.publish(topic, [message]);
    await consumed.until(() => consumed.received.length === published.length, 'every message');

    t.deepEqual(
      consumed.values(),
      published.map((message) => message.value),
    );
    const offsets = consumed.received.map((message) => BigInt(message.offset));
    t.true(offsets.every((offset, index) => index === 0 || offset > (offsets[index - 1] ?? -1n)));
    t.is(mostRunning, 1);
  });

  test(`${name}: every group gets every message`, async (t) => {
    const { bus, second } = await open(t);
    const other = await second();
    const topic = topicName('fan-out');
    await bus.ensureTopics([{ name: topic }]);
    const records = recorder();
    const metrics = recorder();
    await bus.consume({ topic, group: 'records', concurrency: 4 }, records.handler);
    await other.consume({ topic, group: 'metrics', concurrency: 4 }, metrics.handler);
    const published = messages('event', 50);
    await bus.publish(topic, published);
    await records.until(() => records.received.length >= 50, 'the records group');
    await metrics.until(() => metrics.received.length >= 50, 'the metrics group');

    const expected = published.map((message) => message.value).sort();
    t.deepEqual(records.values().sort(), expected);
    t.deepEqual(metrics.values().sort(), expected);
  });

  test(`${name}: consumers of one group share its messages, each handled once`, async (t) => {
    const { bus, second } = await open(t);
    const other = await second();
    const topic = topicName('shared');
    await bus.ensureTopics([{ name: topic, partitions: 4 }]);
    const everything: string[] = [];
    const slowly = async (message: DeliveredMessage) => {
      everything.push(message.value);
      for (let turn = 0; turn < 3; turn += 1) await tick();
    };
    const first = recorder(slowly);
    const secondConsumer = recorder(slowly);
    await bus.consume({ topic, group: 'pool', concurrency: 2 }, first.handler);
    await other.consume({ topic, group: 'pool', concurrency: 2 }, secondConsumer.handler);
    const published = Array.from({ length: 200 }, (_, index) => ({ key: `k-${index}`, value: `job-${index}` }));
    await bus.publish(topic, published);
    await first.until(() => everything.length >= 200, 'every job');

    t.deepEqual(everything.slice().sort(), published.map((message) => message.value).sort());
    t.true(first.received.length > 0, 'the first consumer got none');
    t.true(secondConsumer.received.length > 0, 'the second consumer got none');
  });

  test(`${name}: what a closing consumer gives up is delivered to another consumer of its group`, async (t) => {
    const { bus, second } = await open(t);
    const topic = topicName('hand-over');
    await bus.ensureTopics([{ name: topic }]);
    const signals: AbortSignal[] = [];
    const leaving = recorder(async (message) => {
      const { signal } = message;
      if (signal === undefined) throw new Error('a delivered message has no signal');
      signals.push(signal);
      // Works until told to stop, then gives up, as a runner does with an invocation it cannot finish.
      await new Promise<void>((_, reject) => {
        if (signal.aborted) reject(new Error('stopped'));
        signal.addEventListener('abort', () => reject(new Error('stopped')), { once: true });
      });
    });
    const consumer = await bus.consume({ topic, group: 'pool', concurrency: 3 }, leaving.handler);
    await bus.publish(topic, messages('held', 3));
    await leaving.until(() => leaving.received.length === 3, 'the first consumer holding three messages');

    const other = await second();
    const staying = recorder();
    await other.consume({ topic, group: 'pool', concurrency: 3 }, staying.handler);
    await consumer.close();
    await staying.until(() => staying.received.length >= 3, 'the messages handed over');

    t.true(signals.every((signal) => signal.aborted));
    t.deepEqual(staying.values().sort(), leaving.values().sort());
    t.true(staying.received.every((message) => message.deliveryAttempt >= 2));
    t.deepEqual(
      staying.received.map((message) => message.offset).sort(),
      leaving.received.map((message) => message.offset).sort(),
    );
  });

  test(`${name}: closing a consumer lets a running handler finish, and its message counts as handled`, async (t) => {
    const { bus, second } = await open(t);
    const topic = topicName('finish');
    await bus.ensureTopics([{ name: topic }]);
    let finish = () => {};
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let signal: AbortSignal | undefined;
    const first = recorder(async (message) => {
      signal = message.signal;
      await finished;
    });
    const consumer = await bus.consume({ topic, group: 'pool' }, first.handler);
    await bus.publish(topic, [{ key: 'k', value: 'long-running' }]);
    await first.until(() => first.received.length === 1, 'the first delivery');

    let closed = false;
    const closing = consumer.close().then(() => (closed = true));
    await tick();
    t.false(closed, 'close() returned while a handler was running');
    t.true(signal?.aborted, 'the handler was not told that its consumer is closing');
    finish();
    await closing;

    const other = await second();
    const after = recorder();
    await other.consume({ topic, group: 'pool' }, after.handler);
    await bus.publish(topic, [{ key: 'k', value: 'next' }]);
    await after.until(() => after.values().includes('next'), 'the next message');
    t.deepEqual(after.values(), ['next']);
  });

  test(`${name}: a closed consumer gets nothing more`, async (t) => {
    const { bus } = await open(t);
    const topic = topicName('closed');
    await bus.ensureTopics([{ name: topic }]);
    const closedOne = recorder();
    const consumer = await bus.consume({ topic, group: 'gone' }, closedOne.handler);
    await bus.publish(topic, [{ key: 'k', value: 'before' }]);
    await closedOne.until(() => closedOne.received.length === 1, 'the first message');
    await consumer.close();

    const witness = recorder();
    await bus.consume({ topic, group: 'witness' }, witness.handler);
    await bus.publish(topic, [{ key: 'k', value: 'after' }]);
    await witness.until(() => witness.values().includes('after'), 'the witness group');
    t.deepEqual(closedOne.values(), ['before']);
  });

  test(`${name}: a group starting from the latest message skips what came before; the default is the earliest`, async (t) => {
    const { bus } = await open(t);
    const topic = topicName('latest');
    await bus.ensureTopics([{ name: topic }]);
    await bus.publish(topic, [{ key: 'k', value: 'old' }]);
    const latest = recorder();
    const earliest = recorder();
    await bus.consume({ topic, group: 'from-earliest' }, earliest.handler);
    await bus.consume({ topic, group: 'from-latest', from: 'latest' }, latest.handler);
    await bus.publish(topic, [{ key: 'k', value: 'new' }]);
    await latest.until(() => latest.values().includes('new'), 'the new message');
    await earliest.until(() => earliest.received.length === 2, 'both messages');

    t.deepEqual(latest.values(), ['new']);
    t.deepEqual(earliest.values(), ['old', 'new']);
  });

  test(`${name}: a group goes on after the last message it handled`, async (t) => {
    const { bus, second } = await open(t);
    const topic = topicName('resume');
    await bus.ensureTopics([{ name: topic }]);
    await bus.publish(topic, messages('before', 5));
    const first = recorder();
    const consumer = await bus.consume({ topic, group: 'resuming', concurrency: 5 }, first.handler);
    await first.until(() => first.received.length === 5, 'the first five');
    await consumer.close();

    await bus.publish(topic, [{ key: 'k', value: 'after' }]);
    const other = await second();
    const resumed = recorder();
    await other.consume({ topic, group: 'resuming', from: 'earliest' }, resumed.handler);
    await resumed.until(() => resumed.values().includes('after'), 'the message after');
    t.deepEqual(resumed.values(), ['after']);
    t.is(resumed.received[0]?.deliveryAttempt, 1);
  });

  test(`${name}: ensureTopics may declare the same topics again, from any client, without losing messages`, async (t) => {
    const { bus, second } = await open(t);
    const other = await second();
    const topic = topicName('declared');
    const reply = topicName('reply');
    await bus.ensureTopics([{ name: topic }, { name: reply, ephemeral: true }]);
    await bus.publish(topic, [{ key: 'k', value: 'one' }]);
    await bus.ensureTopics([{ name: topic }, { name: topic }]);
    await other.ensureTopics([{ name: topic }, { name: reply, ephemeral: true }, { name: topicName('more') }]);
    await bus.publish(topic, [{ key: 'k', value: 'two' }]);
    await other.publish(reply, [{ key: 'k', value: 'reply' }]);

    const consumed = recorder();
    await other.consume({ topic, group: 'g' }, consumed.handler);
    const replies = recorder();
    await bus.consume({ topic: reply, group: 'g' }, replies.handler);
    await consumed.until(() => consumed.received.length === 2, 'both messages');
    await replies.until(() => replies.received.length === 1, 'the reply');
    t.deepEqual(consumed.values(), ['one', 'two']);
    t.deepEqual(replies.values(), ['reply']);
  });

  test(`${name}: publishing to or consuming from a topic nobody declared fails as UNKNOWN_TOPIC`, async (t) => {
    const { bus } = await open(t);
    const topic = topicName('undeclared');
    const published = await t.throwsAsync(bus.publish(topic, [{ key: 'k', value: 'v' }]));
    t.is(codeOf(published), 'UNKNOWN_TOPIC');
    const consumed = await t.throwsAsync(bus.consume({ topic, group: 'g' }, async () => {}));
    t.is(codeOf(consumed), 'UNKNOWN_TOPIC');

    await bus.ensureTopics([{ name: topic }]);
    await t.notThrowsAsync(bus.publish(topic, [{ key: 'k', value: 'v' }]));
  });

  test(`${name}: 10 000 messages with concurrency 64 are each handled exactly once`, async (t) => {
    const { bus, second } = await open(t);
    const topic = topicName('many');
    await bus.ensureTopics([{ name: topic }]);
    const handled = new Map<string, number>();
    let running = 0;
    let mostRunning = 0;
    const consumed = recorder(async (message) => {
      running += 1;
      mostRunning = Math.max(mostRunning, running);
      handled.set(message.value, (handled.get(message.value) ?? 0) + 1);
      await tick();
      running -= 1;
    });
    await bus.consume({ topic, group: 'bulk', concurrency: 64 }, consumed.handler);
    const other = await second();
    const total = 10_000;
    const batches = Array.from({ length: 100 }, (_, batch) =>
      Array.from({ length: total / 100 }, (_, index) => ({ key: `k-${index % 16}`, value: `m-${batch}-${index}` })),
    );
    await Promise.all(batches.map((batch, index) => (index % 2 === 0 ? bus : other).publish(topic, batch)));
    await consumed.until(() => handled.size === total, 'every message');

    t.is(consumed.received.length, total);
    t.deepEqual(
      [...handled.values()].filter((count) => count !== 1),
      [],
    );
    t.true(mostRunning > 1 && mostRunning <= 64, `at most ${mostRunning} handlers ran at once`);
  });
}
