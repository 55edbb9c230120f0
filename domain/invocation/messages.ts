/**
 * The invocation plane's messages. `InvocationRequest` is a public contract: producers outside Strata
 * may write it to the invocations topic. Its JSON Schema is `INVOCATION_REQUEST_SCHEMA` (versioned by
 * `schemaVersion`); runners validate every message against it.
 */

export const TOPICS = {
  /** Durable: async invocations (and external producers' messages). */
  invocations: 'strata.invocations',
  /** Sync invocations: a caller is waiting, so nothing is gained by storing them durably. */
  syncInvocations: 'strata.invocations.sync',
  /** Durable: every invocation's result, for records, logs and metrics. */
  results: 'strata.results',
  /** Durable: async invocations that could not run, and messages that are not valid requests. */
  deadLetters: 'strata.dead-letters',
  /** Runner heartbeats. */
  heartbeats: 'strata.heartbeats',
  /** Per API node: replies to the sync invocations it is waiting for. */
  replies: (nodeId: string) => `strata.replies.${nodeId}`,
} as const;

export const RUNNER_GROUP = 'strata-runners';

export type InvocationType = 'RequestResponse' | 'Event';

export interface InvocationRequest {
  readonly schemaVersion: 1;
  /** Unique per invocation; when absent, one is derived from the message's topic, partition and offset. */
  readonly requestId?: string;
  readonly functionName: string;
  /** Which version runs: an alias, a version number, or neither (publishedVersion, else the latest). */
  readonly alias?: string;
  readonly version?: number;
  /** The event: JSON text, or any JSON value. */
  readonly payload?: unknown;
  readonly invocationType?: InvocationType;
  /** Topic to send the result to (sync callers). */
  readonly replyTo?: string;
  /**
   * With `replyTo`: the caller records the result it is answered with (Strata's API nodes do), so the
   * runner publishes the reply only, not also the result on the results topic.
   */
  readonly callerRecords?: boolean;
  /** When the request was accepted (ISO-8601); the maximum event age counts from here. */
  readonly enqueuedAt?: string;
  /** W3C trace context of the caller. */
  readonly traceparent?: string;
}

export const INVOCATION_REQUEST_SCHEMA = {
  $id: 'https://strata.dev/schemas/invocation-request/v1.json',
  type: 'object',
  required: ['schemaVersion', 'functionName'],
  additionalProperties: false,
  properties: {
    schemaVersion: { const: 1 },
    requestId: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
    functionName: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$' },
    alias: { type: 'string', minLength: 1, maxLength: 128 },
    version: { type: 'integer', minimum: 1 },
    payload: {},
    invocationType: { enum: ['RequestResponse', 'Event'] },
    replyTo: { type: 'string', pattern: '^strata\\.replies\\.[A-Za-z0-9._-]{1,128}$' },
    callerRecords: { type: 'boolean' },
    enqueuedAt: { type: 'string', format: 'date-time' },
    traceparent: { type: 'string', maxLength: 256 },
  },
} as const;

export type InvocationStatus =
  | 'Queued'
  | 'Running'
  | 'Succeeded'
  | 'Failed'
  | 'TimedOut'
  | 'Throttled'
  | 'DeadLettered';

/** The result of one invocation, as runners publish it. */
export interface InvocationResult {
  readonly schemaVersion: 1;
  readonly requestId: string;
  readonly functionName: string;
  /** Null when the request never resolved to a version (unknown function, bad alias). */
  readonly version: number | null;
  readonly invocationType: InvocationType;
  readonly outcome: 'success' | 'functionError' | 'timeout' | 'outOfMemory' | 'throttled' | 'platformError';
  readonly fault: 'none' | 'function' | 'caller' | 'platform';
  /** The handler's return value as JSON text, on success. */
  readonly result?: string;
  readonly error?: { readonly type: string; readonly message: string; readonly stack?: string };
  readonly logs: readonly { readonly timestamp: string; readonly level: string; readonly message: string }[];
  readonly logsTruncated: boolean;
  /** Handler time, ms (fractional). */
  readonly executionTimeMs: number;
  readonly memoryUsedMb: number;
  readonly coldStart: boolean;
  readonly coldStartMs: number | null;
  readonly runnerId: string | null;
  readonly containerId: string | null;
  readonly attempts: number;
  readonly enqueuedAt: string;
  readonly startedAt: string;
  readonly completedAt: string;
  /** True when the invocation was given up and sent to the dead-letter topic. */
  readonly deadLettered: boolean;
}

/** Lambda's rule: billed time is the execution time rounded up to the next 100 ms (at least 100). */
export const billedDuration = (executionTimeMs: number): number =>
  Math.max(100, Math.ceil(executionTimeMs / 100) * 100);

export const statusOf = (result: Pick<InvocationResult, 'outcome' | 'deadLettered'>): InvocationStatus => {
  if (result.deadLettered) return 'DeadLettered';
  switch (result.outcome) {
    case 'success':
      return 'Succeeded';
    case 'timeout':
      return 'TimedOut';
    case 'throttled':
      return 'Throttled';
    default:
      return 'Failed';
  }
};

export interface RunnerHeartbeat {
  readonly schemaVersion: 1;
  readonly nodeId: string;
  readonly hostname: string;
  readonly port: number | null;
  readonly startedAt: string;
  readonly sentAt: string;
  readonly intervalMs: number;
  readonly cpuUsage: number;
  readonly memoryUsage: number;
  readonly totalCpuCores: number;
  readonly totalMemoryMB: number;
  readonly maxContainers: number;
  readonly activeContainers: Readonly<Record<string, string>>;
  readonly activeContainerCount: number;
  readonly queuedInvocations: number;
  readonly inFlightInvocations: number;
  readonly totals: {
    readonly invocations: number;
    readonly successes: number;
    readonly failures: number;
    readonly coldStarts: number;
    readonly durationMsSum: number;
    readonly coldStartMsSum: number;
  };
}
