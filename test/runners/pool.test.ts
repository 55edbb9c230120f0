import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { createPool, type Lease, type Pool, type PoolOptions } from '../../runners/pool.ts';
import type { Container } from '../../runners/runtime.ts';

interface FakeContainer extends Container {
  readonly key: string;
  disposed: boolean;
}

/** Containers that record their disposal, and a clock the test moves. */
const setup = (t: ExecutionContext, options: Partial<PoolOptions> = {}, runsOnRunnerThread = true) => {
  let clock = 1_000_000;
  const created: FakeContainer[] = [];
  const pool: Pool = createPool({ maxContainers: 2, idleTtlMs: 60_000, now: () => clock, ...options });
  t.teardown(() => pool.close());
  /** How long the next creations take on the test's clock. */
  let startMs = 0;
  const factory =
    (key: string, bytes = 1_000) =>
    async (): Promise<Container> => {
      clock += startMs;
      const container: FakeContainer = {
        key,
        id: `${key}#${created.length + 1}`,
        coldStartMs: 5,
        disposed: false,
        invoke: () => Promise.reject(new Error('not used')),
        runsOnRunnerThread: () => runsOnRunnerThread,
        memoryUsage: () => bytes,
        dispose() {
          container.disposed = true;
        },
      };
      created.push(container);
      return container;
    };
  return {
    pool,
    created,
    acquire: (key: string, bytes?: number): Promise<Lease> => pool.acquire(key, factory(key, bytes)),
    advance(ms: number) {
      clock += ms;
    },
    startsTake(ms: number) {
      startMs = ms;
    },
  };
};

/** Settles when the promise does, or reports 'pending' after a few turns of the event loop. */
const state = async <T>(promise: Promise<T>): Promise<T | 'pending'> =>
  Promise.race([promise, sleep(20).then(() => 'pending' as const)]);

test('a released container is reused warm for the same key, and another key gets its own', async (t) => {
  const { acquire, created } = setup(t);
  const first = await acquire('fn:v1');
  t.true(first.cold);
  first.release(false);
  const second = await acquire('fn:v1');
  t.false(second.cold);
  t.is(second.container, first.container);
  const other = await acquire('fn:v2');
  t.true(other.cold);
  t.not(other.container, first.container);
  t.is(created.length, 2);
});

test('a busy container is not shared: a second caller of the same key gets a new one', async (t) => {
  const { acquire } = setup(t);
  const first = await acquire('fn:v1');
  const second = await acquire('fn:v1');
  t.true(second.cold);
  t.not(second.container, first.container);
});

/**
 * A pool whose containers start in `startMs` (a second, by default: a caller waits in line at most that long,
 * on the real clock), after one lease of `leaseMs` (its container is idle again).
 */
const primed = async (t: ExecutionContext, leaseMs: number, runsOnRunnerThread = true, startMs = 1_000) => {
  const fixture = setup(t, { maxContainers: 10 }, runsOnRunnerThread);
  fixture.startsTake(startMs);
  const first = await fixture.acquire('fn:v1');
  fixture.advance(leaseMs);
  first.release(false);
  return { ...fixture, first };
};

test('a caller waits for a busy container of its key when its turn comes sooner than a new one would start', async (t) => {
  // Leases take 125 ms, a start 1 s: the second caller waits for the first container.
  const { acquire, advance, created, pool, first } = await primed(t, 125);
  const busy = await acquire('fn:v1');
  const waiter = acquire('fn:v1');
  t.is(await state(waiter), 'pending');
  t.is(pool.stats().waiting, 1);
  advance(125);
  busy.release(false);
  const handed = await waiter;
  t.false(handed.cold);
  t.is(handed.container, first.container);
  t.is(created.length, 1);

  // At one release per 125 ms, the eighth in line would wait 1 s, no sooner than a start.
  const queued = [1, 2, 3, 4, 5, 6, 7].map(() => acquire('fn:v1'));
  const started = acquire('fn:v1');
  const fresh = await started;
  t.true(fresh.cold, 'with seven waiting ahead, the next caller starts a container');
  t.is(created.length, 2);
  for (const waiting of queued) t.is(await state(waiting), 'pending');
  handed.release(false);
  fresh.release(false);
  t.false((await queued[0])?.cold);
  t.false((await queued[1])?.cold);
});

/** After `primed`, two callers at once: what the second gets. */
const secondCaller = async (t: ExecutionContext, leaseMs: number, runsOnRunnerThread: boolean) => {
  const { acquire, created } = await primed(t, leaseMs, runsOnRunnerThread);
  await acquire('fn:v1');
  const second = await state(acquire('fn:v1'));
  return { cold: second !== 'pending' && second.cold, created: created.length };
};

test('a caller starts a container when the busy ones run beside the runner (processes, threaded isolates)', async (t) => {
  // Its turn would come in 1 ms, sooner than a start, but a second container can run beside the first.
  t.deepEqual(await secondCaller(t, 1, false), { cold: true, created: 2 });
});

test('a caller waits in line no longer than a start takes, then starts a container', async (t) => {
  // A handler that awaits a timer holds its container far longer than the leases before it.
  const { acquire, created } = await primed(t, 1, true, 200);
  await acquire('fn:v1');
  const waiter = acquire('fn:v1');
  t.is(await state(waiter), 'pending');
  const started = await waiter;
  t.true(started.cold, 'no release came: it started one');
  t.is(created.length, 2);
});

test('a caller starts a container when the busy ones are held longer than a start takes', async (t) => {
  t.deepEqual(await secondCaller(t, 2_000, true), { cold: true, created: 2 });
});

test('a caller waiting for a container that is disposed of decides again, and starts one', async (t) => {
  const { acquire, created } = await primed(t, 125);
  const busy = await acquire('fn:v1');
  const waiter = acquire('fn:v1');
  t.is(await state(waiter), 'pending');
  busy.release(true);
  const next = await waiter;
  t.true(next.cold);
  t.is(created.length, 2);
});

test('of the idle containers of a key, the one used last is taken first', async (t) => {
  const { acquire, advance } = setup(t);
  const a = await acquire('fn:v1');
  const b = await acquire('fn:v1');
  b.release(false);
  advance(10);
  a.release(false);
  t.is((await acquire('fn:v1')).container, a.container);
});

test('at the cap, the oldest idle container of another key is evicted', async (t) => {
  const { acquire, advance, created, pool } = setup(t, { maxContainers: 2 });
  const a = await acquire('a:v1');
  const b = await acquire('b:v1');
  a.release(false);
  advance(1_000);
  b.release(false);
  const c = await acquire('c:v1');
  t.true(c.cold);
  t.deepEqual(
    created.map((container) => [container.key, container.disposed]),
    [
      ['a:v1', true],
      ['b:v1', false],
      ['c:v1', false],
    ],
  );
  t.deepEqual(Object.keys(pool.stats().activeContainers).sort(), ['b:v1', 'c:v1']);
});

test('when every container is busy a caller waits, and gets a container on a release', async (t) => {
  const { acquire, created, pool } = setup(t, { maxContainers: 1 });
  const held = await acquire('a:v1');
  const sameKey = acquire('a:v1');
  t.is(await state(sameKey), 'pending');
  t.is(pool.stats().waiting, 1);
  held.release(false);
  const reused = await sameKey;
  t.false(reused.cold);
  t.is(reused.container, held.container);

  const otherKey = acquire('b:v1');
  t.is(await state(otherKey), 'pending');
  reused.release(false);
  const fresh = await otherKey;
  t.true(fresh.cold);
  t.is(fresh.container.id, 'b:v1#2');
  t.true(created[0]?.disposed, 'the idle container of the other key made room');
  t.is(pool.stats().waiting, 0);
});

test('release(true) disposes of the container, and the next caller gets a new one', async (t) => {
  const { acquire, created, pool } = setup(t);
  const lease = await acquire('a:v1');
  lease.release(true);
  t.true(created[0]?.disposed);
  t.is(pool.stats().total, 0);
  const next = await acquire('a:v1');
  t.true(next.cold);
  t.not(next.container, lease.container);
  lease.release(false);
  t.is(pool.stats().total, 1, 'releasing twice changes nothing');
  t.is(pool.stats().busy, 1);
});

test('idle containers older than the idle TTL are swept; busy and recently used ones stay', async (t) => {
  const { acquire, advance, created, pool } = setup(t, { maxContainers: 3, idleTtlMs: 100 });
  const old = await acquire('old:v1');
  const recent = await acquire('recent:v1');
  const busy = await acquire('busy:v1');
  old.release(false);
  advance(90);
  recent.release(false);
  advance(20);
  // The sweep runs on a timer (at least once a second).
  for (let waited = 0; !created[0]?.disposed && waited < 5_000; waited += 50) await sleep(50);
  t.deepEqual(
    created.map((container) => [container.key, container.disposed]),
    [
      ['old:v1', true],
      ['recent:v1', false],
      ['busy:v1', false],
    ],
  );
  t.deepEqual(Object.keys(pool.stats().activeContainers).sort(), ['busy:v1', 'recent:v1']);
  busy.release(false);
});

test('stats count containers, busy ones, waiters, one id per warm key and idle memory', async (t) => {
  const { acquire, pool } = setup(t, { maxContainers: 3 });
  t.deepEqual(pool.stats(), { total: 0, busy: 0, waiting: 0, activeContainers: {}, idleBytes: 0 });
  const a1 = await acquire('a:v1', 100);
  const a2 = await acquire('a:v1', 200);
  const b = await acquire('b:v2', 400);
  a2.release(false);
  t.deepEqual(pool.stats(), {
    total: 3,
    busy: 2,
    waiting: 0,
    activeContainers: { 'a:v1': a1.container.id, 'b:v2': b.container.id },
    idleBytes: 200,
  });
  t.true((await acquire('c:v1')).cold, 'the idle container made room for another key');
  const blocked = acquire('d:v1');
  t.is(await state(blocked), 'pending');
  t.like(pool.stats(), { total: 3, busy: 3, waiting: 1, idleBytes: 0 });
  b.release(false);
  await blocked;
  a1.release(false);
  t.like(pool.stats(), { total: 3, busy: 2, waiting: 0, idleBytes: 100 });
});

test('a failed create rejects the caller and frees its slot', async (t) => {
  const { acquire, pool } = setup(t, { maxContainers: 1 });
  await t.throwsAsync(
    pool.acquire('broken:v1', () => Promise.reject(new Error('syntax error'))),
    { message: 'syntax error' },
  );
  t.is(pool.stats().total, 0);
  t.true((await acquire('a:v1')).cold);
});

test('a failed create of a woken caller hands the room on to the next waiter', async (t) => {
  const { acquire, pool } = setup(t, { maxContainers: 1 });
  const held = await acquire('a:v1');
  const failing = pool.acquire('broken:v1', () => Promise.reject(new Error('syntax error')));
  const next = acquire('c:v1');
  t.is(await state(next), 'pending');
  held.release(false);
  await t.throwsAsync(failing, { message: 'syntax error' });
  const lease = await state(next);
  t.not(lease, 'pending', 'the next waiter was not left waiting');
  if (lease !== 'pending') t.true(lease.cold);
});

test('evict disposes of the idle containers whose key matches', async (t) => {
  const { acquire, created, pool } = setup(t, { maxContainers: 3 });
  const idle = await acquire('fn:v1');
  const busy = await acquire('fn:v1');
  const other = await acquire('other:v1');
  idle.release(false);
  other.release(false);
  pool.evict((key) => key.startsWith('fn:'));
  t.deepEqual(
    created.map((container) => container.disposed),
    [true, false, false],
  );
  busy.release(false);
});

test('close disposes of every container and turns waiters and new callers away', async (t) => {
  const { acquire, created, pool } = setup(t, { maxContainers: 1 });
  await acquire('a:v1');
  const waiter = acquire('b:v1');
  t.is(await state(waiter), 'pending');
  pool.close();
  await t.throwsAsync(waiter, { message: /closed/ });
  await t.throwsAsync(acquire('a:v1'), { message: /closed/ });
  t.true(created.every((container) => container.disposed));
});
