import { randomBytes, randomUUID } from 'node:crypto';
import type { Clock, Ids } from '../domain/ports.ts';

export const systemClock: Clock = { now: () => new Date() };

export const randomIds: Ids = {
  next: (prefix) => `${prefix}-${randomBytes(6).toString('hex')}`,
};

export const newRequestId = (): string => randomUUID();
