import type { Context } from 'koa';
import jwt from 'jsonwebtoken';
import type { ReadStore } from '../domain/ports.ts';
import { isRole } from '../domain/user/events.ts';
import { COLLECTIONS, type UserDocument, userId } from '../projections/documents.ts';
import type { Caller } from './endpoint.ts';
import { ApiError } from './errors.ts';

export interface TokenClaims {
  readonly sub: string;
  readonly uid: string;
}

export interface Tokens {
  issue(user: { username: string; userId: string }): { token: string; expiresAt: string };
}

export const createTokens = (secret: string, ttlSeconds: number, now: () => Date): Tokens => ({
  issue(user) {
    const issuedAt = Math.floor(now().getTime() / 1000);
    const expiresAt = issuedAt + ttlSeconds;
    const token = jwt.sign({ sub: user.username, uid: user.userId, iat: issuedAt, exp: expiresAt }, secret, {
      algorithm: 'HS256',
    });
    return { token, expiresAt: new Date(expiresAt * 1000).toISOString() };
  },
});

/**
 * Who is calling: koa-jwt has verified the token (or left why it could not); the role and whether the
 * user may still act come from the users read model, so a role change or a disable applies at once.
 */
export const createAuthenticate =
  (readStore: ReadStore) =>
  async (ctx: Context): Promise<Caller> => {
    const claims = (ctx.state as { user?: Partial<TokenClaims> }).user;
    if (claims === undefined || typeof claims.sub !== 'string') {
      const reason = (ctx.state as { jwtOriginalError?: Error }).jwtOriginalError;
      const message =
        reason?.name === 'TokenExpiredError'
          ? 'The JWT token has expired'
          : ctx.get('authorization') === ''
            ? 'Missing JWT token: send Authorization: Bearer <token>'
            : 'Invalid JWT token';
      throw new ApiError('UNAUTHORIZED', message);
    }
    const user = (await readStore.get(COLLECTIONS.users, userId(claims.sub))) as UserDocument | null;
    if (user === null || user.status !== 'Active' || user.userId !== claims.uid || !isRole(user.role)) {
      throw new ApiError('UNAUTHORIZED', 'The JWT token no longer grants access');
    }
    return { userId: user.userId, username: user.username, role: user.role };
  };
