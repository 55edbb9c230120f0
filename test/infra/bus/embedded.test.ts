import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import {
  connectEmbeddedBus,
  createEmbeddedBroker,
  type EmbeddedBrokerOptions,
  isBusError,
} from '../../../infra/bus/embedded/broker.ts';
import { invocationBusContract, recorder } from '../../contracts/invocationBus.ts';

const silent = { warn() {}, info() {} };

interface Files {
  readonly path: string;
  readonly socketPath: string;
}

const temporaryFiles = async (): Promise<Files & { remove: () => Promise<void> }> => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-bus-'));
  return {
    path: join(directory, 'data', 'bus.db'),
    socketPath: join(directory, 'bus.sock'),
    remove: () => rm(directory, { recursive: true, force: true }),
  };
};

const filesFor = async (t: ExecutionContext): Promise<Files> => {
  const files = await temporaryFiles();
  t.teardown(files.remove);
  return files;
};

// Fast retries, as tests should have.
const startBroker = (files: Files, options: Partial<EmbeddedBrokerOptions> = {}) =>
  createEmbeddedBroker({ ...files, logger: silent, retryBackoff: { initialMs: 5, maxMs: 50 }, ...options });

const connect = (socketPath: string, clientId: string) =>
  connectEmbeddedBus({
    socketPath,
    clientId,
    logger: silent,
    reconnect: { initialDelayMs: 5, maxDelayMs: 50 },
    unavailableTimeoutMs: 20_000,
  });

invocationBusContract(test, 'embedded, in the broker process', async () => {
  const files = await temporaryFiles();
  const broker = await startBroker(files);
  return {
    bus: broker.bus,
    second: () => connect(files.socketPath, 'second'),
    cleanup: async () => {
      await broker.close();
      await files.remove();
    },
  };
});

invocationBusContract(test, 'embedded, over the socket', async () => {
  const files = await temporaryFiles();
  const broker = await startBroker(files);
  const bus = await connect(files.socketPath, 'first');
  return {
    bus,
    second: () => connect(files.socketPath, 'second'),
    cleanup: async () => {
      await bus.close();
      await broker.close();
      await files.remove();
    },
  };
});

const fixture = (name: string) => fileURLToPath(new URL(`../../fixtures/bus/${name}`, import.meta.url));

const spawnFixture = (t: ExecutionContext, name: string, args: readonly string[]) => {
  const child = spawn(process.execPath, [fixture(name), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) =>
    child.once('exit', (_code, signal) => resolve(signal)),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, exited, lines: createInterface({ input: child.stdout }) };
};

test('embedded: what a consumer process held when it was killed is handled by another consumer', async (t) => {
  const files = await filesFor(t);
  const broker = await startBroker(files);
  t.teardown(() => broker.close());
  const topic = 'jobs';
  await broker.bus.ensureTopics([{ name: topic }]);
  const total = 40;
  const published = Array.from({ length: total }, (_, index) => `job-${index}`);
  await broker.bus.publish(
    topic,
    published.map((value) => ({ key: value, value })),
  );

  const { child, exited, lines } = spawnFixture(t, 'slowConsumer.ts', [
    files.socketPath,
    topic,
    'workers',
    '4',
    '20',
    '6',
  ]);
  const receivedByChild = new Set<string>();
  const handledByChild = new Set<string>();
  // The child prints a message as handled before acknowledging it, so reading on to the end of its
  // output after the kill finds every message the broker may have counted as handled by it.
  for await (const line of lines) {
    const entry = JSON.parse(line) as { event: string; value?: string };
    if (entry.event === 'received' && entry.value) receivedByChild.add(entry.value);
    if (entry.event === 'handled' && entry.value) handledByChild.add(entry.value);
    if (handledByChild.size === 6 && receivedByChild.size === 10) child.kill('SIGKILL');
  }
  t.is(await exited, 'SIGKILL');
  const heldAtKill = [...receivedByChild].filter((value) => !handledByChild.has(value));
  t.is(heldAtKill.length, 4);

  const parent = recorder();
  await broker.bus.consume({ topic, group: 'workers', concurrency: 4 }, parent.handler);
  const handled = () => new Set([...handledByChild, ...parent.values()]);
  await parent.until(() => handled().size === total, 'every job handled by someone');

  t.deepEqual([...handled()].sort(), published.slice().sort());
  for (const value of heldAtKill) {
    const redelivered = parent.received.find((message) => message.value === value);
    t.truthy(redelivered, `${value}, held by the killed consumer, was not delivered again`);
    t.true((redelivered?.deliveryAttempt ?? 0) >= 2);
  }
});

test('embedded: every publish that resolved before the broker process was killed is delivered after a restart', async (t) => {
  const files = await filesFor(t);
  const topic = 'strata.invocations';
  const { child, exited, lines } = spawnFixture(t, 'publishUntilKilled.ts', [
    files.path,
    files.socketPath,
    topic,
    '1000000',
  ]);
  const acknowledged = new Set<string>();
  for await (const line of lines) {
    acknowledged.add(line);
    if (acknowledged.size === 500) child.kill('SIGKILL');
  }
  t.is(await exited, 'SIGKILL');

  // Same file and socket path: the dead broker's socket file is in the way and must be replaced.
  const broker = await startBroker(files);
  t.teardown(() => broker.close());
  const consumed = recorder();
  await broker.bus.consume({ topic, group: 'after-crash', concurrency: 64 }, consumed.handler);
  const delivered = () => new Set(consumed.received.map((message) => message.key));
  await consumed.until(() => [...acknowledged].every((key) => delivered().has(key)), 'every acknowledged message');
  t.true(acknowledged.size >= 500);
  t.deepEqual(
    [...acknowledged].filter((key) => !delivered().has(key)),
    [],
  );
});

test('embedded: a client reconnects to a restarted broker, declares its topics again and resubscribes', async (t) => {
  const files = await filesFor(t);
  const first = await startBroker(files);
  const client = await connect(files.socketPath, 'runner-1');
  await client.ensureTopics([{ name: 'jobs' }, { name: 'replies.runner-1', ephemeral: true }]);
  let heldSignal: AbortSignal | undefined;
  const jobs = recorder(async (message) => {
    if (message.value !== 'held' || message.deliveryAttempt > 1 || heldSignal) return;
    heldSignal = message.signal;
    await new Promise<void>((_, reject) => message.signal?.addEventListener('abort', () => reject(new Error('stop'))));
  });
  const replies = recorder();
  await client.consume({ topic: 'jobs', group: 'runners', concurrency: 2 }, jobs.handler);
  await client.consume({ topic: 'replies.runner-1', group: 'replies' }, replies.handler);
  await first.bus.publish('jobs', [
    { key: 'k', value: 'before' },
    { key: 'k', value: 'held' },
  ]);
  await jobs.until(() => jobs.received.length === 2, 'the jobs before the restart');

  await first.close();
  t.true(heldSignal?.aborted, 'the handler of a message the broker took back was not told');
  const publishedWhileDown = client.publish('jobs', [{ key: 'k', value: 'while-down' }]);

  const second = await startBroker(files);
  t.teardown(async () => {
    await client.close();
    await second.close();
  });
  await publishedWhileDown;
  await second.bus.publish('jobs', [{ key: 'k', value: 'after' }]);
  await jobs.until(
    () =>
      ['held', 'while-down', 'after'].every((value) => jobs.values().filter((seen) => seen === value).length >= 1) &&
      jobs.values().filter((value) => value === 'held').length === 2,
    'the jobs after the restart',
  );
  // The ephemeral reply topic lived only in the first broker's memory: the client declared it again.
  await second.bus.publish('replies.runner-1', [{ key: 'k', value: 'reply' }]);
  await replies.until(() => replies.received.length === 1, 'the reply');
  t.deepEqual(replies.values(), ['reply']);
  await t.notThrowsAsync(client.publish('jobs', [{ key: 'k', value: 'from-the-client' }]));
});

test('embedded: handled positions and durable topics survive a restart; ephemeral topics and handled messages do not', async (t) => {
  const files = await filesFor(t);
  const first = await startBroker(files);
  await first.bus.ensureTopics([{ name: 'jobs' }, { name: 'unread' }, { name: 'replies', ephemeral: true }]);
  await first.bus.publish('jobs', [
    { key: 'k', value: 'one' },
    { key: 'k', value: 'two' },
    { key: 'k', value: 'three' },
  ]);
  await first.bus.publish('unread', [{ key: 'k', value: 'kept' }]);
  const before = recorder();
  await first.bus.consume({ topic: 'jobs', group: 'workers', concurrency: 3 }, before.handler);
  await before.until(() => before.received.length === 3, 'the jobs');
  await first.close();

  const second = await startBroker(files);
  t.teardown(() => second.close());
  // Messages every group had handled were dropped: a new group reading from the earliest sees none of them.
  const late = recorder();
  await second.bus.consume({ topic: 'jobs', group: 'late-comer' }, late.handler);
  await second.bus.publish('jobs', [{ key: 'k', value: 'four' }]);
  const after = recorder();
  await second.bus.consume({ topic: 'jobs', group: 'workers' }, after.handler);
  await after.until(() => after.received.length === 1, 'the new job');
  t.deepEqual(after.values(), ['four']);
  t.is(after.received[0]?.offset, '3');
  await late.until(() => late.received.length === 1, 'what is left of jobs');
  t.deepEqual(late.values(), ['four']);

  // Those nobody read yet were kept.
  const unread = recorder();
  await second.bus.consume({ topic: 'unread', group: 'first-reader' }, unread.handler);
  await unread.until(() => unread.received.length === 1, 'the unread message');
  t.deepEqual(unread.values(), ['kept']);

  const error = await t.throwsAsync(second.bus.publish('replies', [{ key: 'k', value: 'lost' }]));
  t.true(isBusError(error, 'UNKNOWN_TOPIC'));
});

test('embedded: unconfirmed publishes are written within the commit interval, in order with confirmed ones, and survive a restart', async (t) => {
  const files = await filesFor(t);
  const first = await startBroker(files, { commitIntervalMs: 50 });
  const client = await connect(files.socketPath, 'runner');
  t.teardown(() => client.close());
  await first.bus.ensureTopics([{ name: 'results' }]);
  const seen = recorder();
  await client.publish('results', [{ key: 'k', value: 'unconfirmed-1' }], { confirm: false });
  await client.publish('results', [{ key: 'k', value: 'unconfirmed-2' }], { confirm: false });
  await client.publish('results', [{ key: 'k', value: 'confirmed' }]);
  await client.publish('results', [{ key: 'k', value: 'unconfirmed-3' }], { confirm: false });
  // Delivered once written: the confirmed publish takes the two before it along, the last waits for the commit.
  const consumer = await first.bus.consume({ topic: 'results', group: 'recorder', concurrency: 1 }, seen.handler);
  await seen.until(() => seen.received.length === 4, 'all four');
  t.deepEqual(seen.values(), ['unconfirmed-1', 'unconfirmed-2', 'confirmed', 'unconfirmed-3']);
  await consumer.close();
  // Published just before the broker stops: the close writes what is pending.
  await client.publish('results', [{ key: 'k', value: 'unconfirmed-4' }], { confirm: false });
  await first.bus.publish('results', [{ key: 'k', value: 'local-unconfirmed' }], { confirm: false });
  await client.close();
  await first.close();

  const second = await startBroker(files);
  t.teardown(() => second.close());
  const rest = recorder();
  await second.bus.consume({ topic: 'results', group: 'recorder' }, rest.handler);
  await rest.until(() => rest.received.length === 2, 'the two published last, after the restart');
  t.deepEqual([...rest.values()].sort(), ['local-unconfirmed', 'unconfirmed-4']);
});

test('embedded: a second broker on a socket a live broker serves is refused', async (t) => {
  const files = await filesFor(t);
  const broker = await startBroker(files);
  t.teardown(() => broker.close());
  const error = await t.throwsAsync(startBroker({ path: `${files.path}-other`, socketPath: files.socketPath }));
  t.true(isBusError(error, 'UNAVAILABLE'));
  const client = await connect(files.socketPath, 'still-served');
  t.teardown(() => client.close());
  await broker.bus.ensureTopics([{ name: 'jobs' }]);
  await t.notThrowsAsync(client.publish('jobs', [{ key: 'k', value: 'v' }]));
});

test('embedded: connecting to a socket no broker serves fails as UNAVAILABLE once the client gives up', async (t) => {
  const files = await filesFor(t);
  const error = await t.throwsAsync(
    connectEmbeddedBus({ socketPath: files.socketPath, clientId: 'lonely', logger: silent, unavailableTimeoutMs: 100 }),
  );
  t.true(isBusError(error, 'UNAVAILABLE'));
});

test('embedded: an ephemeral topic that no group reads keeps only its newest messages', async (t) => {
  const files = await filesFor(t);
  const broker = await startBroker(files, { maxEphemeralBacklog: 10 });
  t.teardown(() => broker.close());
  await broker.bus.ensureTopics([{ name: 'replies', ephemeral: true }]);
  for (let index = 0; index < 25; index += 1) {
    await broker.bus.publish('replies', [{ key: 'k', value: `reply-${index}` }]);
  }
  const consumed = recorder();
  await broker.bus.consume({ topic: 'replies', group: 'late' }, consumed.handler);
  await broker.bus.publish('replies', [{ key: 'k', value: 'last' }]);
  await consumed.until(() => consumed.values().includes('last'), 'the last reply');
  t.deepEqual(consumed.values(), [...Array.from({ length: 10 }, (_, index) => `reply-${15 + index}`), 'last']);
});
