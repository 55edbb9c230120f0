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
 * Tokens koa-jwt has verified, with their claims, until they expire: verifying the same token again on every
 * request (signature, JSON, koa-jwt's promise plumbing) costs more than the rest of authentication. Only
 * tokens that passed are kept, at most `capacity` (the oldest go first), each exactly as koa-jwt read it.
 */
export const createVerifiedTokens = (capacity = 10_000, nowMs: () => number = Date.now) => {
  const claimsByToken = new Map<string, Readonly<Record<string, unknown>> & { readonly exp: number }>();
  return {
    /** The claims of a token verified before and not yet expired (jsonwebtoken's rule: now < exp). */
    get(token: string): Record<string, unknown> | undefined {
      const claims = claimsByToken.get(token);
      if (claims === undefined) return undefined;
      if (nowMs() / 1000 >= claims.exp) {
        claimsByToken.delete(token);
        return undefined;
      }
      return { ...claims };
    },
    remember(token: string, claims: unknown): void {
      if (typeof claims !== 'object' || claims === null) return;
      const { exp } = claims as { exp?: unknown };
      // A token without an expiry is verified every time rather than trusted for as long as it stays here.
      if (typeof exp !== 'number' || !Number.isFinite(exp)) return;
      if (claimsByToken.size >= capacity) {
        const oldest = claimsByToken.keys().next();
        if (!oldest.done) claimsByToken.delete(oldest.value);
      }
      claimsByToken.set(token, Object.freeze({ ...(claims as Record<string, unknown>), exp }));
    },
  };
};

/** The token of an `Authorization: Bearer <token>` header, as koa-jwt's header resolver reads it. */
export const bearerToken = (header: string | undefined): string | undefined => {
  if (header === undefined) return undefined;
  const parts = header.trim().split(' ');
  return parts.length === 2 && /^Bearer$/i.test(parts[0] ?? '') ? parts[1] : undefined;
};

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
