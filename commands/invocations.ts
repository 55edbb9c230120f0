import { context, propagation } from '@opentelemetry/api';
import { type InvocationRequest, type InvocationResult, TOPICS } from '../domain/invocation/messages.ts';
import type { BusMessage, Consumer, InvocationBus, ReadStore } from '../domain/ports.ts';
import { DomainFailure, isDomainError } from '../domain/shared/errors.ts';
import type { InvocationRecorder } from '../projections/invocations.ts';
import { type InvocationTarget, resolveInvocationTarget } from '../projections/queries.ts';

export interface DispatcherOptions {
  readonly nodeId: string;
  readonly bus: InvocationBus;
  readonly readStore: ReadStore;
  /** Where the Queued record of an accepted async request is written (and removed if its publish failed). */
  readonly recorder: Pick<InvocationRecorder, 'queued' | 'forget'>;
  /**
   * Records the result of a sync invocation this node was answered with (its JSON text alongside): sync
   * requests ask the runner for the reply only. Called for every reply, awaited or not; it reports its own
   * failures.
   */
  readonly recordAnswer: (result: InvocationResult, value: string) => void;
  /** Invocations of one function this node lets run at once, unless the function says otherwise. */
  readonly defaultConcurrencyLimit: number;
  /** How much longer than the function's timeout a sync caller waits for a runner's answer. */
  readonly replyGraceMs: number;
  readonly now?: () => Date;
  readonly random?: () => number;
  readonly newRequestId: () => string;
}

export interface InvokeInput {
  readonly functionName: string;
  readonly alias?: string | undefined;
  readonly version?: number | undefined;
  /** The event as JSON text. */
  readonly payload: string;
}

/** W3C trace context of the active span, carried in the request so the runner's span joins the trace. */
const currentTraceparent = (): string | undefined => {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent;
};

export type SyncOutcome =
  | { readonly kind: 'completed'; readonly target: InvocationTarget; readonly result: InvocationResult }
  | { readonly kind: 'throttled'; readonly requestId: string; readonly limit: number }
  | { readonly kind: 'noAnswer'; readonly requestId: string; readonly waitedMs: number };

/**
 * The API side of invocations: picks the version, enforces the per-function concurrency limit, sends the
 * request over the bus and, for sync calls, waits on this node's reply topic for the runner's answer.
 */
export const createInvocationDispatcher = (options: DispatcherOptions) => {
  const now = options.now ?? (() => new Date());
  const random = options.random ?? Math.random;
  const replyTopic = TOPICS.replies(options.nodeId);
  const waiting = new Map<string, (result: InvocationResult) => void>();
  const running = new Map<string, number>();
  let consumer: Consumer | undefined;

  const resolve = async (input: InvokeInput): Promise<InvocationTarget> => {
    const target = await resolveInvocationTarget(
      options.readStore,
      input.functionName,
      { alias: input.alias, version: input.version },
      random,
    );
    if (isDomainError(target)) throw new DomainFailure(target);
    return target;
  };

  const concurrencyLimitOf = (target: InvocationTarget) =>
    target.fn.concurrencyLimit ?? options.defaultConcurrencyLimit;

  const publishThrottle = async (target: InvocationTarget, requestId: string, limit: number) => {
    const at = now().toISOString();
    const result: InvocationResult = {
      schemaVersion: 1,
      requestId,
      functionName: target.fn.name,
      version: target.version.version,
      invocationType: 'RequestResponse',
      outcome: 'throttled',
      fault: 'caller',
      error: { type: 'TooManyRequests', message: `Concurrency limit of ${limit} reached` },
      logs: [],
      logsTruncated: false,
      executionTimeMs: 0,
      memoryUsedMb: 0,
      coldStart: false,
      coldStartMs: null,
      runnerId: null,
      containerId: null,
      attempts: 0,
      enqueuedAt: at,
      startedAt: at,
      completedAt: at,
      deadLettered: false,
    };
    await options.bus.publish(TOPICS.results, [{ key: target.fn.name, value: JSON.stringify(result) }]);
  };

  const message = (target: InvocationTarget, input: InvokeInput, requestId: string, sync: boolean): BusMessage => {
    const traceparent = currentTraceparent();
    const request: InvocationRequest = {
      schemaVersion: 1,
      requestId,
      functionName: target.fn.name,
      version: target.version.version,
      payload: input.payload,
      invocationType: sync ? 'RequestResponse' : 'Event',
      ...(sync ? { replyTo: replyTopic, callerRecords: true } : {}),
      enqueuedAt: now().toISOString(),
      ...(traceparent === undefined ? {} : { traceparent }),
    };
    return {
      key: target.fn.name,
      value: JSON.stringify(request),
      ...(traceparent === undefined ? {} : { headers: { traceparent } }),
    };
  };

  return {
    async start(): Promise<void> {
      await options.bus.ensureTopics([
        { name: TOPICS.invocations },
        { name: TOPICS.syncInvocations, ephemeral: true },
        { name: TOPICS.results },
        { name: TOPICS.deadLetters },
        { name: replyTopic, ephemeral: true },
      ]);
      consumer = await options.bus.consume(
        { topic: replyTopic, group: options.nodeId, from: 'latest', concurrency: 64 },
        async (message) => {
          const result = JSON.parse(message.value) as InvocationResult;
          waiting.get(result.requestId)?.(result);
          options.recordAnswer(result, message.value);
        },
      );
    },

    async invokeSync(input: InvokeInput): Promise<SyncOutcome> {
      const target = await resolve(input);
      const requestId = options.newRequestId();
      const limit = concurrencyLimitOf(target);
      const current = running.get(target.fn.name) ?? 0;
      if (current >= limit) {
        await publishThrottle(target, requestId, limit);
        return { kind: 'throttled', requestId, limit };
      }
      running.set(target.fn.name, current + 1);
      const waitMs = target.version.timeout * 1000 + options.replyGraceMs;
      try {
        const answer = new Promise<InvocationResult | undefined>((settle) => {
          const timer = setTimeout(() => settle(undefined), waitMs);
          waiting.set(requestId, (result) => {
            clearTimeout(timer);
            settle(result);
          });
        });
        await options.bus.publish(TOPICS.syncInvocations, [message(target, input, requestId, true)]);
        const result = await answer;
        return result === undefined
          ? { kind: 'noAnswer', requestId, waitedMs: waitMs }
          : { kind: 'completed', target, result };
      } finally {
        waiting.delete(requestId);
        const left = (running.get(target.fn.name) ?? 1) - 1;
        if (left === 0) running.delete(target.fn.name);
        else running.set(target.fn.name, left);
      }
    },

    /** Durably queues the invocation: when this resolves, a crash loses nothing. */
    async invokeAsync(input: InvokeInput): Promise<{ requestId: string; target: InvocationTarget }> {
      const target = await resolve(input);
      const requestId = options.newRequestId();
      await options.recorder.queued({
        requestId,
        functionName: target.fn.name,
        version: target.version.version,
        enqueuedAt: now().toISOString(),
      });
      try {
        await options.bus.publish(TOPICS.invocations, [message(target, input, requestId, false)]);
      } catch (error) {
        await options.recorder.forget(requestId).catch(() => undefined);
        throw error;
      }
      return { requestId, target };
    },

    async close(): Promise<void> {
      await consumer?.close();
    },
  };
};

export type InvocationDispatcher = ReturnType<typeof createInvocationDispatcher>;
