import { cpus, totalmem } from 'node:os';
import anyTest, { type TestFn } from 'ava';
import { assertError, isIsoTimestamp, uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  awaitHealthyRunners,
  deploy,
  eventually,
  HELLO,
  handlerCode,
  invokeOk,
  startInvocationPlatform,
} from './support.ts';

interface Context {
  readonly strata: TestPlatform;
}

// Serial: the runner's counters are the whole runner's, and one test stops the runner.
const test = (anyTest as TestFn<Context>).serial;

const MAX_CONTAINERS = 8;

test.before(async (t) => {
  const strata = await startInvocationPlatform({ STRATA_RUNNER_MAX_CONTAINERS: String(MAX_CONTAINERS) });
  t.context = { strata };
});

test.after.always(async (t) => {
  await t.context.strata?.stop();
});

interface RunnerDetails {
  readonly nodeId: string;
  readonly hostname: string;
  readonly port: number | null;
  readonly health: {
    readonly isHealthy: boolean;
    readonly cpuUsage: number;
    readonly memoryUsage: number;
    readonly activeContainers: number;
    readonly queuedInvocations: number;
  };
  readonly resources: {
    readonly totalCpuCores: number;
    readonly totalMemoryMB: number;
    readonly maxContainers: number;
  };
  readonly metrics: {
    readonly totalInvocations: number;
    readonly successfulInvocations: number;
    readonly failedInvocations: number;
    readonly coldStarts: number;
    readonly avgInvocationDuration: number;
    readonly avgColdStartDuration: number;
  };
  readonly activeContainers: Readonly<Record<string, string>>;
  readonly startedAt: string;
  readonly lastHeartbeat: string;
}

const details = async (strata: TestPlatform, nodeId = 'runner-1'): Promise<RunnerDetails> => {
  const response = await strata.admin.request<RunnerDetails>('GET', `/api/v1/runners/${nodeId}`);
  if (response.status !== 200) throw new Error(JSON.stringify(response.body));
  return response.body;
};

const isPercentage = (value: unknown) => typeof value === 'number' && value >= 0 && value <= 100;

test('GET /runners lists the runner with its health', async (t) => {
  const { admin } = t.context.strata;
  const response = await admin.request<{ runners: Record<string, unknown>[]; total: number }>('GET', '/api/v1/runners');
  t.is(response.status, 200);
  t.is(response.body.total, 1);
  const [runner] = response.body.runners;
  t.like(runner, { nodeId: 'runner-1', health: { isHealthy: true } });
  t.deepEqual(Object.keys(runner ?? {}).sort(), ['health', 'hostname', 'lastHeartbeat', 'nodeId', 'port', 'startedAt']);
  const health = runner?.health as Record<string, unknown>;
  t.deepEqual(Object.keys(health).sort(), ['activeContainers', 'cpuUsage', 'isHealthy', 'memoryUsage']);
  t.true(isPercentage(health.cpuUsage), String(health.cpuUsage));
  t.true(isPercentage(health.memoryUsage), String(health.memoryUsage));
  t.true(Number.isInteger(health.activeContainers));
  t.true(typeof runner?.hostname === 'string' && runner.hostname.length > 0);
  t.true(isIsoTimestamp(runner?.startedAt));
  t.true(isIsoTimestamp(runner?.lastHeartbeat));
  t.true(String(runner?.startedAt) <= String(runner?.lastHeartbeat));
});

test('GET /runners/{nodeId} shows resources, counters and the warm containers per version', async (t) => {
  const { strata } = t.context;
  const { admin } = strata;
  const name = uniqueName('counted');
  await deploy(t, admin, name, handlerCode('if (event.fail) throw new Error("failed"); return "ok";'));
  const before = await details(strata);
  await invokeOk(t, admin, name);
  await invokeOk(t, admin, name);
  t.like(await invokeOk(t, admin, name, { payload: { fail: true } }), { statusCode: 500 });

  const after = await eventually('a heartbeat with the three invocations', async () => {
    const runner = await details(strata);
    return runner.metrics.totalInvocations >= before.metrics.totalInvocations + 3 ? runner : undefined;
  });
  t.like(after, {
    nodeId: 'runner-1',
    health: { isHealthy: true, queuedInvocations: 0 },
    resources: { totalCpuCores: cpus().length, maxContainers: MAX_CONTAINERS },
    metrics: {
      totalInvocations: before.metrics.totalInvocations + 3,
      successfulInvocations: before.metrics.successfulInvocations + 2,
      failedInvocations: before.metrics.failedInvocations + 1,
      coldStarts: before.metrics.coldStarts + 1,
    },
  });
  t.is(after.resources.totalMemoryMB, Math.round(totalmem() / 1024 / 1024));
  t.true(isPercentage(after.health.cpuUsage));
  t.true(isPercentage(after.health.memoryUsage));
  t.true(after.health.activeContainers >= 1);
  t.true(after.metrics.avgInvocationDuration >= 0);
  t.true(after.metrics.avgColdStartDuration > 0);
  t.regex(after.activeContainers[`${name}:v1`] ?? '', /^\S+$/, JSON.stringify(after.activeContainers));
  t.is(after.health.activeContainers, Object.keys(after.activeContainers).length);
  t.true(isIsoTimestamp(after.startedAt));
  t.true(after.lastHeartbeat >= before.lastHeartbeat);
});

test('an unknown runner is a 404', async (t) => {
  assertError(t, await t.context.strata.admin.request('GET', '/api/v1/runners/runner-9'), 404, 'NOT_FOUND');
});

test('Admins and Viewers may see runners; Developers and Operators may not', async (t) => {
  const { strata } = t.context;
  const [viewer, developer, operator] = await Promise.all([
    strata.as('Viewer'),
    strata.as('Developer'),
    strata.as('Operator'),
  ]);
  t.is((await viewer.request('GET', '/api/v1/runners')).status, 200);
  t.is((await viewer.request('GET', '/api/v1/runners/runner-1')).status, 200);
  for (const client of [developer, operator]) {
    assertError(t, await client.request('GET', '/api/v1/runners'), 403, 'FORBIDDEN');
    assertError(t, await client.request('GET', '/api/v1/runners/runner-1'), 403, 'FORBIDDEN');
  }
  assertError(t, await strata.anonymous.request('GET', '/api/v1/runners'), 401, 'UNAUTHORIZED');
});

test('a runner that stops heartbeating turns unhealthy, and healthy again when it resumes', async (t) => {
  const { strata } = t.context;
  const [pid] = strata.platform.runnerPids();
  if (pid === undefined) throw new Error('no runner process');
  process.kill(pid, 'SIGSTOP');
  let resumed = false;
  const resume = () => {
    if (!resumed) process.kill(pid, 'SIGCONT');
    resumed = true;
  };
  t.teardown(resume);

  const stopped = await eventually('the runner to turn unhealthy', async () => {
    const runner = await details(strata);
    return runner.health.isHealthy ? undefined : runner;
  });
  const list = await strata.admin.request<{ runners: { health: { isHealthy: boolean } }[] }>('GET', '/api/v1/runners');
  t.false(list.body.runners[0]?.health.isHealthy);
  t.is((await details(strata)).lastHeartbeat, stopped.lastHeartbeat, 'no heartbeat while stopped');

  resume();
  await awaitHealthyRunners(strata.admin, 1);
  t.true((await details(strata)).lastHeartbeat > stopped.lastHeartbeat);
  t.deepEqual(strata.platform.runnerPids(), [pid], 'the same process carried on');
  const name = uniqueName('resumed');
  await deploy(t, strata.admin, name, HELLO);
  t.like(await invokeOk(t, strata.admin, name), { statusCode: 200 });
});
