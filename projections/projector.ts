import {
  type EventStore,
  isStoreError,
  type ReadStore,
  type RecordedEvent,
  type Subscription,
} from '../domain/ports.ts';
import type { Projection } from './readModels.ts';

export interface ProjectorOptions {
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly projections: readonly Projection[];
  /** The projection stopped for good (a handler failed for another reason than an unavailable store). */
  readonly onError?: (error: Error) => void;
  /** A store was unavailable; the projection starts again from where it was after `retryInMs`. */
  readonly onOutage?: (error: Error, retryInMs: number) => void;
}

const RETRY_INITIAL_MS = 250;
const RETRY_MAX_MS = 5_000;

export interface Projector {
  /** Rebuilds when projection versions changed, then catches up and follows the log. */
  start(): Promise<void>;
  /** Resolves once every event up to `position` is reflected in the read models (null: no time limit). */
  waitFor(position: bigint, timeoutMs?: number | null): Promise<void>;
  /** Drops every read model and replays the whole log; resolves when caught up. */
  rebuild(): Promise<void>;
  /** Position of the last event applied, -1n before any. */
  position(): bigint;
  stop(): Promise<void>;
}

/** The checkpoint's name carries the projection versions, so a changed projection starts from scratch. */
export const checkpointNameOf = (projections: readonly Projection[]): string =>
  `read-models@${projections.map((projection) => `${projection.name}.${projection.version}`).join(',')}`;

export interface CheckpointWatcherOptions {
  readonly readStore: ReadStore;
  readonly projections: readonly Projection[];
  /** How often the stored checkpoint is read while someone waits. Default 10. */
  readonly intervalMs?: number;
}

/**
 * Read-your-writes for a node that does not project itself (an API node beside a projector node): waits
 * until the projector's stored checkpoint reaches a position. The store is read only while someone waits.
 */
export const createCheckpointWatcher = (options: CheckpointWatcherOptions) => {
  const { readStore, intervalMs = 10 } = options;
  const checkpointName = checkpointNameOf(options.projections);
  let seen = -1n;
  let timer: NodeJS.Timeout | undefined;
  let lastError: unknown;
  const waiters = new Set<{ position: bigint; settle: (error?: Error) => void }>();

  const poll = async () => {
    timer = undefined;
    try {
      const checkpoint = await readStore.getCheckpoint(checkpointName);
      if (checkpoint !== null && checkpoint > seen) seen = checkpoint;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    for (const waiter of waiters) if (seen >= waiter.position) waiter.settle();
    if (waiters.size > 0) timer = setTimeout(poll, intervalMs);
  };

  return {
    waitFor(position: bigint, timeoutMs: number | null = 30_000): Promise<void> {
      if (seen >= position) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const deadline =
          timeoutMs === null
            ? undefined
            : setTimeout(
                () =>
                  waiter.settle(
                    lastError instanceof Error
                      ? lastError
                      : new Error(`Read models did not reach position ${position} within ${timeoutMs} ms`),
                  ),
                timeoutMs,
              );
        const waiter = {
          position,
          settle: (error?: Error) => {
            clearTimeout(deadline);
            waiters.delete(waiter);
            if (error === undefined) resolve();
            else reject(error);
          },
        };
        waiters.add(waiter);
        timer ??= setTimeout(poll, 0);
      });
    },
    stop() {
      clearTimeout(timer);
      timer = undefined;
      for (const waiter of waiters) waiter.settle(new Error('the checkpoint watcher stopped'));
    },
  };
};

export type CheckpointWatcher = ReturnType<typeof createCheckpointWatcher>;

/**
 * Feeds every event of the log, in order, to every projection interested in its stream, and stores a
 * checkpoint after each one. The checkpoint name carries the projection versions, so a changed
 * projection finds no checkpoint and the read models are rebuilt from the log.
 */
export const createProjector = (options: ProjectorOptions): Projector => {
  const { eventStore, readStore, projections } = options;
  const checkpointName = checkpointNameOf(projections);
  let applied = -1n;
  let subscription: Subscription | undefined;
  let failure: Error | undefined;
  /** A store was unavailable: the subscription starts again after `retryDelayMs`, from the last event applied. */
  let outage: Error | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let retryDelayMs = RETRY_INITIAL_MS;
  let stopped = false;
  const waiters = new Set<{ position: bigint; resolve: () => void; reject: (error: Error) => void }>();

  const settleWaiters = () => {
    for (const waiter of waiters) {
      const error = failure ?? outage;
      if (error !== undefined) waiter.reject(error);
      else if (applied >= waiter.position) waiter.resolve();
      else continue;
      waiters.delete(waiter);
    }
  };

  const handle = async (event: RecordedEvent) => {
    for (const projection of projections) {
      if (projection.streamPrefixes.some((prefix) => event.streamId.startsWith(prefix))) {
        await projection.apply(event, readStore);
      }
    }
    await readStore.setCheckpoint(checkpointName, event.position);
    applied = event.position;
    outage = undefined;
    retryDelayMs = RETRY_INITIAL_MS;
    settleWaiters();
  };

  const subscribe = (after: bigint | null) => {
    subscription = eventStore.subscribeToAll(handle, {
      ...(after === null ? {} : { after }),
      onError: (error) => {
        subscription = undefined;
        if (!isStoreError(error, 'UNAVAILABLE')) {
          failure = error;
          settleWaiters();
          options.onError?.(error);
          return;
        }
        // An outage of the read store (or the log): whoever waits is told now (503), and the projection
        // goes on from the last event it applied once the store answers again.
        outage = error;
        settleWaiters();
        if (stopped) return;
        options.onOutage?.(error, retryDelayMs);
        retryTimer = setTimeout(() => {
          retryTimer = undefined;
          subscribe(applied < 0n ? null : applied);
        }, retryDelayMs);
        retryDelayMs = Math.min(RETRY_MAX_MS, retryDelayMs * 2);
      },
    });
  };

  const follow = async (after: bigint | null) => {
    for (const projection of projections) {
      for (const [collection, indexes] of Object.entries(projection.indexes)) {
        for (const fields of indexes) await readStore.ensureIndex(collection, fields);
      }
    }
    applied = after ?? -1n;
    failure = undefined;
    outage = undefined;
    stopped = false;
    const head = await eventStore.headPosition();
    // Catching up on a long log takes as long as it takes: no timeout here.
    const caughtUp = applied >= head ? Promise.resolve() : waitFor(head, null);
    subscribe(after);
    await caughtUp;
  };

  const waitFor = (position: bigint, timeoutMs: number | null = 30_000): Promise<void> => {
    if (failure !== undefined) return Promise.reject(failure);
    // During an outage a waiter waits for the next attempt: it resolves if the store is back, else it is told.
    if (applied >= position) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === null
          ? undefined
          : setTimeout(() => {
              waiters.delete(waiter);
              reject(new Error(`Read models did not reach position ${position} within ${timeoutMs} ms`));
            }, timeoutMs);
      const waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      waiters.add(waiter);
    });
  };

  /** Only the projections' own collections: other read models (invocation records, metrics) stay. */
  const dropReadModels = async () => {
    const collections = new Set(projections.flatMap((projection) => Object.keys(projection.indexes)));
    for (const collection of collections) await readStore.dropCollection(collection);
  };

  const stop = async () => {
    stopped = true;
    clearTimeout(retryTimer);
    retryTimer = undefined;
    await subscription?.close();
    subscription = undefined;
  };

  return {
    async start() {
      const checkpoint = await readStore.getCheckpoint(checkpointName);
      if (checkpoint === null) await dropReadModels();
      await follow(checkpoint);
    },
    waitFor,
    async rebuild() {
      await stop();
      await dropReadModels();
      await follow(null);
    },
    position: () => applied,
    stop,
  };
};
