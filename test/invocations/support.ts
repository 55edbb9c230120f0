import { setTimeout as sleep } from 'node:timers/promises';
import type { ExecutionContext } from 'ava';
import type { PlatformDependencies } from '../../infra/platform.ts';
import { type Client, type Response, startTestPlatform, type TestPlatform, zipBase64 } from '../support/platform.ts';
import type { FunctionMetrics } from '../../projections/invocations.ts';

/** Short intervals, so that heartbeats, retries and the results they lead to come quickly; quiet runners. */
export const FAST_ENV: Readonly<Record<string, string>> = {
  STRATA_LOG_LEVEL: 'warn',
  STRATA_HEARTBEAT_INTERVAL: 'PT0.2S',
  STRATA_RETRY_BASE_DELAY: 'PT0.05S',
};

/** How long a test waits for something that should happen soon (generous: CI machines are slow). */
const PATIENCE_MS = 30_000;

/** Polls `probe` until it returns something other than undefined, or fails after `timeoutMs`. */
export const eventually = async <T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = PATIENCE_MS,
): Promise<T> => {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > giveUpAt) throw new Error(`gave up waiting for ${what}`);
    await sleep(50);
  }
};

export interface RunnerSummary {
  readonly nodeId: string;
  readonly health: { readonly isHealthy: boolean };
}

/** Waits until every runner the platform supervises has sent a heartbeat and is healthy. */
export const awaitHealthyRunners = (client: Client, count: number): Promise<RunnerSummary[]> =>
  eventually(`${count} healthy runner(s)`, async () => {
    const response = await client.request<{ runners: RunnerSummary[] }>('GET', '/api/v1/runners');
    const healthy = response.body.runners?.filter((runner) => runner.health.isHealthy) ?? [];
    return healthy.length >= count ? response.body.runners : undefined;
  });

/**
 * A platform with real runner processes (one by default), fast heartbeats and retries, and rate limits
 * off; resolves once its runners answer.
 */
export const startInvocationPlatform = async (
  env: Record<string, string> = {},
  dependencies: PlatformDependencies = {},
): Promise<TestPlatform> => {
  const runners = dependencies.runners ?? 1;
  const test = await startTestPlatform({ ...FAST_ENV, ...env }, { ...dependencies, runners });
  try {
    await awaitHealthyRunners(test.admin, runners === 'inProcess' ? 1 : runners);
  } catch (error) {
    await test.stop();
    throw error;
  }
  return test;
};

/** A Node24 package whose index.js is `source`. */
export const nodeCode = (source: string): string => zipBase64({ 'index.js': source });

/** A package whose `exports.handler` is the async function with the given body (event and context in scope). */
export const handlerCode = (body: string): string =>
  nodeCode(`exports.handler = async (event, context) => {\n${body}\n};\n`);

export const HELLO = handlerCode('return { statusCode: 200, body: JSON.stringify({ hello: event.name ?? "world" }) };');

const expectStatus = <T>(t: ExecutionContext, response: Response<T>, status: number, what: string): T => {
  if (response.status !== status) {
    t.fail(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
    throw new Error(`${what} failed`);
  }
  return response.body;
};

/** Creates a Node24 function (fields override the defaults) and publishes each package as a version. */
export const deploy = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  code: string | readonly string[],
  fields: Record<string, unknown> = {},
): Promise<void> => {
  const created = await client.request('POST', '/api/v1/functions', {
    body: { name, runtime: 'Node24', handler: 'index.handler', ...fields },
  });
  expectStatus(t, created, 201, `create ${name}`);
  for (const zip of typeof code === 'string' ? [code] : code) {
    const published = await client.request('POST', `/api/v1/functions/${name}/versions`, { body: { code: zip } });
    expectStatus(t, published, 201, `publish ${name}`);
  }
};

export interface InvokeResponse {
  readonly statusCode: number;
  readonly body: string;
  readonly outcome?: string;
  readonly error?: { readonly type: string; readonly message: string };
  readonly executionTime: number;
  readonly billedDuration: number;
  readonly memoryUsed: number;
  readonly wasColdStart: boolean;
  readonly coldStartDuration: number | null;
  readonly requestId: string;
  readonly version: string | null;
  readonly logStreamName: string | null;
}

export const invoke = (client: Client, name: string, body: Record<string, unknown> = {}) =>
  client.request<InvokeResponse>('POST', `/api/v1/functions/${name}/invoke`, { body });

/** A sync invoke that must answer 200; returns the response body. */
export const invokeOk = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  body: Record<string, unknown> = {},
): Promise<InvokeResponse> => expectStatus(t, await invoke(client, name, body), 200, `invoke ${name}`);

/** Queues an async invoke that must answer 202; returns its request id. */
export const invokeAsync = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  body: Record<string, unknown> = {},
): Promise<string> => {
  const response = await client.request<{ requestId: string; status: string }>(
    'POST',
    `/api/v1/functions/${name}/invoke-async`,
    { body },
  );
  const accepted = expectStatus(t, response, 202, `invoke-async ${name}`);
  t.is(accepted.status, 'Queued');
  return accepted.requestId;
};

export interface InvocationRecord {
  readonly requestId: string;
  readonly functionName: string;
  readonly version: string | null;
  readonly invocationType: string;
  readonly status: string;
  readonly outcome: string | null;
  readonly statusCode: number | null;
  readonly body: string | null;
  readonly error: { readonly type: string; readonly message: string } | null;
  readonly attempts: number;
  readonly executionTime: number | null;
  readonly billedDuration: number | null;
  readonly memoryUsed: number | null;
  readonly wasColdStart: boolean | null;
  readonly completedAt: string | null;
}

const FINAL_STATUSES: ReadonlySet<string> = new Set(['Succeeded', 'Failed', 'TimedOut', 'Throttled', 'DeadLettered']);

/** Polls GET …/invocations/{requestId} until the invocation has a final status. */
export const finalRecord = (client: Client, name: string, requestId: string, timeoutMs?: number) =>
  eventually(
    `a final status of ${requestId}`,
    async () => {
      const response = await client.request<InvocationRecord>(
        'GET',
        `/api/v1/functions/${name}/invocations/${requestId}`,
      );
      return response.status === 200 && FINAL_STATUSES.has(response.body.status) ? response.body : undefined;
    },
    timeoutMs,
  );

export type Metrics = FunctionMetrics;

/** Polls the metrics endpoint until `ready` holds (metrics are written once a second). */
export const metricsWhen = (
  client: Client,
  name: string,
  ready: (metrics: Metrics) => boolean,
  query = 'window=PT1H',
): Promise<Metrics> =>
  eventually(`metrics of ${name}`, async () => {
    const response = await client.request<{ metrics: Metrics }>('GET', `/api/v1/functions/${name}/metrics?${query}`);
    return response.status === 200 && ready(response.body.metrics) ? response.body.metrics : undefined;
  });
