import { createSecretKey } from 'node:crypto';
import Router from '@koa/router';
import Koa from 'koa';
import koaJwt from 'koa-jwt';
import type { Logger } from '../infra/logger.ts';
import { bearerToken, createVerifiedTokens } from './auth.ts';
import { API_PREFIX, type Caller, type Endpoint, mount } from './endpoint.ts';
import { errorMiddleware } from './middleware/errors.ts';
import { type RateLimiter, setRateHeaders } from './middleware/rateLimit.ts';
import { DOCS_ROUTES, docsRouter } from './docs.ts';
import { buildOpenApiDocument, OPENAPI_ROUTE } from './openapi.ts';
import { HEALTH_ROUTE, type HealthProbe, healthReply } from './routes/health.ts';
import type { Context } from 'koa';

export interface AppOptions {
  readonly endpoints: readonly Endpoint[];
  readonly jwtSecret: string;
  readonly authenticate: (ctx: Context) => Promise<Caller>;
  readonly rateLimiter: RateLimiter;
  readonly rateLimits: Readonly<Record<string, number>> | false;
  /** Requests per minute per client address for everything no endpoint limits (health, 401s, 404s). */
  readonly anonymousRateLimit?: number;
  readonly healthProbes: readonly HealthProbe[];
  readonly logger: Logger;
  readonly now: () => Date;
}

export const createApp = (options: AppOptions): Koa => {
  const app = new Koa({ proxy: false });
  const startedAt = options.now();
  const anonymousLimit = options.anonymousRateLimit ?? 600;

  app.use(errorMiddleware(options.logger));
  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    ctx.set('Cache-Control', 'no-store');
    try {
      await next();
    } finally {
      // Endpoints set their own per-user limit headers; everything else counts against the address.
      if (options.rateLimits !== false && !ctx.res.hasHeader('X-RateLimit-Limit')) {
        setRateHeaders(ctx, options.rateLimiter.take(`ip:${ctx.ip}|anonymous`, anonymousLimit));
      }
    }
  });

  const health = new Router();
  health.get('/health', async (ctx) => {
    const reply = await healthReply(options.healthProbes, startedAt);
    ctx.status = reply.status;
    ctx.body = reply.body;
  });
  app.use(health.routes());
  app.use(docsRouter().routes());

  // A key object rather than the text: given text, jsonwebtoken first tries (and fails) to parse it as a
  // public key on every request, which costs more than verifying the signature. koa-jwt's types predate key
  // objects; it hands the secret to jsonwebtoken as it is.
  const jwtKey = createSecretKey(Buffer.from(options.jwtSecret)) as unknown as string;
  const verifyToken = koaJwt({ secret: jwtKey, algorithms: ['HS256'], passthrough: true, tokenKey: 'jwtToken' });
  // koa-jwt verifies each token the first time it comes; a token it accepted is not verified again until it expires.
  const verified = createVerifiedTokens();
  app.use(async (ctx, next) => {
    const token = bearerToken(ctx.get('authorization'));
    const claims = token === undefined ? undefined : verified.get(token);
    if (claims !== undefined) {
      (ctx.state as Record<string, unknown>).user = claims;
      return next();
    }
    return verifyToken(ctx, async () => {
      const state = ctx.state as { user?: unknown; jwtToken?: unknown };
      if (typeof state.jwtToken === 'string' && state.user !== undefined) verified.remember(state.jwtToken, state.user);
      await next();
    });
  });

  const api = new Router({ prefix: API_PREFIX });
  const document = JSON.stringify(
    buildOpenApiDocument({ endpoints: options.endpoints, routes: [HEALTH_ROUTE, OPENAPI_ROUTE, ...DOCS_ROUTES] }),
  );
  api.get(OPENAPI_ROUTE.path.slice(API_PREFIX.length), (ctx) => {
    ctx.type = 'application/json; charset=utf-8';
    ctx.body = document;
  });
  mount(api, options.endpoints, {
    rateLimiter: options.rateLimiter,
    rateLimits: options.rateLimits,
    authenticate: options.authenticate,
    now: options.now,
  });
  app.use(api.routes());
  // Without `throw`, the router answers a method a path lacks with a bare 405 (or 501) and an Allow header,
  // which the error middleware turns into the error body.
  app.use(api.allowedMethods());
  return app;
};
