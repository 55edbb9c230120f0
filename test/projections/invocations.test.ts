import test, { type ExecutionContext } from 'ava';
import type { InvocationResult } from '../../domain/invocation/messages.ts';
import type { ReadStore } from '../../domain/ports.ts';
import { createSqliteReadStore } from '../../infra/readStore/sqlite/index.ts';
import {
  createInvocationRecorder,
  INVOCATION_COLLECTIONS,
  INVOCATION_INDEXES,
  invocationTotals,
  queryMetrics,
  recordOf,
  responseOf,
} from '../../projections/invocations.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** A fixed "now", on no particular minute boundary. */
const NOW = new Date('2026-03-14T15:09:26.535Z');

const readStoreFor = async (t: ExecutionContext): Promise<ReadStore> => {
  const readStore = createSqliteReadStore({ path: ':memory:' });
  t.teardown(() => readStore.close());
  for (const [collection, fields] of INVOCATION_INDEXES) await readStore.ensureIndex(collection, fields);
  return readStore;
};

let sequence = 0;

/** A successful result that completed `agoMs` before NOW and ran for `durationMs`. */
const resultOf = (overrides: Partial<InvocationResult> & { agoMs?: number } = {}): InvocationResult => {
  const { agoMs = 0, ...fields } = overrides;
  sequence += 1;
  const completedAt = new Date(NOW.getTime() - agoMs).toISOString();
  return {
    schemaVersion: 1,
    requestId: `req-${sequence}`,
    functionName: 'fn',
    version: 1,
    invocationType: 'RequestResponse',
    outcome: 'success',
    fault: 'none',
    result: '"ok"',
    logs: [{ timestamp: completedAt, level: 'INFO', message: `line ${sequence}` }],
    logsTruncated: false,
    executionTimeMs: 10,
    memoryUsedMb: 20,
    coldStart: false,
    coldStartMs: null,
    runnerId: 'runner-1',
    containerId: 'container-1',
    attempts: 1,
    enqueuedAt: completedAt,
    startedAt: completedAt,
    completedAt,
    deadLettered: false,
    ...fields,
  };
};

/** A deterministic source of uniform numbers in [0, 1) (mulberry32). */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let value = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value;
  return ((value ^ (value >>> 14)) >>> 0) / 4_294_967_296;
};

/** The q-quantile as DDSketch defines it: the value at rank ⌊q·(n−1)⌋ of the sorted values. */
const exactQuantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.floor(q * (sorted.length - 1))] ?? NaN;

const random = seeded(42);
const DISTRIBUTIONS: Record<string, () => number[]> = {
  'uniform 1..10,000 ms': () => Array.from({ length: 10_000 }, (_, i) => i + 1),
  'exponential, mean 150 ms': () => Array.from({ length: 5_000 }, () => 1 - Math.log(1 - random()) * 150),
  'bimodal: 90% near 20 ms, 10% near 2 s': () =>
    Array.from({ length: 5_000 }, (_, i) => (i % 10 === 9 ? 1_800 + random() * 400 : 15 + random() * 10)),
  'log-normal, heavy tail': () =>
    Array.from({ length: 5_000 }, () => {
      const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      return Math.exp(4 + 1.5 * normal);
    }),
  'constant 42 ms': () => Array.from({ length: 1_000 }, () => 42),
};

for (const [title, generate] of Object.entries(DISTRIBUTIONS)) {
  test(`percentiles are within 1% of the exact ones: ${title}`, async (t) => {
    const readStore = await readStoreFor(t);
    const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
    const durations = generate();
    // Spread over the last 50 minutes: many buckets, merged by the query.
    for (const [index, durationMs] of durations.entries()) {
      await recorder.record(resultOf({ executionTimeMs: durationMs, agoMs: (index % 50) * MINUTE_MS }));
    }
    await recorder.flush();
    const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
    const sorted = [...durations].sort((a, b) => a - b);
    t.is(metrics.invocations, durations.length);
    for (const [field, q] of [
      ['p50Duration', 0.5],
      ['p95Duration', 0.95],
      ['p99Duration', 0.99],
    ] as const) {
      const exact = exactQuantile(sorted, q);
      // 1% from the sketch; the API rounds to hundredths of a millisecond.
      t.true(Math.abs(metrics[field] - exact) <= exact * 0.01 + 0.005, `${field}: ${metrics[field]} vs exact ${exact}`);
    }
    const mean = durations.reduce((sum, value) => sum + value, 0) / durations.length;
    t.true(Math.abs(metrics.avgDuration - mean) <= 0.005, `avg ${metrics.avgDuration} vs ${mean}`);
  });
}

test('counts, error rate, cold starts, memory and throttles of a window', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const results = [
    resultOf({ coldStart: true, coldStartMs: 80, memoryUsedMb: 30 }),
    resultOf({ memoryUsedMb: 10 }),
    resultOf({ outcome: 'functionError', fault: 'function', error: { type: 'Error', message: 'x' }, memoryUsedMb: 20 }),
    resultOf({ outcome: 'timeout', fault: 'function', error: { type: 'Timeout', message: 'x' }, memoryUsedMb: 40 }),
    resultOf({ outcome: 'outOfMemory', fault: 'function', error: { type: 'OutOfMemory', message: 'x' } }),
    resultOf({ outcome: 'throttled', fault: 'caller', executionTimeMs: 0, memoryUsedMb: 0 }),
    resultOf({ version: null, outcome: 'platformError', fault: 'caller' }),
  ];
  for (const result of results) await recorder.record(result);
  await recorder.flush();
  const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
  t.deepEqual(metrics, {
    invocations: 5,
    errors: 3,
    errorRate: 60,
    coldStarts: 1,
    avgDuration: 10,
    p50Duration: metrics.p50Duration,
    p95Duration: metrics.p95Duration,
    p99Duration: metrics.p99Duration,
    avgMemoryUsed: 24,
    maxMemoryUsed: 40,
    throttles: 1,
  });
  t.true(Math.abs(metrics.p50Duration - 10) <= 0.1);
  // Every result has a record, the unresolved one included.
  for (const result of results) t.not(await readStore.get(INVOCATION_COLLECTIONS.records, result.requestId), null);
  t.deepEqual(await invocationTotals(readStore, 'fn'), {
    totalInvocations: 5,
    lastInvokedAt: NOW.toISOString(),
  });
});

test('a result delivered twice is counted once', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const once = resultOf({ executionTimeMs: 5 });
  const twice = resultOf({ executionTimeMs: 500, attempts: 2 });
  await recorder.record(once);
  await recorder.record(twice);
  await recorder.flush();
  await recorder.record(twice);
  await recorder.record({ ...twice, attempts: 1 });
  await recorder.flush();
  const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
  t.is(metrics.invocations, 2);
  t.is(metrics.avgDuration, 252.5);
  t.is((await invocationTotals(readStore, 'fn')).totalInvocations, 2);
  t.is((await invocationTotals(readStore, 'fn:1')).totalInvocations, 2);
});

test('results recorded at once are stored together, in arrival order, a duplicate among them counted once', async (t) => {
  const readStore = await readStoreFor(t);
  const batches: number[] = [];
  const putMany = readStore.putMany?.bind(readStore);
  if (putMany === undefined) throw new Error('the sqlite read store writes batches');
  readStore.putMany = (documents) => {
    batches.push(documents.length);
    return putMany(documents);
  };
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const failed = resultOf({ outcome: 'functionError', executionTimeMs: 7, invocationType: 'Event' });
  const retried = { ...failed, outcome: 'success' as const, attempts: 2, executionTimeMs: 9 };
  const others = Array.from({ length: 20 }, () => resultOf({ logs: [] }));
  // A consumer handling many messages at once: every record() is pending before the first write.
  await Promise.all([failed, ...others, retried, failed, retried].map((result) => recorder.record(result)));
  await recorder.flush();
  t.deepEqual(
    batches,
    [22 + 2],
    'one write: 22 records (the retry replacing the first attempt) and the logs of the two attempts',
  );
  t.like(await readStore.get(INVOCATION_COLLECTIONS.records, failed.requestId), { status: 'Succeeded', attempts: 2 });
  t.like(await readStore.get(INVOCATION_COLLECTIONS.logs, failed.requestId), { logs: retried.logs });
  const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
  t.is(metrics.invocations, 22, 'both attempts once each, and the 20 others');
  t.is(metrics.errors, 1);
});

test('a result without logs stores no logs document until an earlier one needs replacing', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const silent = resultOf({ logs: [] });
  await recorder.record(silent);
  t.like(await readStore.get(INVOCATION_COLLECTIONS.records, silent.requestId), { status: 'Succeeded' });
  t.is(await readStore.get(INVOCATION_COLLECTIONS.logs, silent.requestId), null);
  const truncated = resultOf({ logs: [], logsTruncated: true });
  await recorder.record(truncated);
  t.like(await readStore.get(INVOCATION_COLLECTIONS.logs, truncated.requestId), { logs: [], truncated: true });
  // An async invocation whose first attempt logged and whose retry did not: the retry's (empty) logs win.
  const first = resultOf({ outcome: 'functionError', invocationType: 'Event' });
  await recorder.record(first);
  await recorder.record({ ...first, outcome: 'success', attempts: 2, logs: [] });
  t.like(await readStore.get(INVOCATION_COLLECTIONS.logs, first.requestId), { logs: [], truncated: false });
});

test('a failed write rejects every result of its batch and counts none of them', async (t) => {
  const readStore = await readStoreFor(t);
  const putMany = readStore.putMany?.bind(readStore);
  if (putMany === undefined) throw new Error('the sqlite read store writes batches');
  let failing = true;
  readStore.putMany = (documents) => (failing ? Promise.reject(new Error('disk full')) : putMany(documents));
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const results = [resultOf(), resultOf()];
  const outcomes = await Promise.allSettled(results.map((result) => recorder.record(result)));
  t.deepEqual(
    outcomes.map((outcome) => outcome.status),
    ['rejected', 'rejected'],
  );
  // Delivered again (at least once), they are recorded and counted once.
  failing = false;
  await Promise.all(results.map((result) => recorder.record(result)));
  await recorder.flush();
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW)).invocations, 2);
});

test('a queued record is replaced by its result, and an unsent one can be forgotten', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  const enqueuedAt = NOW.toISOString();
  await recorder.queued({ requestId: 'req-queued', functionName: 'fn', version: 3, enqueuedAt });
  t.like(await readStore.get(INVOCATION_COLLECTIONS.records, 'req-queued'), {
    status: 'Queued',
    version: 'v3',
    attempts: 0,
    completedAt: null,
  });
  await recorder.record(resultOf({ requestId: 'req-queued', version: 3, invocationType: 'Event' }));
  t.like(await readStore.get(INVOCATION_COLLECTIONS.records, 'req-queued'), { status: 'Succeeded', attempts: 1 });
  await recorder.queued({ requestId: 'req-queued', functionName: 'fn', version: 3, enqueuedAt });
  t.like(await readStore.get(INVOCATION_COLLECTIONS.records, 'req-queued'), { status: 'Succeeded' });
  await recorder.forget('req-queued');
  t.not(await readStore.get(INVOCATION_COLLECTIONS.records, 'req-queued'), null, 'a finished record stays');

  await recorder.queued({ requestId: 'req-unsent', functionName: 'fn', version: 3, enqueuedAt });
  await recorder.forget('req-unsent');
  t.is(await readStore.get(INVOCATION_COLLECTIONS.records, 'req-unsent'), null);
});

test('buckets outside the window are left out', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  await recorder.record(resultOf({ executionTimeMs: 10, agoMs: 30 * 1000 }));
  await recorder.record(resultOf({ executionTimeMs: 20, agoMs: 10 * MINUTE_MS }));
  await recorder.record(resultOf({ executionTimeMs: 30, agoMs: 2 * HOUR_MS }));
  await recorder.record(resultOf({ executionTimeMs: 40, agoMs: 2 * DAY_MS }));
  await recorder.flush();
  const count = async (windowMs: number) => (await queryMetrics(readStore, 'fn', windowMs, NOW)).invocations;
  t.is(await count(5 * MINUTE_MS), 1);
  t.is(await count(HOUR_MS), 2);
  t.is(await count(3 * HOUR_MS), 3);
  t.is(await count(7 * DAY_MS), 4);
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW)).avgDuration, 15);
  t.is((await queryMetrics(readStore, 'other', 7 * DAY_MS, NOW)).invocations, 0, 'other functions are apart');
});

test('version narrows the metrics to one version', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  for (const version of [1, 1, 2, 2, 2]) await recorder.record(resultOf({ version }));
  await recorder.flush();
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW, 1)).invocations, 2);
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW, 2)).invocations, 3);
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW, 3)).invocations, 0);
  t.is((await queryMetrics(readStore, 'fn', HOUR_MS, NOW)).invocations, 5);
});

test('flushing the same minute again adds to its bucket', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: 7 * DAY_MS });
  for (let i = 1; i <= 50; i += 1) await recorder.record(resultOf({ executionTimeMs: i }));
  await recorder.flush();
  for (let i = 51; i <= 100; i += 1) await recorder.record(resultOf({ executionTimeMs: i }));
  await recorder.flush();
  await recorder.flush();
  const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
  t.is(metrics.invocations, 100);
  t.true(Math.abs(metrics.p50Duration - 50) <= 0.5 + 0.005, String(metrics.p50Duration));
  t.true(Math.abs(metrics.p99Duration - 99) <= 0.99 + 0.005, String(metrics.p99Duration));
});

test('recorders of two nodes flushing the same minute both count', async (t) => {
  const readStore = await readStoreFor(t);
  const a = createInvocationRecorder({ readStore, nodeId: 'api-a', retentionMs: 7 * DAY_MS });
  const b = createInvocationRecorder({ readStore, nodeId: 'api-b', retentionMs: 7 * DAY_MS });
  for (let i = 0; i < 3; i += 1) await a.record(resultOf({ executionTimeMs: 10, coldStart: i === 0 }));
  for (let i = 0; i < 4; i += 1) await b.record(resultOf({ executionTimeMs: 1_000, coldStart: i === 0 }));
  await Promise.all([a.flush(), b.flush()]);
  const metrics = await queryMetrics(readStore, 'fn', HOUR_MS, NOW);
  t.like(metrics, { invocations: 7, coldStarts: 2 });
  t.true(Math.abs(metrics.p99Duration - 1_000) <= 10.005, 'the sketches were merged');
  t.true(Math.abs(metrics.p50Duration - 1_000) <= 10.005);
  t.deepEqual(await invocationTotals(readStore, 'fn'), { totalInvocations: 7, lastInvokedAt: NOW.toISOString() });
  t.is((await invocationTotals(readStore, 'fn:1')).totalInvocations, 7);
});

test('the retention sweep deletes old records, logs and buckets, and keeps the rest', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: DAY_MS });
  const old = [resultOf({ agoMs: 2 * DAY_MS }), resultOf({ agoMs: 25 * HOUR_MS })];
  const recent = [resultOf({ agoMs: 23 * HOUR_MS }), resultOf({ agoMs: MINUTE_MS })];
  for (const result of [...old, ...recent]) await recorder.record(result);
  await recorder.flush();
  t.is((await queryMetrics(readStore, 'fn', 7 * DAY_MS, NOW)).invocations, 4);

  await recorder.sweep(NOW);
  for (const result of old) {
    t.is(await readStore.get(INVOCATION_COLLECTIONS.records, result.requestId), null);
    t.is(await readStore.get(INVOCATION_COLLECTIONS.logs, result.requestId), null);
  }
  for (const result of recent) {
    t.like(await readStore.get(INVOCATION_COLLECTIONS.records, result.requestId), { status: 'Succeeded' });
    t.like(await readStore.get(INVOCATION_COLLECTIONS.logs, result.requestId), { logs: result.logs });
  }
  t.is((await queryMetrics(readStore, 'fn', 7 * DAY_MS, NOW)).invocations, 2);
  t.is((await readStore.find(INVOCATION_COLLECTIONS.buckets, { limit: 100 })).total, 2);
});

test('the sweep deletes more than one page of expired records', async (t) => {
  const readStore = await readStoreFor(t);
  const recorder = createInvocationRecorder({ readStore, nodeId: 'api-1', retentionMs: HOUR_MS });
  for (let i = 0; i < 1_200; i += 1) await recorder.record(resultOf({ agoMs: 2 * HOUR_MS + i * 1000 }));
  const kept = resultOf({ agoMs: 0 });
  await recorder.record(kept);
  await recorder.flush();
  await recorder.sweep(NOW);
  const records = await readStore.find(INVOCATION_COLLECTIONS.records, { limit: 10 });
  t.is(records.total, 1);
  t.is(records.items[0]?.requestId, kept.requestId);
  t.is((await readStore.find(INVOCATION_COLLECTIONS.logs, { limit: 10 })).total, 1);
  t.is((await readStore.find(INVOCATION_COLLECTIONS.buckets, { limit: 10 })).total, 1);
});

test('the response of a result: {statusCode, body} passes through, anything else is 200 and its JSON', (t) => {
  const success = (result: string) => responseOf({ outcome: 'success', result });
  t.deepEqual(success('{"statusCode":201,"body":"made"}'), { statusCode: 201, body: 'made' });
  t.deepEqual(success('{"statusCode":202,"body":{"a":1}}'), { statusCode: 202, body: '{"a":1}' });
  t.deepEqual(success('{"statusCode":204}'), { statusCode: 204, body: '' });
  t.deepEqual(success('{"statusCode":"200","body":"x"}'), { statusCode: 200, body: '{"statusCode":"200","body":"x"}' });
  t.deepEqual(success('[{"statusCode":201}]'), { statusCode: 200, body: '[{"statusCode":201}]' });
  t.deepEqual(success('"text"'), { statusCode: 200, body: '"text"' });
  t.deepEqual(responseOf({ outcome: 'success' }), { statusCode: 200, body: 'null' });
  t.deepEqual(responseOf({ outcome: 'timeout', error: { type: 'Timeout', message: 'slow' } }), {
    statusCode: 500,
    body: '{"errorType":"Timeout","errorMessage":"slow"}',
  });
  t.is(responseOf({ outcome: 'throttled' }).statusCode, 429);
});

test('a record carries the status, billing and log stream of its result', (t) => {
  const result = resultOf({
    executionTimeMs: 100.4,
    version: 6,
    containerId: 'abc',
    startedAt: '2026-03-14T15:09:26.000Z',
    completedAt: '2026-03-14T15:09:26.101Z',
  });
  t.like(recordOf(result, DAY_MS), {
    version: 'v6',
    status: 'Succeeded',
    executionTime: 100,
    billedDuration: 200,
    logStreamName: '2026-03-14/fn-v6-abc',
    expiresAt: '2026-03-15T15:09:26.101Z',
  });
  t.like(recordOf({ ...result, executionTimeMs: 0.2 }, DAY_MS), { billedDuration: 100 });
  t.like(recordOf({ ...result, outcome: 'functionError', deadLettered: true }, DAY_MS), { status: 'DeadLettered' });
  t.like(recordOf({ ...result, outcome: 'timeout' }, DAY_MS), { status: 'TimedOut' });
  t.like(recordOf({ ...result, containerId: null }, DAY_MS), { logStreamName: null });
});
