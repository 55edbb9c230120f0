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

/**
 * `req-` and a UUID version 7 (RFC 9562): the time in ms, then 74 random bits (from a v4 UUID's). Ids that grow
 * with time land next to each other in a b-tree: each invocation record written touches the index's last page,
 * not a random one (which cost a page write per record), and there are enough random bits never to repeat.
 */
export const newRequestId = (): string => {
  const time = Date.now().toString(16).padStart(12, '0');
  const random = randomUUID(); // xxxxxxxx-xxxx-4xxx-Vxxx-xxxxxxxxxxxx
  return `req-${time.slice(0, 8)}-${time.slice(8)}-7${random.slice(15, 18)}-${random.slice(19)}`;
};
