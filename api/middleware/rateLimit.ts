import type { Context } from 'koa';

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit: number;
  readonly remaining: number;
  /** Unix time (seconds) when the window resets. */
  readonly reset: number;
  readonly retryAfterSeconds: number;
}

export interface RateLimiter {
  take(key: string, limit: number): RateDecision;
}

const WINDOW_MS = 60_000;

/** Fixed one-minute windows per key, in memory (each API node limits on its own). */
export const createRateLimiter = (now: () => number = Date.now): RateLimiter => {
  const windows = new Map<string, { start: number; count: number }>();
  let lastSweep = now();
  const sweep = (at: number) => {
    if (at - lastSweep < WINDOW_MS) return;
    lastSweep = at;
    for (const [key, window] of windows) if (at - window.start >= WINDOW_MS) windows.delete(key);
  };
  return {
    take(key, limit) {
      const at = now();
      sweep(at);
      let window = windows.get(key);
      if (window === undefined || at - window.start >= WINDOW_MS) {
        window = { start: at, count: 0 };
        windows.set(key, window);
      }
      const resetMs = window.start + WINDOW_MS;
      const allowed = window.count < limit;
      if (allowed) window.count += 1;
      return {
        allowed,
        limit,
        remaining: Math.max(0, limit - window.count),
        reset: Math.ceil(resetMs / 1000),
        retryAfterSeconds: Math.max(1, Math.ceil((resetMs - at) / 1000)),
      };
    },
  };
};

export const setRateHeaders = (ctx: Context, decision: RateDecision): void => {
  ctx.set('X-RateLimit-Limit', String(decision.limit));
  ctx.set('X-RateLimit-Remaining', String(decision.remaining));
  ctx.set('X-RateLimit-Reset', String(decision.reset));
};
