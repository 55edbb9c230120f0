import { DDSketch } from '@datadog/sketches-js';
import { billedDuration, type InvocationResult, statusOf } from '../domain/invocation/messages.ts';
import type { Document, DocumentWrite, ReadStore } from '../domain/ports.ts';

/** Read models fed by invocation results (not by events: invocations are not events). */
export const INVOCATION_COLLECTIONS = {
  records: 'invocations',
  logs: 'invocationLogs',
  buckets: 'metricBuckets',
  totals: 'invocationTotals',
} as const;

// Only what is queried: records and logs are read by id, and swept by expiry. Every index costs each of the
// records written per invocation a page write (records by function and time were indexed, and never read).
export const INVOCATION_INDEXES: readonly (readonly [string, readonly string[]])[] = [
  [INVOCATION_COLLECTIONS.records, ['expiresAt']],
  [INVOCATION_COLLECTIONS.logs, ['expiresAt']],
  [INVOCATION_COLLECTIONS.buckets, ['functionName', 'minute']],
  [INVOCATION_COLLECTIONS.buckets, ['minute']],
  [INVOCATION_COLLECTIONS.totals, ['key']],
];

/** 1% relative accuracy on every percentile. */
const RELATIVE_ACCURACY = 0.01;
const MINUTE_MS = 60_000;
/** Results stored with one write at most. */
const MAX_BATCH = 512;

export interface InvocationRecord {
  readonly requestId: string;
  readonly functionName: string;
  readonly version: string | null;
  readonly invocationType: string;
  readonly status: string;
  readonly outcome: string | null;
  readonly fault: string | null;
  readonly statusCode: number | null;
  readonly body: string | null;
  readonly error: { type: string; message: string } | null;
  readonly executionTime: number | null;
  readonly billedDuration: number | null;
  readonly memoryUsed: number | null;
  readonly wasColdStart: boolean | null;
  readonly coldStartDuration: number | null;
  readonly attempts: number;
  readonly runnerId: string | null;
  readonly logStreamName: string | null;
  readonly enqueuedAt: string;
  readonly startedAt: string | null;
  readonly completedAt: string | null;
  readonly expiresAt: string;
}

/** What a function returned, as the invoke API shows it: API-gateway style objects pass through. */
export const responseOf = (result: Pick<InvocationResult, 'outcome' | 'result' | 'error'>) => {
  if (result.outcome !== 'success') {
    return {
      statusCode: result.outcome === 'throttled' ? 429 : 500,
      body: JSON.stringify({ errorType: result.error?.type ?? 'Error', errorMessage: result.error?.message ?? '' }),
    };
  }
  const text = result.result ?? 'null';
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && 'statusCode' in value) {
      const shaped = value as { statusCode: unknown; body?: unknown };
      if (Number.isInteger(shaped.statusCode)) {
        const body =
          shaped.body === undefined ? '' : typeof shaped.body === 'string' ? shaped.body : JSON.stringify(shaped.body);
        return { statusCode: shaped.statusCode as number, body };
      }
    }
  } catch {
    // not JSON: shown as it is
  }
  return { statusCode: 200, body: text };
};

export const logStreamName = (
  result: Pick<InvocationResult, 'functionName' | 'version' | 'containerId' | 'startedAt'>,
) =>
  result.containerId === null
    ? null
    : `${result.startedAt.slice(0, 10)}/${result.functionName}-v${result.version ?? 0}-${result.containerId}`;

export const recordOf = (result: InvocationResult, retentionMs: number): InvocationRecord => {
  const response = responseOf(result);
  return {
    requestId: result.requestId,
    functionName: result.functionName,
    version: result.version === null ? null : `v${result.version}`,
    invocationType: result.invocationType,
    status: statusOf(result),
    outcome: result.outcome,
    fault: result.fault,
    statusCode: response.statusCode,
    body: response.body,
    error: result.error === undefined ? null : { type: result.error.type, message: result.error.message },
    executionTime: Math.round(result.executionTimeMs),
    billedDuration: billedDuration(result.executionTimeMs),
    memoryUsed: result.memoryUsedMb,
    wasColdStart: result.coldStart,
    coldStartDuration: result.coldStartMs === null ? null : Math.round(result.coldStartMs * 100) / 100,
    attempts: result.attempts,
    runnerId: result.runnerId,
    logStreamName: logStreamName(result),
    enqueuedAt: result.enqueuedAt,
    startedAt: result.startedAt,
    completedAt: result.completedAt,
    expiresAt: new Date(Date.parse(result.completedAt) + retentionMs).toISOString(),
  };
};

interface Bucket {
  functionName: string;
  version: number;
  minute: number;
  invocations: number;
  errors: number;
  coldStarts: number;
  throttles: number;
  durationSum: number;
  memorySum: number;
  memoryMax: number;
  sketch: DDSketch;
}

/** Buckets and totals are kept per recording node, so nodes never overwrite each other's counts. */
const bucketId = (functionName: string, version: number, minute: number, nodeId: string) =>
  `${functionName}:${version}:${minute}@${nodeId}`;

/** The later of two ISO-8601 timestamps (they order as text). */
const laterOf = (a: string, b: string): string => {
  if (a > b) return a;
  return b;
};

const encodeSketch = (sketch: DDSketch): string => Buffer.from(sketch.toProto()).toString('base64');
const decodeSketch = (text: string): DDSketch => DDSketch.fromProto(Buffer.from(text, 'base64'));

export interface RecorderOptions {
  readonly readStore: ReadStore;
  /** The node recording: part of bucket and total ids. */
  readonly nodeId: string;
  readonly retentionMs: number;
}

/**
 * Turns results into invocation records, logs, per-minute metric buckets (counts and a DDSketch of
 * durations per function version) and running totals. Results may arrive twice (at-least-once): one
 * already recorded as final is skipped. Buckets are gathered in memory and written by `flush`.
 */
export const createInvocationRecorder = (options: RecorderOptions) => {
  const { readStore } = options;
  const pending = new Map<string, Bucket>();
  const totals = new Map<string, { invocations: number; lastInvokedAt: string }>();

  const addToTotals = (id: string, at: string) => {
    const entry = totals.get(id) ?? { invocations: 0, lastInvokedAt: at };
    entry.invocations += 1;
    if (at > entry.lastInvokedAt) entry.lastInvokedAt = at;
    totals.set(id, entry);
  };

  const count = (result: InvocationResult) => {
    if (result.version === null) return;
    const minute = Math.floor(Date.parse(result.completedAt) / MINUTE_MS) * MINUTE_MS;
    const id = bucketId(result.functionName, result.version, minute, options.nodeId);
    let bucket = pending.get(id);
    if (bucket === undefined) {
      bucket = {
        functionName: result.functionName,
        version: result.version,
        minute,
        invocations: 0,
        errors: 0,
        coldStarts: 0,
        throttles: 0,
        durationSum: 0,
        memorySum: 0,
        memoryMax: 0,
        sketch: new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY }),
      };
      pending.set(id, bucket);
    }
    if (result.outcome === 'throttled') {
      bucket.throttles += 1;
      return;
    }
    bucket.invocations += 1;
    if (result.outcome !== 'success') bucket.errors += 1;
    if (result.coldStart) bucket.coldStarts += 1;
    bucket.durationSum += result.executionTimeMs;
    bucket.memorySum += result.memoryUsedMb;
    bucket.memoryMax = Math.max(bucket.memoryMax, result.memoryUsedMb);
    bucket.sketch.accept(Math.max(result.executionTimeMs, 0.001));
    addToTotals(result.functionName, result.completedAt);
    addToTotals(`${result.functionName}:${result.version}`, result.completedAt);
  };

  /** Results waiting for the next write, in arrival order. */
  const queue: { result: InvocationResult; resolve: () => void; reject: (error: unknown) => void }[] = [];
  let writing = false;
  let scheduled = false;

  const schedule = () => {
    if (writing || scheduled || queue.length === 0) return;
    scheduled = true;
    // After the current I/O callbacks, so results delivered together are written together.
    setImmediate(() => {
      scheduled = false;
      void writeQueued();
    });
  };

  /** One batch at a time: each sees what the one before stored, so a duplicate is caught either way. */
  const writeQueued = async () => {
    writing = true;
    const batch = queue.splice(0, MAX_BATCH);
    try {
      // What is known of each request so far: stored, or recorded earlier in this batch.
      const known = new Map<string, { final: boolean; attempts: number } | null>();
      const writes: DocumentWrite[] = [];
      const recorded: InvocationResult[] = [];
      for (const { result } of batch) {
        const { requestId } = result;
        let before = known.get(requestId);
        if (before === undefined) {
          const existing = await readStore.get(INVOCATION_COLLECTIONS.records, requestId);
          before =
            existing === null ? null : { final: existing.completedAt !== null, attempts: existing.attempts as number };
        }
        if (before?.final && before.attempts >= result.attempts) {
          known.set(requestId, before);
          continue;
        }
        const record = recordOf(result, options.retentionMs);
        // Logs are read as empty when there is no document. One is written when there is something to say, or
        // to replace what an earlier attempt (or the Queued record's request) may have left.
        if (result.logs.length > 0 || result.logsTruncated || before !== null) {
          writes.push({
            collection: INVOCATION_COLLECTIONS.logs,
            id: requestId,
            document: {
              requestId,
              functionName: result.functionName,
              version: record.version,
              logs: result.logs,
              truncated: result.logsTruncated,
              expiresAt: record.expiresAt,
            },
          });
        }
        writes.push({
          collection: INVOCATION_COLLECTIONS.records,
          id: requestId,
          document: record as unknown as Document,
        });
        known.set(requestId, { final: true, attempts: result.attempts });
        recorded.push(result);
      }
      if (readStore.putMany !== undefined) await readStore.putMany(writes);
      else for (const { collection, id, document } of writes) await readStore.put(collection, id, document);
      // Counted only once stored: a failed write is delivered again and must not count twice.
      for (const result of recorded) count(result);
      for (const { resolve } of batch) resolve();
    } catch (error) {
      for (const { reject } of batch) reject(error);
    } finally {
      writing = false;
      schedule();
    }
  };

  return {
    /** Records a request accepted for later (async): visible as Queued until its result arrives. */
    async queued(request: { requestId: string; functionName: string; version: number; enqueuedAt: string }) {
      const existing = await readStore.get(INVOCATION_COLLECTIONS.records, request.requestId);
      if (existing !== null) return;
      const record: InvocationRecord = {
        requestId: request.requestId,
        functionName: request.functionName,
        version: `v${request.version}`,
        invocationType: 'Event',
        status: 'Queued',
        outcome: null,
        fault: null,
        statusCode: null,
        body: null,
        error: null,
        executionTime: null,
        billedDuration: null,
        memoryUsed: null,
        wasColdStart: null,
        coldStartDuration: null,
        attempts: 0,
        runnerId: null,
        logStreamName: null,
        enqueuedAt: request.enqueuedAt,
        startedAt: null,
        completedAt: null,
        expiresAt: new Date(Date.parse(request.enqueuedAt) + options.retentionMs).toISOString(),
      };
      await readStore.put(INVOCATION_COLLECTIONS.records, request.requestId, record as unknown as Document);
    },

    /** Removes a Queued record whose request never made it onto the bus. */
    async forget(requestId: string) {
      const existing = await readStore.get(INVOCATION_COLLECTIONS.records, requestId);
      if (existing?.status === 'Queued') await readStore.delete(INVOCATION_COLLECTIONS.records, requestId);
    },

    /**
     * Records a result; resolves once its record and logs are stored. Results that arrive together (a
     * consumer handling many at once) are stored together, in arrival order, with one write.
     */
    record(result: InvocationResult): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        queue.push({ result, resolve, reject });
        schedule();
      });
    },

    /** Merges the gathered buckets and totals into the store. */
    async flush(): Promise<void> {
      const buckets = [...pending.values()];
      pending.clear();
      for (const bucket of buckets) {
        const id = bucketId(bucket.functionName, bucket.version, bucket.minute, options.nodeId);
        const stored = await readStore.get(INVOCATION_COLLECTIONS.buckets, id);
        if (stored !== null) {
          bucket.sketch.merge(decodeSketch(stored.sketch as string));
          bucket.invocations += stored.invocations as number;
          bucket.errors += stored.errors as number;
          bucket.coldStarts += stored.coldStarts as number;
          bucket.throttles += stored.throttles as number;
          bucket.durationSum += stored.durationSum as number;
          bucket.memorySum += stored.memorySum as number;
          bucket.memoryMax = Math.max(bucket.memoryMax, stored.memoryMax as number);
        }
        await readStore.put(INVOCATION_COLLECTIONS.buckets, id, {
          id,
          functionName: bucket.functionName,
          version: bucket.version,
          minute: bucket.minute,
          invocations: bucket.invocations,
          errors: bucket.errors,
          coldStarts: bucket.coldStarts,
          throttles: bucket.throttles,
          durationSum: bucket.durationSum,
          memorySum: bucket.memorySum,
          memoryMax: bucket.memoryMax,
          sketch: encodeSketch(bucket.sketch),
        });
      }
      const entries = [...totals.entries()];
      totals.clear();
      for (const [key, entry] of entries) {
        const id = `${key}@${options.nodeId}`;
        const stored = await readStore.get(INVOCATION_COLLECTIONS.totals, id);
        const storedLast = (stored?.lastInvokedAt as string | undefined) ?? '';
        await readStore.put(INVOCATION_COLLECTIONS.totals, id, {
          key,
          invocations: ((stored?.invocations as number | undefined) ?? 0) + entry.invocations,
          lastInvokedAt: laterOf(storedLast, entry.lastInvokedAt),
        });
      }
    },

    /** Deletes records, logs and buckets past their retention. */
    async sweep(now: Date): Promise<void> {
      const cutoff = now.toISOString();
      for (const collection of [INVOCATION_COLLECTIONS.records, INVOCATION_COLLECTIONS.logs]) {
        for (;;) {
          const { items } = await readStore.find(collection, { sortBy: 'expiresAt', limit: 500 });
          const expired = items.filter((item) => (item.expiresAt as string) < cutoff);
          for (const item of expired) await readStore.delete(collection, item.requestId as string);
          if (expired.length < 500) break;
        }
      }
      const oldestMinute = now.getTime() - options.retentionMs;
      for (;;) {
        const { items } = await readStore.find(INVOCATION_COLLECTIONS.buckets, { sortBy: 'minute', limit: 500 });
        const expired = items.filter((item) => (item.minute as number) < oldestMinute);
        for (const item of expired) await readStore.delete(INVOCATION_COLLECTIONS.buckets, item.id as string);
        if (expired.length < 500) break;
      }
    },
  };
};

export type InvocationRecorder = ReturnType<typeof createInvocationRecorder>;

export interface FunctionMetrics {
  readonly invocations: number;
  readonly errors: number;
  /** Percentage of invocations that failed (0.22 means 0.22%). */
  readonly errorRate: number;
  readonly coldStarts: number;
  readonly avgDuration: number;
  readonly p50Duration: number;
  readonly p95Duration: number;
  readonly p99Duration: number;
  readonly avgMemoryUsed: number;
  readonly maxMemoryUsed: number;
  readonly throttles: number;
}

const round = (value: number, digits = 2) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Metrics of a function (or one version) over the last `windowMs`, merged from per-minute buckets:
 * the cost grows with the window, not with the number of invocations.
 */
export const queryMetrics = async (
  readStore: ReadStore,
  functionName: string,
  windowMs: number,
  now: Date,
  version?: number,
): Promise<FunctionMetrics> => {
  const from = Math.floor((now.getTime() - windowMs) / MINUTE_MS) * MINUTE_MS;
  const sketch = new DDSketch({ relativeAccuracy: RELATIVE_ACCURACY });
  let invocations = 0;
  let errors = 0;
  let coldStarts = 0;
  let throttles = 0;
  let durationSum = 0;
  let memorySum = 0;
  let memoryMax = 0;
  const PAGE = 500;
  for (let offset = 0; ; offset += PAGE) {
    const { items } = await readStore.find(INVOCATION_COLLECTIONS.buckets, {
      where: { functionName },
      sortBy: 'minute',
      descending: true,
      limit: PAGE,
      offset,
    });
    const inWindow = items.filter((item) => (item.minute as number) >= from);
    for (const item of inWindow) {
      if (version !== undefined && item.version !== version) continue;
      invocations += item.invocations as number;
      errors += item.errors as number;
      coldStarts += item.coldStarts as number;
      throttles += item.throttles as number;
      durationSum += item.durationSum as number;
      memorySum += item.memorySum as number;
      memoryMax = Math.max(memoryMax, item.memoryMax as number);
      if ((item.invocations as number) > 0) sketch.merge(decodeSketch(item.sketch as string));
    }
    if (inWindow.length < PAGE) break;
  }
  const quantile = (q: number) => (invocations === 0 ? 0 : round(sketch.getValueAtQuantile(q)));
  return {
    invocations,
    errors,
    errorRate: invocations === 0 ? 0 : round((errors / invocations) * 100),
    coldStarts,
    avgDuration: invocations === 0 ? 0 : round(durationSum / invocations),
    p50Duration: quantile(0.5),
    p95Duration: quantile(0.95),
    p99Duration: quantile(0.99),
    avgMemoryUsed: invocations === 0 ? 0 : Math.round(memorySum / invocations),
    maxMemoryUsed: memoryMax,
    throttles,
  };
};

/** Invocations so far of a function (`name`) or a version (`name:version`), over every recording node. */
export const invocationTotals = async (readStore: ReadStore, key: string) => {
  const { items } = await readStore.find(INVOCATION_COLLECTIONS.totals, { where: { key }, limit: 1000 });
  let totalInvocations = 0;
  let lastInvokedAt: string | null = null;
  for (const item of items) {
    totalInvocations += item.invocations as number;
    const last = item.lastInvokedAt as string;
    if (lastInvokedAt === null || last > lastInvokedAt) lastInvokedAt = last;
  }
  return { totalInvocations, lastInvokedAt };
};
