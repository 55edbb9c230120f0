import type { Container } from './runtime.ts';

export interface PoolOptions {
  /** Most containers alive at once on this runner (busy and idle). */
  readonly maxContainers: number;
  /** An idle container older than this is disposed. */
  readonly idleTtlMs: number;
  readonly now?: () => number;
}

export interface Lease {
  readonly container: Container;
  /** True when the container was created for this lease. */
  readonly cold: boolean;
  /** Returns the container to the pool, or disposes of it. */
  release(dispose: boolean): void;
}

export interface PoolStats {
  readonly total: number;
  readonly busy: number;
  readonly waiting: number;
  /** One container id per warm `function:vN`. */
  readonly activeContainers: Record<string, string>;
  /** Heap bytes held by idle containers. */
  readonly idleBytes: number;
}

interface Entry {
  readonly key: string;
  readonly container: Container;
  busy: boolean;
  lastUsed: number;
}

/** What is known of one key's containers: how long a lease and a start take, and who waits for a release. */
interface KeyState {
  /** Moving averages, in ms; undefined until one was seen. */
  leaseMs: number | undefined;
  startMs: number | undefined;
  /** Callers waiting for a busy container of this key, handed it (or undefined: decide again) on release. */
  readonly waiters: Array<(entry: Entry | undefined) => void>;
}

/** Weight of the newest sample in the moving averages. */
const SMOOTHING = 0.2;
const smooth = (average: number | undefined, sample: number): number =>
  average === undefined ? sample : average + SMOOTHING * (sample - average);

/**
 * Warm containers per function version. A container runs one invocation at a time. An idle one is reused
 * (warm start; the one used last first, so that a few stay hot and the rest age out). When all of the key's
 * are busy and run on the runner's own thread (so that another would run no call sooner), the caller waits
 * for one of them if, at the rate they have been released, its turn would come sooner than a new container
 * would start, and for at most that long. Else a new one is created while under the cap (cold start), else
 * the oldest idle container of another version is evicted, else the caller waits for a release. A function
 * that answers in microseconds then runs on a few warm containers under any concurrency, instead of as many
 * cold ones as there are callers.
 */
export const createPool = (options: PoolOptions) => {
  // Sub-millisecond: a warm call can take microseconds, and lease times are averaged.
  const now = options.now ?? (() => performance.timeOrigin + performance.now());
  const entries = new Set<Entry>();
  const keys = new Map<string, KeyState>();
  const waiting: (() => void)[] = [];
  let creating = 0;
  let closed = false;

  const wakeOne = () => waiting.shift()?.();

  const stateOf = (key: string): KeyState => {
    let state = keys.get(key);
    if (state === undefined) {
      state = { leaseMs: undefined, startMs: undefined, waiters: [] };
      keys.set(key, state);
    }
    return state;
  };

  const remove = (entry: Entry) => {
    entries.delete(entry);
    try {
      entry.container.dispose();
    } catch {
      // already disposed (e.g. by a memory-limit breach)
    }
    const state = keys.get(entry.key);
    if (state === undefined) return;
    // A caller waiting for this container decides again (it may now start one).
    state.waiters.shift()?.(undefined);
    if (state.waiters.length === 0 && ![...entries].some((other) => other.key === entry.key)) keys.delete(entry.key);
  };

  const leaseFor = (entry: Entry, cold: boolean): Lease => {
    entry.busy = true;
    const leasedAt = now();
    let released = false;
    return {
      container: entry.container,
      cold,
      release(dispose) {
        if (released) return;
        released = true;
        const state = stateOf(entry.key);
        state.leaseMs = smooth(state.leaseMs, now() - leasedAt);
        entry.lastUsed = now();
        if (dispose) {
          entry.busy = false;
          remove(entry);
          wakeOne();
          return;
        }
        const next = state.waiters.shift();
        if (next !== undefined) {
          next(entry);
          return;
        }
        entry.busy = false;
        wakeOne();
      },
    };
  };

  /** The idle container of `key` used last, if any. */
  const idleOf = (key: string): Entry | undefined => {
    let found: Entry | undefined;
    for (const entry of entries) {
      if (entry.key === key && !entry.busy && (found === undefined || entry.lastUsed >= found.lastUsed)) found = entry;
    }
    return found;
  };

  /**
   * A busy container of `key` once one is released; undefined when the caller should decide again (one was
   * disposed of, or the pool closed). A caller still waiting after the time a start takes (the busy ones are
   * held longer than they were, by a handler awaiting a timer) stops waiting, and starts one.
   */
  const waitForRelease = (key: string): Promise<Entry | undefined | 'waitedLongEnough'> => {
    const state = stateOf(key);
    return new Promise((resolve) => {
      const handOver = (entry: Entry | undefined) => {
        clearTimeout(timer);
        resolve(entry);
      };
      const timer = setTimeout(() => {
        const index = state.waiters.indexOf(handOver);
        if (index === -1) return;
        state.waiters.splice(index, 1);
        resolve('waitedLongEnough');
      }, state.startMs ?? 0);
      state.waiters.push(handOver);
    });
  };

  /** Whether a caller of `key` is better off waiting for a busy container than starting one. */
  const worthWaiting = (key: string): boolean => {
    const state = keys.get(key);
    if (state?.leaseMs === undefined || state.startMs === undefined) return false;
    let busy = 0;
    for (const entry of entries) {
      if (entry.key !== key || !entry.busy) continue;
      // A container that runs beside the others (a process, an isolate on the thread pool) is worth starting.
      if (entry.container.runsOnRunnerThread?.() !== true) return false;
      busy += 1;
    }
    if (busy === 0) return false;
    return ((state.waiters.length + 1) / busy) * state.leaseMs < state.startMs;
  };

  const evictOldestIdle = (): boolean => {
    let oldest: Entry | undefined;
    for (const entry of entries) {
      if (!entry.busy && (oldest === undefined || entry.lastUsed < oldest.lastUsed)) oldest = entry;
    }
    if (oldest === undefined) return false;
    remove(oldest);
    return true;
  };

  const sweep = () => {
    const cutoff = now() - options.idleTtlMs;
    for (const entry of entries) if (!entry.busy && entry.lastUsed < cutoff) remove(entry);
  };
  const sweeper = setInterval(sweep, Math.max(1_000, Math.min(options.idleTtlMs, 30_000)));
  sweeper.unref();

  return {
    /** A warm container of `key`, or a new one from `create`; rejects with `create`'s error. */
    async acquire(key: string, create: () => Promise<Container>): Promise<Lease> {
      let waitedLongEnough = false;
      for (;;) {
        if (closed) throw new Error('The container pool is closed');
        const idle = idleOf(key);
        if (idle !== undefined) return leaseFor(idle, false);
        if (!waitedLongEnough && worthWaiting(key)) {
          const handed = await waitForRelease(key);
          if (handed === 'waitedLongEnough') waitedLongEnough = true;
          else if (handed !== undefined) return leaseFor(handed, false);
          continue;
        }
        if (entries.size + creating < options.maxContainers || evictOldestIdle()) {
          creating += 1;
          const started = now();
          try {
            const container = await create();
            const state = stateOf(key);
            state.startMs = smooth(state.startMs, now() - started);
            const entry: Entry = { key, container, busy: true, lastUsed: now() };
            entries.add(entry);
            return leaseFor(entry, true);
          } catch (error) {
            // The room this caller was to take is free again: a waiter may have it.
            wakeOne();
            throw error;
          } finally {
            creating -= 1;
          }
        }
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
    },

    stats(): PoolStats {
      const activeContainers: Record<string, string> = {};
      let busy = 0;
      let idleBytes = 0;
      for (const entry of entries) {
        activeContainers[entry.key] ??= entry.container.id;
        if (entry.busy) busy += 1;
        else idleBytes += entry.container.memoryUsage();
      }
      let waitingForKey = 0;
      for (const state of keys.values()) waitingForKey += state.waiters.length;
      return { total: entries.size, busy, waiting: waiting.length + waitingForKey, activeContainers, idleBytes };
    },

    /** Disposes of every container (idle or not) whose key matches. */
    evict(predicate: (key: string) => boolean): void {
      for (const entry of entries) if (predicate(entry.key) && !entry.busy) remove(entry);
    },

    close(): void {
      closed = true;
      clearInterval(sweeper);
      for (const entry of entries) remove(entry);
      for (const wake of waiting.splice(0)) wake();
      for (const state of keys.values()) for (const wake of state.waiters.splice(0)) wake(undefined);
    },
  };
};

export type Pool = ReturnType<typeof createPool>;
