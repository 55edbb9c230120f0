import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  INVOCATION_REQUEST_SCHEMA,
  type InvocationRequest,
  type InvocationResult,
  type InvocationType,
  TOPICS,
} from '../domain/invocation/messages.ts';
import type { CodeStore, DeliveredMessage, InvocationBus, ReadStore } from '../domain/ports.ts';
import { isDomainError } from '../domain/shared/errors.ts';
import { runtimeSpec } from '../domain/runtimes.ts';
import type { VersionDocument } from '../projections/documents.ts';
import { resolveInvocationTarget } from '../projections/queries.ts';
import type { Pool } from './pool.ts';
import { type ContainerResult, ContainerStartError, type Outcome, type RuntimeDriver } from './runtime.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const validateRequest = addFormats(new Ajv({ allErrors: true, strict: true })).compile(INVOCATION_REQUEST_SCHEMA);

export interface InvokerOptions {
  readonly nodeId: string;
  readonly bus: InvocationBus;
  readonly readStore: ReadStore;
  readonly codeStore: CodeStore;
  /** Drivers by name (`isolate`, `container`), as the runtime table names them. */
  readonly drivers: Readonly<Record<string, RuntimeDriver>>;
  readonly pool: Pool;
  /** First retry delay; doubles on each further retry. */
  readonly retryBaseDelayMs: number;
  /** Oldest an async request may ever be when it (re)starts; functions may ask for less. */
  readonly maxEventAgeMs: number;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly onResult?: (result: InvocationResult) => void;
  /** Where trouble that fails no invocation is reported: a sync result that could not be recorded. */
  readonly logger?: { warn(fields: object, message: string): void };
}

export interface Counters {
  invocations: number;
  successes: number;
  failures: number;
  coldStarts: number;
  durationMsSum: number;
  coldStartMsSum: number;
}

const tracer = trace.getTracer('strata-runner');

/** The caller's trace context: the message's `traceparent` header, else the request's field. */
const parentContext = (message: DeliveredMessage) => {
  const fromHeader = message.headers?.traceparent;
  let traceparent = fromHeader;
  if (traceparent === undefined) {
    const match = /"traceparent":"([0-9a-f-]{55})"/.exec(message.value);
    traceparent = match?.[1];
  }
  return traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, { traceparent });
};

/** Lambda's limit on a sync response: larger results are a function error. */
const MAX_RESULT_CHARS = 6 * 1024 * 1024;

const RETRYABLE: ReadonlySet<Outcome> = new Set(['functionError', 'timeout', 'outOfMemory', 'platformError']);

/** Sync results still being written after their reply went out; past this many, a sync request waits for its own. */
const MAX_UNRECORDED = 1_024;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });

const payloadText = (payload: unknown): string => {
  if (payload === undefined) return '{}';
  if (typeof payload === 'string') return payload;
  return JSON.stringify(payload);
};

/** Runs invocation requests from the bus and publishes their results: the heart of a runner. */
export const createInvoker = (options: InvokerOptions) => {
  const now = options.now ?? Date.now;
  const random = options.random ?? Math.random;
  const codeCache = new Map<string, Uint8Array>();
  const counters: Counters = {
    invocations: 0,
    successes: 0,
    failures: 0,
    coldStarts: 0,
    durationMsSum: 0,
    coldStartMsSum: 0,
  };
  let inFlight = 0;

  const loadCode = async (sha256: string): Promise<Uint8Array> => {
    const cached = codeCache.get(sha256);
    if (cached !== undefined) return cached;
    const bytes = await options.codeStore.get(sha256);
    if (bytes === null)
      throw new ContainerStartError('platformError', 'CodeNotFound', `Code package ${sha256} is missing`);
    if (codeCache.size >= 256) codeCache.delete(codeCache.keys().next().value ?? sha256);
    codeCache.set(sha256, bytes);
    return bytes;
  };

  /** One attempt: a container from the pool (or a new one), then the call. */
  const attempt = async (
    version: VersionDocument,
    requestId: string,
    payload: string,
  ): Promise<{ result: ContainerResult; cold: boolean; coldStartMs: number | null; containerId: string | null }> => {
    const spec = runtimeSpec(version.runtime);
    const driver = spec === undefined ? undefined : options.drivers[spec.driver];
    if (driver === undefined) {
      return {
        result: failure(
          'platformError',
          'platform',
          'RuntimeUnavailable',
          `Runtime ${version.runtime} is not available on this runner`,
        ),
        cold: false,
        coldStartMs: null,
        containerId: null,
      };
    }
    const key = `${version.functionName}:${version.versionString}`;
    let lease: Awaited<ReturnType<Pool['acquire']>>;
    try {
      lease = await options.pool.acquire(key, async () =>
        driver.createContainer({
          functionName: version.functionName,
          version: version.version,
          runtime: version.runtime,
          handler: version.handler,
          memorySize: version.memorySize,
          timeout: version.timeout,
          environment: version.environment,
          code: await loadCode(version.codeSha256),
        }),
      );
    } catch (error) {
      const start = error instanceof ContainerStartError ? error : undefined;
      return {
        result: failure(
          start?.outcome ?? 'platformError',
          start?.outcome === 'functionError' ? 'function' : 'platform',
          start?.type ?? 'PlatformError',
          start?.message ?? `The sandbox could not start: ${(error as Error).message}`,
        ),
        cold: true,
        coldStartMs: null,
        containerId: null,
      };
    }
    let result = await lease.container.invoke({ requestId, payload, deadline: now() + version.timeout * 1000 });
    lease.release(result.disposeContainer);
    if (result.result !== undefined && result.result.length > MAX_RESULT_CHARS) {
      const { result: _dropped, ...rest } = result;
      result = {
        ...rest,
        outcome: 'functionError',
        fault: 'function',
        error: {
          type: 'ResultTooLarge',
          message: `The handler returned more than ${MAX_RESULT_CHARS / 1024 / 1024} MB of JSON`,
        },
      };
    }
    return {
      result,
      cold: lease.cold,
      coldStartMs: lease.cold ? lease.container.coldStartMs : null,
      containerId: lease.container.id,
    };
  };

  const unrecorded = new Set<Promise<void>>();

  const publishResult = async (result: InvocationResult, request: InvocationRequest) => {
    const { replyTo, traceparent } = request;
    const headers = traceparent === undefined ? undefined : { traceparent };
    const message = { key: result.functionName, value: JSON.stringify(result), ...(headers ? { headers } : {}) };
    if (replyTo === undefined) {
      await options.bus.publish(TOPICS.results, [message]);
      options.onResult?.(result);
      return;
    }
    // A sync caller waits for the reply itself; neither publish is confirmed, so the runner's answer and its
    // acknowledgement of the request go out as one write (the reply is delivered straight away, a result after
    // the bus log's next commit). A caller that records what it is answered with (a Strata API node) gets the
    // reply only: the result would cross the bus a second time for the same record.
    const sync = { confirm: false };
    const replied = options.bus.publish(replyTo, [message], sync);
    if (request.callerRecords === true) {
      await replied;
      options.onResult?.(result);
      return;
    }
    // A sync request lives on an ephemeral topic and its caller has the answer: holding the request (and a
    // runner slot) until the result is on disk only slows the next call, and a redelivery would run it again.
    const recording: Promise<void> = options.bus
      .publish(TOPICS.results, [message], sync)
      .then(() => options.onResult?.(result))
      .then(undefined, (error: unknown) =>
        options.logger?.warn(
          { err: error, requestId: result.requestId },
          'the result of a sync invocation could not be recorded',
        ),
      )
      .finally(() => unrecorded.delete(recording));
    unrecorded.add(recording);
    await replied;
    if (unrecorded.size > MAX_UNRECORDED) await recording;
  };

  const deadLetter = (message: DeliveredMessage, reason: string, requestId?: string) =>
    options.bus.publish(TOPICS.deadLetters, [
      {
        key: message.key,
        value: JSON.stringify({
          reason,
          requestId: requestId ?? null,
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          original: message.value,
          failedAt: new Date(now()).toISOString(),
        }),
        headers: { 'strata-dead-letter-reason': reason.slice(0, 200) },
      },
    ]);

  const count = (result: InvocationResult) => {
    counters.invocations += 1;
    if (result.outcome === 'success') counters.successes += 1;
    else counters.failures += 1;
    counters.durationMsSum += result.executionTimeMs;
    if (result.coldStart) {
      counters.coldStarts += 1;
      counters.coldStartMsSum += result.coldStartMs ?? 0;
    }
  };

  const handle = (message: DeliveredMessage): Promise<void> =>
    tracer.startActiveSpan(
      `invoke ${message.key}`,
      { kind: SpanKind.CONSUMER },
      parentContext(message),
      async (span) => {
        try {
          const outcome = await handleMessage(message);
          if (outcome !== undefined) {
            span.setAttribute('strata.outcome', outcome);
            if (outcome !== 'success') span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
          }
        } finally {
          span.end();
        }
      },
    );

  /** Runs one request; resolves to its final outcome (undefined when the message was not a valid request). */
  const handleMessage = async (message: DeliveredMessage): Promise<Outcome | undefined> => {
    let request: InvocationRequest;
    try {
      request = JSON.parse(message.value) as InvocationRequest;
    } catch (error) {
      await deadLetter(message, `Invalid JSON: ${(error as Error).message}`);
      return undefined;
    }
    if (!validateRequest(request)) {
      const reason = (validateRequest.errors ?? [])
        .map((error) => `${error.instancePath || '/'} ${error.message ?? 'is invalid'}`)
        .join('; ');
      await deadLetter(message, `Invalid invocation request: ${reason}`);
      return undefined;
    }
    const requestId = request.requestId ?? `msg-${message.topic}-${message.partition}-${message.offset}`;
    const invocationType: InvocationType =
      request.invocationType ?? (request.replyTo === undefined ? 'Event' : 'RequestResponse');
    const enqueuedAt = request.enqueuedAt ?? message.timestamp;
    const startedAt = new Date(now()).toISOString();
    const base = {
      schemaVersion: 1 as const,
      requestId,
      functionName: request.functionName,
      invocationType,
      logs: [],
      logsTruncated: false,
      executionTimeMs: 0,
      memoryUsedMb: 0,
      coldStart: false,
      coldStartMs: null,
      runnerId: options.nodeId,
      containerId: null,
      enqueuedAt,
      startedAt,
      deadLettered: false,
    };

    inFlight += 1;
    try {
      const target = await resolveInvocationTarget(
        options.readStore,
        request.functionName,
        { alias: request.alias, version: request.version },
        random,
      );
      if (isDomainError(target)) {
        const result: InvocationResult = {
          ...base,
          version: request.version ?? null,
          outcome: 'platformError',
          fault: 'caller',
          error: {
            type: target.code === 'NOT_FOUND' ? 'ResourceNotFound' : 'ResourceConflict',
            message: target.message,
          },
          attempts: 0,
          completedAt: new Date(now()).toISOString(),
          deadLettered: invocationType === 'Event',
        };
        if (invocationType === 'Event') await deadLetter(message, target.message, requestId);
        await publishResult(result, request);
        return result.outcome;
      }
      const { fn } = target;
      const retries = invocationType === 'Event' ? fn.asyncRetries : 0;
      const maxAgeMs = Math.min(fn.maxEventAgeSeconds * 1000, options.maxEventAgeMs);
      const payload = payloadText(request.payload);
      let attempts = 0;
      for (;;) {
        if (invocationType === 'Event' && now() - Date.parse(enqueuedAt) > maxAgeMs) {
          const reason = `Maximum event age of ${Math.round(maxAgeMs / 1000)} s exceeded after ${attempts} attempt(s)`;
          await deadLetter(message, reason, requestId);
          await publishResult(
            {
              ...base,
              version: target.version.version,
              outcome: 'platformError',
              fault: 'platform',
              error: { type: 'EventAgeExceeded', message: reason },
              attempts,
              completedAt: new Date(now()).toISOString(),
              deadLettered: true,
            },
            request,
          );
          return 'platformError';
        }
        attempts += 1;
        const run = await attempt(target.version, requestId, payload);
        const retry = RETRYABLE.has(run.result.outcome) && attempts <= retries;
        const exhausted = invocationType === 'Event' && run.result.outcome !== 'success' && !retry;
        const result: InvocationResult = {
          ...base,
          version: target.version.version,
          outcome: run.result.outcome,
          fault: run.result.fault,
          ...(run.result.result === undefined ? {} : { result: run.result.result }),
          ...(run.result.error === undefined ? {} : { error: run.result.error }),
          logs: run.result.logs,
          logsTruncated: run.result.logsTruncated,
          executionTimeMs: run.result.durationMs,
          memoryUsedMb: run.result.memoryUsedMb,
          coldStart: run.cold,
          coldStartMs: run.coldStartMs,
          containerId: run.containerId,
          attempts,
          completedAt: new Date(now()).toISOString(),
          deadLettered: exhausted,
        };
        count(result);
        if (!retry) {
          if (exhausted) await deadLetter(message, `${run.result.outcome} after ${attempts} attempt(s)`, requestId);
          await publishResult(result, request);
          return result.outcome;
        }
        await sleep(options.retryBaseDelayMs * 2 ** (attempts - 1), message.signal);
        if (message.signal?.aborted) throw new Error('Invocation taken back while waiting to retry');
      }
    } finally {
      inFlight -= 1;
    }
  };

  return {
    handle,
    counters: (): Readonly<Counters> => ({ ...counters }),
    inFlight: () => inFlight,
    /** Resolves once the results of sync invocations already answered are written (or reported lost). */
    async drain(): Promise<void> {
      await Promise.all(unrecorded);
    },
  };
};

const failure = (
  outcome: Outcome,
  fault: ContainerResult['fault'],
  type: string,
  message: string,
): ContainerResult => ({
  outcome,
  fault,
  error: { type, message },
  logs: [],
  logsTruncated: false,
  durationMs: 0,
  memoryUsedMb: 0,
  disposeContainer: false,
});

export type Invoker = ReturnType<typeof createInvoker>;
