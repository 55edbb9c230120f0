import type { ReadStore } from '../../domain/ports.ts';
import { COLLECTIONS, type UserDocument, userId } from '../../projections/documents.ts';
import type { Tokens } from '../auth.ts';
import type { Endpoint } from '../endpoint.ts';
import { ApiError } from '../errors.ts';
import { loginResponse } from '../responses.ts';
import { loginBody } from '../schemas.ts';

export interface LoginThrottle {
  /** Milliseconds to hold an attempt for this username back. */
  delayFor(username: string): number;
  failed(username: string): void;
  succeeded(username: string): void;
}

/**
 * Repeated failures for one username slow every further attempt for it: free for the first three,
 * then 0.5 s doubling up to 8 s. Counts fade after 15 minutes without a failure.
 */
export const createLoginThrottle = (now: () => number = Date.now): LoginThrottle => {
  const failures = new Map<string, { count: number; last: number }>();
  const FORGET_MS = 15 * 60_000;
  const current = (username: string) => {
    const key = username.toLowerCase();
    const entry = failures.get(key);
    if (entry !== undefined && now() - entry.last > FORGET_MS) failures.delete(key);
    return failures.get(key);
  };
  return {
    delayFor(username) {
      const count = current(username)?.count ?? 0;
      return count < 3 ? 0 : Math.min(8_000, 500 * 2 ** (count - 3));
    },
    failed(username) {
      const key = username.toLowerCase();
      const entry = current(key);
      failures.set(key, { count: (entry?.count ?? 0) + 1, last: now() });
      if (failures.size > 100_000) failures.delete(failures.keys().next().value ?? key);
    },
    succeeded(username) {
      failures.delete(username.toLowerCase());
    },
  };
};

export interface AuthRoutesOptions {
  readonly readStore: ReadStore;
  readonly tokens: Tokens;
  readonly verifyPassword: (password: string, hash: string) => Promise<boolean>;
  readonly decoyHash: string;
  readonly throttle: LoginThrottle;
}

export const authEndpoints = (options: AuthRoutesOptions): Endpoint[] => [
  {
    method: 'POST',
    path: '/authentication/login',
    roles: 'public',
    rateLimit: 30,
    body: loginBody,
    summary: 'Log in',
    description:
      'Exchanges a username and password for a JWT. Repeated failures for one username slow further attempts down.',
    responses: { 200: { description: 'Logged in', body: loginResponse } },
    errors: ['UNAUTHORIZED'],
    async handle({ body }) {
      const { username, password } = body as { username: string; password: string };
      const delay = options.throttle.delayFor(username);
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      const user = (await options.readStore.get(COLLECTIONS.users, userId(username))) as UserDocument | null;
      const valid = await options.verifyPassword(password, user?.passwordHash ?? options.decoyHash);
      if (user === null || !valid || user.status !== 'Active') {
        options.throttle.failed(username);
        throw new ApiError('UNAUTHORIZED', 'Invalid username or password');
      }
      options.throttle.succeeded(username);
      const { token, expiresAt } = options.tokens.issue(user);
      return { status: 200, body: { token, expiresAt, user: { username: user.username, role: user.role } } };
    },
  },
];
