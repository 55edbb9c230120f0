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

/**
 * Warm containers per function version. A container runs one invocation at a time; an idle one is
 * reused (warm start), else a new one is created while under the cap (cold start), else the oldest idle
 * container of another version is evicted, else the caller waits for a release.
 */
export const createPool = (options: PoolOptions) => {
  const now = options.now ?? Date.now;
  const entries = new Set<Entry>();
  const waiting: (() => void)[] = [];
  let creating = 0;
  let closed = false;

  const wakeOne = () => waiting.shift()?.();

  const remove = (entry: Entry) => {
    entries.delete(entry);
    try {
      entry.container.dispose();
    } catch {
      // already disposed (e.g. by a memory-limit breach)
    }
  };

  const leaseFor = (entry: Entry, cold: boolean): Lease => {
    entry.busy = true;
    let released = false;
    return {
      container: entry.container,
      cold,
      release(dispose) {
        if (released) return;
        released = true;
        entry.busy = false;
        entry.lastUsed = now();
        if (dispose) remove(entry);
        wakeOne();
      },
    };
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
      for (;;) {
        if (closed) throw new Error('The container pool is closed');
        for (const entry of entries) {
          if (entry.key === key && !entry.busy) return leaseFor(entry, false);
        }
        if (entries.size + creating < options.maxContainers || evictOldestIdle()) {
          creating += 1;
          try {
            const container = await create();
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
      return { total: entries.size, busy, waiting: waiting.length, activeContainers, idleBytes };
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
    },
  };
};

export type Pool = ReturnType<typeof createPool>;
