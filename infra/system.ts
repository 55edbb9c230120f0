import { randomUUID } from 'node:crypto';
import type { Clock, Ids } from '../domain/ports.ts';

export const systemClock: Clock = { now: () => new Date() };

// randomUUID draws from a buffered entropy pool; randomBytes asks the kernel on every call, which costs more
// than the rest of an id (one per invocation). A v4 UUID's first 12 hex digits are all random bits.
export const randomIds: Ids = {
  next: (prefix) => {
    const uuid = randomUUID();
    return `${prefix}-${uuid.slice(0, 8)}${uuid.slice(9, 13)}`;
  },
};

export const newRequestId = (): string => randomUUID();
