import anyTest, { type TestFn } from 'ava';
import { assertError, isIsoTimestamp, uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  deploy,
  eventually,
  HELLO,
  handlerCode,
  invokeOk,
  type Metrics,
  metricsWhen,
  startInvocationPlatform,
} from './support.ts';

interface Context {
  readonly strata: TestPlatform;
  /** A function with two versions, invoked as PLAN says, and the execution times the calls reported. */
  readonly name: string;
  readonly executionTimes: number[];
  readonly memoryUsed: number[];
}

const test = anyTest as TestFn<Context>;

/** Waits `event.ms`, then fails when `event.fail`. */
const CODE = handlerCode(
  'await new Promise((resolve) => setTimeout(resolve, event.ms)); if (event.fail) throw new Error("asked to fail"); return "ok";',
);

/** [version, waits in ms, fails] per call, run one after another: one cold start per version. */
const PLAN: readonly (readonly [number, number, boolean])[] = [
  [1, 20, false],
  [1, 40, false],
  [1, 80, true],
  [1, 20, false],
  [1, 40, false],
  [1, 80, false],
  [1, 20, true],
  [1, 40, false],
  [2, 80, false],
  [2, 20, true],
  [2, 40, false],
  [2, 80, false],
];
const K = PLAN.length;
const ERRORS = PLAN.filter(([, , fails]) => fails).length;
const OF_VERSION = (version: number) => PLAN.filter(([v]) => v === version);

test.before(async (t) => {
  const strata = await startInvocationPlatform();
  const name = uniqueName('measured');
  const created = await strata.admin.request('POST', '/api/v1/functions', {
    body: { name, runtime: 'Node24', handler: 'index.handler' },
  });
  if (created.status !== 201) throw new Error(JSON.stringify(created.body));
  for (let version = 1; version <= 2; version += 1) {
    const published = await strata.admin.request('POST', `/api/v1/functions/${name}/versions`, {
      body: { code: CODE },
    });
    if (published.status !== 201) throw new Error(JSON.stringify(published.body));
  }
  const executionTimes: number[] = [];
  const memoryUsed: number[] = [];
  for (const [version, ms, fail] of PLAN) {
    const response = await strata.admin.request<{ statusCode: number; executionTime: number; memoryUsed: number }>(
      'POST',
      `/api/v1/functions/${name}/invoke`,
      { body: { version, payload: { ms, fail } } },
    );
    if (response.status !== 200 || response.body.statusCode !== (fail ? 500 : 200)) {
      throw new Error(`unexpected answer: ${JSON.stringify(response.body)}`);
    }
    executionTimes.push(response.body.executionTime);
    memoryUsed.push(response.body.memoryUsed);
  }
  t.context = { strata, name, executionTimes, memoryUsed };
});

test.after.always(async (t) => {
  await t.context.strata?.stop();
});

const metricsOf = (t: { context: Context }, query: string, count: number): Promise<Metrics> =>
  metricsWhen(t.context.strata.admin, t.context.name, (metrics) => metrics.invocations >= count, query);

test('the metrics of the last hour count every invocation, error and cold start', async (t) => {
  const { executionTimes, memoryUsed } = t.context;
  const metrics = await metricsOf(t, 'window=PT1H', K);
  t.like(metrics, { invocations: K, errors: ERRORS, coldStarts: 2, throttles: 0 });
  t.is(metrics.errorRate, Math.round((ERRORS / K) * 100 * 100) / 100, 'a percentage');
  t.is(metrics.errorRate, 25);

  const fastest = Math.min(...executionTimes);
  const slowest = Math.max(...executionTimes);
  t.true(metrics.p50Duration <= metrics.p95Duration, JSON.stringify(metrics));
  t.true(metrics.p95Duration <= metrics.p99Duration, JSON.stringify(metrics));
  // DDSketch: every quantile is within 1% of a value that was seen.
  t.true(metrics.p50Duration >= fastest * 0.99, `p50 ${metrics.p50Duration} vs fastest ${fastest}`);
  t.true(metrics.p99Duration <= slowest * 1.01, `p99 ${metrics.p99Duration} vs slowest ${slowest}`);
  const mean = executionTimes.reduce((sum, time) => sum + time, 0) / K;
  t.true(Math.abs(metrics.avgDuration - mean) <= 0.01 * mean + 0.01, `avg ${metrics.avgDuration} vs ${mean}`);

  t.is(metrics.maxMemoryUsed, Math.max(...memoryUsed));
  t.true(metrics.avgMemoryUsed >= Math.min(...memoryUsed) && metrics.avgMemoryUsed <= metrics.maxMemoryUsed);
  t.true(metrics.avgMemoryUsed >= 1);
});

test('the response names the function, the window and the time', async (t) => {
  const { admin } = t.context.strata;
  const response = await admin.request<Record<string, unknown>>(
    'GET',
    `/api/v1/functions/${t.context.name}/metrics?window=PT15M`,
  );
  t.is(response.status, 200);
  t.like(response.body, { functionName: t.context.name, window: 'PT15M' });
  t.true(isIsoTimestamp(response.body.timestamp));
  const fallback = await admin.request<{ window: string }>('GET', `/api/v1/functions/${t.context.name}/metrics`);
  t.is(fallback.body.window, 'PT1H', 'the window defaults to an hour');
});

test('version= narrows the metrics to one version', async (t) => {
  for (const [query, version] of [
    ['window=PT1H&version=1', 1],
    ['version=v2', 2],
  ] as const) {
    const plan = OF_VERSION(version);
    const metrics = await metricsOf(t, query, plan.length);
    t.like(metrics, {
      invocations: plan.length,
      errors: plan.filter(([, , fails]) => fails).length,
      coldStarts: 1,
    });
  }
  const response = await t.context.strata.admin.request<{ version: string; metrics: Metrics }>(
    'GET',
    `/api/v1/functions/${t.context.name}/metrics?version=3`,
  );
  t.is(response.body.version, 'v3');
  t.is(response.body.metrics.invocations, 0, 'a version never invoked has no invocations');
});

test('a window that is not an ISO-8601 duration from PT1M to the retention is refused', async (t) => {
  const { admin } = t.context.strata;
  for (const window of ['PT0S', 'P1Y', 'garbage', 'PT30S', 'P8D', '-PT1H', 'P1M']) {
    const response = await admin.request('GET', `/api/v1/functions/${t.context.name}/metrics?window=${window}`);
    assertError(t, response, 400, 'VALIDATION_ERROR', ['window']);
  }
  for (const window of ['PT1M', 'P7D', 'P1W', 'PT1H30M']) {
    const response = await admin.request('GET', `/api/v1/functions/${t.context.name}/metrics?window=${window}`);
    t.is(response.status, 200, `${window}: ${JSON.stringify(response.body)}`);
  }
  assertError(t, await admin.request('GET', `/api/v1/functions/${uniqueName('none')}/metrics`), 404, 'NOT_FOUND');
});

test('a function never invoked has zero metrics', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('quiet');
  await deploy(t, admin, name, HELLO);
  const response = await admin.request<{ metrics: Metrics }>('GET', `/api/v1/functions/${name}/metrics`);
  t.deepEqual(response.body.metrics, {
    invocations: 0,
    errors: 0,
    errorRate: 0,
    coldStarts: 0,
    avgDuration: 0,
    p50Duration: 0,
    p95Duration: 0,
    p99Duration: 0,
    avgMemoryUsed: 0,
    maxMemoryUsed: 0,
    throttles: 0,
  });
});

test('the function shows its total invocations and when it was last invoked; each version its count', async (t) => {
  const { admin } = t.context.strata;
  const { name } = t.context;
  const fn = await eventually('the function’s totals', async () => {
    const response = await admin.request<{ totalInvocations: number; lastInvokedAt: string | null }>(
      'GET',
      `/api/v1/functions/${name}`,
    );
    return response.body.totalInvocations === K ? response.body : undefined;
  });
  t.true(isIsoTimestamp(fn.lastInvokedAt));
  t.true(Date.parse(fn.lastInvokedAt ?? '') <= Date.now());

  const versions = await admin.request<{ versions: { version: number; invocationCount: number }[] }>(
    'GET',
    `/api/v1/functions/${name}/versions`,
  );
  t.deepEqual(
    versions.body.versions.map(({ version, invocationCount }) => [version, invocationCount]),
    [
      [2, OF_VERSION(2).length],
      [1, OF_VERSION(1).length],
    ],
  );
  const one = await admin.request<{ invocationCount: number }>('GET', `/api/v1/functions/${name}/versions/v1`);
  t.is(one.body.invocationCount, OF_VERSION(1).length);
});

test('async invocations count in the metrics and totals too', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('counted');
  await deploy(t, admin, name, HELLO);
  await invokeOk(t, admin, name);
  const queued = await admin.request('POST', `/api/v1/functions/${name}/invoke-async`, { body: {} });
  t.is(queued.status, 202);
  const metrics = await metricsWhen(admin, name, (m) => m.invocations >= 2);
  t.like(metrics, { invocations: 2, errors: 0, coldStarts: 1 });
});
