import type { Consumer as KafkaConsumer, EachBatchPayload, Kafka, KafkaMessage, RetryOptions } from 'kafkajs';
import type { Consumer, DeliveredMessage } from '../../../domain/ports.ts';
import { stickyAssigner, type Ownership } from './assigner.ts';
import { BusError, type KafkaBusLogger, toBusError } from './errors.ts';
import {
  countDelivery,
  encodeProgress,
  isHandled,
  markAbsent,
  markHandled,
  type PartitionProgress,
  restoreProgress,
} from './progress.ts';
import type { TopicAdmin } from './topics.ts';

export interface ConsumerSettings {
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  /** How long a fetch waits on the broker for messages (a message that arrives ends the wait at once). */
  readonly maxWaitTimeMs: number;
  readonly maxBytesPerPartition: number;
  /** How long closing waits for running handlers before leaving their messages to the group. */
  readonly closeTimeoutMs: number;
  /** How long `consume` waits to join its group and read where the group stands. */
  readonly startTimeoutMs: number;
  /** Delay before a message whose handler failed is delivered again: initialMs × 2^(attempt−1), at most maxMs. */
  readonly redeliveryInitialMs: number;
  readonly redeliveryMaxMs: number;
  /** Fetched messages a partition may hold that no handler took yet, before its fetching pauses. */
  readonly maxQueuedPerPartition: number;
  /** Messages a partition may take beyond its committed offset (which a slow message holds back) before it pauses. */
  readonly maxUncommittedPerPartition: number;
  /**
   * Least time between two commits of a consumer. Progress is committed when a message is delivered (for
   * its attempt count) and when it is handled; a crash loses at most this much of it (those messages
   * run again). Closing commits at once, and so does a rebalance, as far as it can: kafkajs rejoins the
   * group straight after telling of it.
   */
  readonly commitIntervalMs: number;
}

export interface ConsumerContext {
  readonly kafka: Kafka;
  readonly admin: TopicAdmin;
  readonly retry: RetryOptions | undefined;
  readonly brokers: string;
  readonly logger: KafkaBusLogger;
  readonly settings: ConsumerSettings;
}

export interface ConsumerSpec {
  /** The topic's name on the cluster. */
  readonly topic: string;
  /** The topic's name as the bus's callers know it. */
  readonly deliveredAs: string;
  readonly group: string;
  readonly concurrency: number;
  readonly from: 'earliest' | 'latest';
}

interface Entry {
  readonly message: KafkaMessage;
  readonly offset: number;
  readonly readyAt: number;
}

interface Running {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

interface Partition {
  readonly partition: number;
  /** False once the group gave the partition to someone else: whatever finishes later is not ours to count. */
  owned: boolean;
  /** Set once the group's progress was read and kafkajs was sent to the offset after it. */
  loaded: boolean;
  readonly ready: Promise<void>;
  progress: PartitionProgress;
  /** The next offset to take from a fetch. */
  next: number;
  readonly queue: Entry[];
  /** Failed messages waiting for their backoff, by offset. */
  readonly retries: Entry[];
  readonly running: Map<number, Running>;
  /** Fetching paused until the handlers catch up. */
  paused: boolean;
  /** Progress not committed yet. */
  dirty: boolean;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const text = (value: Buffer | string | null | undefined): string =>
  value === null || value === undefined ? '' : typeof value === 'string' ? value : value.toString('utf8');

const headersOf = (message: KafkaMessage): Record<string, string> => {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (value === undefined) continue;
    // A header repeated under one name: the last one counts, as in an HTTP header map.
    headers[name] = text(Array.isArray(value) ? value[value.length - 1] : value);
  }
  return headers;
};

const isoTime = (timestamp: string): string => {
  const ms = Number(timestamp);
  return new Date(Number.isFinite(ms) && ms >= 0 ? ms : Date.now()).toISOString();
};

/**
 * One `consume` call: a kafkajs consumer in the group, with handlers run by this module rather than by
 * kafkajs. kafkajs's eachMessage runs one message per partition at a time, and its fetch loop waits for
 * every batch of a fetch to be handled, so one slow invocation would hold back every partition on its
 * broker. Instead eachBatch only queues the batch and returns; up to `concurrency` handlers run at once,
 * taken round-robin over the partitions (so several run per partition, and no partition starves another),
 * and each partition commits its lowest unhandled offset, with what is handled above it in the commit's
 * metadata (see progress.ts). A partition whose handlers fall behind pauses its fetching.
 */
export const startConsumer = async (
  context: ConsumerContext,
  spec: ConsumerSpec,
  handler: (message: DeliveredMessage) => Promise<void>,
): Promise<Consumer> => {
  const { kafka, admin, logger, settings, brokers } = context;
  const { topic, deliveredAs, group, concurrency, from } = spec;
  const partitions = new Map<number, Partition>();
  let order: Partition[] = [];
  let cursor = 0;
  /** Every running handler, of partitions held or given up. */
  const running = new Set<Running>();
  let memberId: string | undefined;
  let joined = false;
  let alive = true;
  let closing = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryAt = Number.POSITIVE_INFINITY;
  let committing: Promise<void> | undefined;
  let commitQueued = false;
  let commitTimer: NodeJS.Timeout | undefined;
  let lastCommitAt = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let restarts = 0;

  const owned = (): Ownership => ({
    [topic]: [...partitions.values()].filter((state) => state.owned).map((state) => state.partition),
  });

  const consumer: KafkaConsumer = kafka.consumer({
    groupId: group,
    partitionAssigners: [stickyAssigner({ owned, partitionsOf: (topics) => admin.partitionsOf(topics) })],
    sessionTimeout: settings.sessionTimeoutMs,
    rebalanceTimeout: settings.rebalanceTimeoutMs,
    heartbeatInterval: settings.heartbeatIntervalMs,
    maxWaitTimeInMs: settings.maxWaitTimeMs,
    minBytes: 1,
    maxBytesPerPartition: settings.maxBytesPerPartition,
    allowAutoTopicCreation: false,
    // kafkajs restarts a failed consumer only when it deems the failure retriable; a missing group
    // coordinator, common while a broker restarts, is not. This module restarts it in every case (see CRASH).
    retry: { ...context.retry, restartOnFailure: async () => false },
  });

  const partitionRef = (partition: number) => [{ topic, partitions: [partition] }];

  /** pause, resume and seek throw while kafkajs restarts a failed consumer; the restart starts afresh anyway. */
  const steer = (what: string, action: () => void) => {
    try {
      action();
    } catch (error) {
      logger.debug?.({ err: error, topic, group }, `could not ${what}`);
    }
  };

  // --- bookkeeping ---

  const updatePause = (state: Partition) => {
    if (!state.owned || closing) return;
    const uncommitted = state.next - state.progress.committed;
    const full =
      state.queue.length >= settings.maxQueuedPerPartition || uncommitted >= settings.maxUncommittedPerPartition;
    if (full && !state.paused) {
      state.paused = true;
      steer('pause a partition', () => consumer.pause(partitionRef(state.partition)));
    } else if (
      !full &&
      state.paused &&
      state.queue.length <= settings.maxQueuedPerPartition / 2 &&
      uncommitted < settings.maxUncommittedPerPartition
    ) {
      state.paused = false;
      steer('resume a partition', () => consumer.resume(partitionRef(state.partition)));
    }
  };

  /** The partition went to another member (or this one left the group): stop its work and forget it. */
  const revoke = (state: Partition, reason: string) => {
    state.owned = false;
    state.queue.length = 0;
    state.retries.length = 0;
    const error = new Error(reason);
    for (const { controller } of state.running.values()) controller.abort(error);
    if (partitions.get(state.partition) === state) partitions.delete(state.partition);
    order = [...partitions.values()];
  };

  const load = async (state: Partition) => {
    for (let attempt = 1; state.owned && !closing; attempt += 1) {
      try {
        const [committed, offsets] = await Promise.all([admin.committedOffsets(group, topic), admin.offsetsOf(topic)]);
        if (!state.owned || closing) return;
        const mine = committed.find((entry) => entry.partition === state.partition);
        const range = offsets.find((entry) => entry.partition === state.partition);
        const hasCommit = mine !== undefined && mine.offset >= 0;
        let start = hasCommit ? mine.offset : from === 'latest' ? (range?.high ?? 0) : (range?.low ?? 0);
        // Retention deleted what the group had not read yet, or the topic was created again.
        if (range !== undefined) start = Math.min(Math.max(start, range.low), range.high);
        state.progress = restoreProgress(start, hasCommit && mine.offset === start ? mine.metadata : null);
        state.next = state.progress.committed;
        state.dirty = !hasCommit || state.progress.committed !== mine.offset;
        // kafkajs resolves its own start, which for `latest` may come after messages published meanwhile:
        // this offset wins. Batches it fetched before count as stale and are dropped.
        consumer.seek({ topic, partition: state.partition, offset: String(state.next) });
        state.loaded = true;
        if (state.dirty) scheduleCommit();
        return;
      } catch (error) {
        if (attempt === 3) {
          logger.warn({ err: error, topic, group, partition: state.partition }, 'cannot read where the group stands');
        }
        await sleep(Math.min(2_000, 50 * 2 ** attempt));
      }
    }
  };

  const newPartition = (partition: number): Partition => {
    let resolveReady = () => {};
    const state: Partition = {
      partition,
      owned: true,
      loaded: false,
      ready: new Promise<void>((resolve) => (resolveReady = resolve)),
      progress: restoreProgress(0, null),
      next: 0,
      queue: [],
      retries: [],
      running: new Map(),
      paused: false,
      dirty: false,
    };
    void load(state).finally(() => {
      resolveReady();
      pump();
    });
    return state;
  };

  // --- commits ---

  const scheduleCommit = () => {
    if (commitQueued || !alive) return;
    commitQueued = true;
    const fire = () => {
      commitQueued = false;
      committing ??= commit().finally(() => {
        committing = undefined;
        if (order.some((state) => state.owned && state.loaded && state.dirty)) scheduleCommit();
      });
    };
    const wait = lastCommitAt + settings.commitIntervalMs - Date.now();
    if (wait > 0) commitTimer = setTimeout(fire, wait);
    else setImmediate(fire);
  };

  /** Commits the dirty partitions in one request; what changes meanwhile goes in the next. */
  const commit = async () => {
    const dirty = order.filter((state) => state.owned && state.loaded && state.dirty);
    if (dirty.length === 0 || !alive) return;
    const entries = dirty.map((state) => {
      state.dirty = false;
      return {
        topic,
        partition: state.partition,
        offset: String(state.progress.committed),
        metadata: encodeProgress(state.progress),
      };
    });
    lastCommitAt = Date.now();
    try {
      await consumer.commitOffsets(entries);
    } catch (error) {
      for (const state of dirty) if (state.owned) state.dirty = true;
      logger.debug?.({ err: error, topic, group }, 'a commit failed; it is sent again');
      // Mostly a rebalance in progress, which kafkajs has retried already: give the group time to settle.
      lastCommitAt = Date.now() + settings.heartbeatIntervalMs;
    }
  };

  const markDirty = (state: Partition) => {
    state.dirty = true;
    scheduleCommit();
  };

  // --- delivery ---

  const backoff = (attempt: number) =>
    Math.min(settings.redeliveryMaxMs, settings.redeliveryInitialMs * 2 ** (attempt - 1));

  const armRetryTimer = () => {
    let earliest = Number.POSITIVE_INFINITY;
    for (const state of order) for (const entry of state.retries) earliest = Math.min(earliest, entry.readyAt);
    if (!Number.isFinite(earliest) || closing) return;
    if (retryTimer !== undefined && retryAt <= earliest) return;
    clearTimeout(retryTimer);
    retryAt = earliest;
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined;
        retryAt = Number.POSITIVE_INFINITY;
        pump();
      },
      Math.max(0, earliest - Date.now()),
    );
  };

  const takeNext = (now: number): { state: Partition; entry: Entry } | undefined => {
    const count = order.length;
    for (let step = 0; step < count; step += 1) {
      const index = (cursor + step) % count;
      const state = order[index];
      if (state === undefined || !state.owned || !state.loaded) continue;
      const ready = state.retries.findIndex((entry) => entry.readyAt <= now);
      const entry = ready >= 0 ? state.retries.splice(ready, 1)[0] : state.queue.shift();
      if (entry === undefined) continue;
      cursor = (index + 1) % count;
      return { state, entry };
    }
    return undefined;
  };

  const pump = () => {
    if (closing || !alive) return;
    const now = Date.now();
    while (running.size < concurrency) {
      const next = takeNext(now);
      if (next === undefined) break;
      run(next.state, next.entry);
      updatePause(next.state);
    }
    armRetryTimer();
  };

  const run = (state: Partition, entry: Entry) => {
    const { message, offset } = entry;
    const attempt = countDelivery(state.progress, offset);
    markDirty(state);
    const controller = new AbortController();
    const delivered: DeliveredMessage = {
      topic: deliveredAs,
      partition: state.partition,
      offset: message.offset,
      key: text(message.key),
      value: text(message.value),
      headers: headersOf(message),
      timestamp: isoTime(message.timestamp),
      deliveryAttempt: attempt,
      signal: controller.signal,
    };
    const settle = (handled: boolean, error?: unknown) => {
      running.delete(job);
      state.running.delete(offset);
      if (state.owned && alive) {
        if (handled) {
          markHandled(state.progress, offset);
          markDirty(state);
        } else if (!closing) {
          logger.warn(
            { err: error, topic, group, partition: state.partition, offset: message.offset, attempt },
            'a bus handler failed; the message will be redelivered',
          );
          const readyAt = Date.now() + backoff(attempt);
          let index = state.retries.length;
          while (index > 0 && (state.retries[index - 1]?.offset ?? 0) > offset) index -= 1;
          state.retries.splice(index, 0, { message, offset, readyAt });
        }
        updatePause(state);
      }
      pump();
    };
    const job: Running = {
      controller,
      done: Promise.resolve()
        .then(() => handler(delivered))
        .then(
          () => settle(true),
          (error: unknown) => settle(false, error),
        ),
    };
    running.add(job);
    state.running.set(offset, job);
  };

  const eachBatch = async ({ batch, isStale }: EachBatchPayload) => {
    const state = partitions.get(batch.partition);
    if (state === undefined || closing) return;
    // A batch for a partition still being loaded is dropped: loading ends with a seek that fetches it again.
    if (!state.loaded) await Promise.race([state.ready, sleep(settings.maxWaitTimeMs)]);
    if (!state.owned || !state.loaded || closing || isStale()) return;
    for (const message of batch.messages) {
      const offset = Number(message.offset);
      if (offset < state.next) continue;
      if (offset > state.next) markAbsent(state.progress, state.next, offset);
      state.next = offset + 1;
      if (!isHandled(state.progress, offset)) state.queue.push({ message, offset, readyAt: 0 });
    }
    updatePause(state);
    pump();
  };

  // --- the group ---

  // Commits are this module's; kafkajs moves its fetch position past each batch eachBatch returns from.
  const runOptions = { autoCommit: false, eachBatchAutoResolve: true, partitionsConsumedConcurrently: 4, eachBatch };

  let settleStart: { resolve: () => void; reject: (error: BusError) => void } | undefined;
  const started = new Promise<void>((resolve, reject) => {
    settleStart = { resolve, reject };
  });
  // A crash after `consume` already gave up on the start rejects it again, with nobody listening.
  started.catch(() => undefined);

  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    if (memberId !== undefined && payload.memberId !== memberId) {
      // Rejoined as a new member: others may have had these partitions meanwhile.
      for (const state of [...partitions.values()]) revoke(state, 'the consumer rejoined its group');
    }
    memberId = payload.memberId;
    restarts = 0;
    const assigned = new Set(payload.memberAssignment[topic] ?? []);
    for (const state of [...partitions.values()]) {
      if (!assigned.has(state.partition)) revoke(state, 'the partition went to another consumer of the group');
    }
    const loads: Promise<void>[] = [];
    for (const partition of assigned) {
      let state = partitions.get(partition);
      if (state === undefined) {
        state = newPartition(partition);
        partitions.set(partition, state);
      } else if (state.loaded) {
        // kafkajs starts a kept partition at its committed offset again; carry on after what is queued.
        const at = String(state.next);
        steer('seek', () => consumer.seek({ topic, partition, offset: at }));
      }
      const ref = partitionRef(partition);
      if (state.paused) steer('pause a partition', () => consumer.pause(ref));
      else steer('resume a partition', () => consumer.resume(ref));
      loads.push(state.ready);
    }
    order = [...partitions.values()];
    void Promise.all(loads).then(() => {
      joined = true;
      settleStart?.resolve();
    });
    pump();
  });

  consumer.on(consumer.events.REBALANCING, () => {
    lastCommitAt = 0;
    if (commitQueued) {
      clearTimeout(commitTimer);
      commitQueued = false;
    }
    scheduleCommit();
  });

  consumer.on(consumer.events.CRASH, ({ payload }) => {
    for (const state of [...partitions.values()]) revoke(state, 'the consumer lost its place in the group');
    memberId = undefined;
    if (!joined) {
      settleStart?.reject(toBusError(payload.error, `consuming ${topic} as ${group}`, brokers));
      return;
    }
    if (closing) return;
    const delay = Math.min(5_000, 250 * 2 ** restarts);
    restarts += 1;
    logger.warn({ err: payload.error, topic, group, delay }, 'the Kafka consumer failed; it starts again');
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      // kafkajs disconnected the consumer; running it again joins the group afresh.
      if (!closing)
        void consumer
          .run(runOptions)
          .catch((error: unknown) =>
            logger.warn({ err: error, topic, group }, 'the Kafka consumer did not start again'),
          );
    }, delay);
  });

  const fail = async (error: unknown): Promise<never> => {
    closing = true;
    alive = false;
    await consumer.disconnect().catch(() => undefined);
    throw toBusError(error, `consuming ${topic} as ${group}`, brokers);
  };

  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run(runOptions);
  } catch (error) {
    return fail(error);
  }
  let startTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      started,
      new Promise<never>((_, reject) => {
        startTimer = setTimeout(
          () => reject(new BusError('UNAVAILABLE', `joining the consumer group ${group} of ${topic} timed out`)),
          settings.startTimeoutMs,
        );
      }),
    ]);
  } catch (error) {
    return fail(error);
  } finally {
    clearTimeout(startTimer);
  }

  const close = async () => {
    closing = true;
    clearTimeout(retryTimer);
    clearTimeout(commitTimer);
    clearTimeout(restartTimer);
    if (alive) steer('pause the topic', () => consumer.pause([{ topic }]));
    const stopping = new Error('the consumer is closing');
    for (const state of order) {
      state.queue.length = 0;
      state.retries.length = 0;
    }
    for (const { controller } of running) controller.abort(stopping);
    if (running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...running].map(({ done }) => done)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, settings.closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    // What finished is committed before the partitions go to the rest of the group.
    for (let round = 0; round < 3 && alive; round += 1) {
      await committing;
      if (!order.some((state) => state.owned && state.loaded && state.dirty)) break;
      committing = commit();
      await committing;
      committing = undefined;
    }
    alive = false;
    for (const state of [...partitions.values()]) revoke(state, 'the consumer closed');
    await consumer
      .disconnect()
      .catch((error: unknown) => logger.warn({ err: error, topic, group }, 'leaving the group failed'));
  };

  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= close();
      return closed;
    },
  };
};
