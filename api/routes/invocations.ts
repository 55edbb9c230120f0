import type { InvocationDispatcher } from '../../commands/invocations.ts';
import { billedDuration } from '../../domain/invocation/messages.ts';
import type { ReadStore } from '../../domain/ports.ts';
import { durationMs } from '../../domain/shared/duration.ts';
import { INVOCATION_COLLECTIONS, logStreamName, queryMetrics, responseOf } from '../../projections/invocations.ts';
import { stripGuard } from '../../projections/readModels.ts';
import { ALL_ROLES, type Endpoint, linksTo } from '../endpoint.ts';
import { ApiError } from '../errors.ts';
import { functionMetrics, invocationLogs, invocationQueued, invocationRecord, invokeResult } from '../responses.ts';
import { invokeBody, metricsQuery } from '../schemas.ts';
import { activeFunction, param } from './common.ts';

export interface InvocationRoutesOptions {
  readonly readStore: ReadStore;
  readonly dispatcher: InvocationDispatcher;
  /** How far back metrics reach (their retention). */
  readonly metricsRetentionMs: number;
  readonly now: () => Date;
}

interface InvokeBody {
  payload?: unknown;
  alias?: string;
  version?: number | string;
  invocationType?: 'RequestResponse' | 'Event' | 'DryRun';
}

const selector = (body: InvokeBody) => ({
  alias: body.alias,
  version: body.version === undefined ? undefined : Number(String(body.version).replace(/^v/, '')),
});

/** `payload` is the event as JSON text (as in the reference); any other JSON value is taken as the event itself. */
const payloadOf = (body: InvokeBody): string => {
  if (body.payload === undefined) return '{}';
  if (typeof body.payload !== 'string') return JSON.stringify(body.payload);
  try {
    JSON.parse(body.payload);
  } catch {
    throw new ApiError('VALIDATION_ERROR', 'Request body validation failed', [
      { field: 'payload', message: 'payload must be JSON text (e.g. "{\\"key\\":1}") or a JSON value' },
    ]);
  }
  return body.payload;
};

/** Waits briefly for a record the results consumer is about to write (a sync call that just returned). */
const awaitRecord = async (readStore: ReadStore, collection: string, requestId: string) => {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const doc = await readStore.get(collection, requestId);
    if (doc !== null) return stripGuard(doc);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
};

const toInvocation = linksTo(['getInvocations', 'getInvocationLogs'], {
  name: '$request.path.name',
  requestId: '$response.body#/requestId',
});

export const invocationEndpoints = (options: InvocationRoutesOptions): Endpoint[] => {
  const { readStore, dispatcher } = options;

  const queueAsync = async (name: string, body: InvokeBody) => {
    const { requestId } = await dispatcher.invokeAsync({
      functionName: name,
      ...selector(body),
      payload: payloadOf(body),
    });
    return { status: 202, body: { requestId, status: 'Queued' } };
  };

  const findRecord = async (name: string, requestId: string) => {
    await activeFunction(readStore, name);
    const record = await awaitRecord(readStore, INVOCATION_COLLECTIONS.records, requestId);
    if (record === null || record.functionName !== name) {
      throw new ApiError('NOT_FOUND', `Invocation '${requestId}' of function '${name}' not found`);
    }
    return record;
  };

  return [
    {
      method: 'POST',
      path: '/functions/{name}/invoke',
      roles: ALL_ROLES,
      rateLimit: 10_000,
      rateLimitBy: 'function',
      body: invokeBody,
      summary: 'Invoke functions',
      description:
        'Runs the function and waits for its answer. `payload` is the event as JSON text (any other JSON value is taken as the event itself); `alias` or `version` choose what runs, else the published version, else the latest. A function that failed still answers 200, with `outcome`, `error` and the X-Strata-Function-Error header.',
      responses: {
        200: {
          description: "The function's answer (invocationType RequestResponse)",
          body: invokeResult,
          links: toInvocation,
        },
        202: { description: 'Queued (invocationType Event)', body: invocationQueued, links: toInvocation },
        204: { description: 'The function exists and may be invoked (invocationType DryRun)' },
      },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, body, ctx }) {
        const name = param(params, 'name');
        const input = body as InvokeBody;
        if (input.invocationType === 'Event') return queueAsync(name, input);
        if (input.invocationType === 'DryRun') {
          await activeFunction(readStore, name);
          return { status: 204 };
        }
        const outcome = await dispatcher.invokeSync({
          functionName: name,
          ...selector(input),
          payload: payloadOf(input),
        });
        if (outcome.kind === 'throttled') {
          throw new ApiError(
            'RATE_LIMIT_EXCEEDED',
            `Function '${name}' is at its concurrency limit of ${outcome.limit}`,
            [],
            {
              'Retry-After': '1',
            },
          );
        }
        if (outcome.kind === 'noAnswer') {
          throw new ApiError(
            'SERVICE_UNAVAILABLE',
            `No runner answered within ${Math.round(outcome.waitedMs / 1000)} s`,
          );
        }
        const { result } = outcome;
        if (result.outcome === 'platformError' && result.fault !== 'function') {
          throw new ApiError(
            result.fault === 'caller' ? 'NOT_FOUND' : 'INTERNAL_ERROR',
            result.error?.message ?? 'The invocation failed on the platform',
          );
        }
        const response = responseOf(result);
        if (result.outcome !== 'success') ctx.set('X-Strata-Function-Error', result.outcome);
        return {
          status: 200,
          body: {
            statusCode: response.statusCode,
            body: response.body,
            ...(result.outcome === 'success' ? {} : { outcome: result.outcome, error: result.error }),
            executionTime: Math.round(result.executionTimeMs * 1000) / 1000,
            billedDuration: billedDuration(result.executionTimeMs),
            memoryUsed: result.memoryUsedMb,
            wasColdStart: result.coldStart,
            coldStartDuration: result.coldStartMs,
            requestId: result.requestId,
            version: result.version === null ? null : `v${result.version}`,
            logStreamName: logStreamName(result),
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/functions/{name}/invoke-async',
      roles: ALL_ROLES,
      rateLimit: 10_000,
      rateLimitBy: 'function',
      body: invokeBody,
      summary: 'Invoke functions asynchronously',
      description: 'Queues an invocation: it is on disk before the answer. Failed attempts are retried.',
      responses: { 202: { description: 'Queued', body: invocationQueued, links: toInvocation } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      handle: ({ params, body }) => queueAsync(param(params, 'name'), body as InvokeBody),
    },
    {
      method: 'GET',
      path: '/functions/{name}/invocations/{requestId}',
      roles: ALL_ROLES,
      rateLimit: 60,
      summary: 'Get invocations',
      responses: { 200: { description: 'The invocation record', body: invocationRecord } },
      errors: ['NOT_FOUND'],
      async handle({ params }) {
        const name = param(params, 'name');
        const { expiresAt: _expires, ...record } = await findRecord(name, param(params, 'requestId'));
        return { status: 200, body: record };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/invocations/{requestId}/logs',
      roles: ALL_ROLES,
      rateLimit: 60,
      summary: 'Get invocation logs',
      responses: { 200: { description: 'What the invocation logged', body: invocationLogs } },
      errors: ['NOT_FOUND'],
      async handle({ params }) {
        const name = param(params, 'name');
        const requestId = param(params, 'requestId');
        const record = await findRecord(name, requestId);
        const logs = await readStore.get(INVOCATION_COLLECTIONS.logs, requestId);
        return {
          status: 200,
          body: {
            requestId,
            logs: (logs?.logs as unknown[] | undefined) ?? [],
            truncated: (logs?.truncated as boolean | undefined) ?? false,
            functionName: name,
            version: record.version,
            status: record.status,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/metrics',
      roles: ALL_ROLES,
      rateLimit: 60,
      query: metricsQuery,
      summary: 'Get function metrics',
      description: 'Counts and duration percentiles over the last `window` (PT1M up to the invocation retention).',
      responses: { 200: { description: 'The metrics', body: functionMetrics } },
      errors: ['NOT_FOUND'],
      async handle({ params, query }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const { window, version } = query as { window: string; version?: string };
        const windowMs = durationMs(window);
        if (windowMs === undefined || windowMs < 60_000 || windowMs > options.metricsRetentionMs) {
          throw new ApiError('VALIDATION_ERROR', 'Invalid metrics window', [
            {
              field: 'window',
              message: `window must be an ISO-8601 duration from PT1M up to the metrics retention (${Math.round(options.metricsRetentionMs / 3_600_000)} h)`,
            },
          ]);
        }
        const now = options.now();
        const metrics = await queryMetrics(
          readStore,
          name,
          windowMs,
          now,
          version === undefined ? undefined : Number(version.replace(/^v/, '')),
        );
        return {
          status: 200,
          body: {
            functionName: name,
            window,
            ...(version === undefined ? {} : { version: `v${version.replace(/^v/, '')}` }),
            metrics,
            timestamp: now.toISOString(),
          },
        };
      },
    },
  ];
};
