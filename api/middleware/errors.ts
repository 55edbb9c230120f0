import { randomBytes } from 'node:crypto';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context, Next } from 'koa';
import { errorOf } from '../../domain/shared/errors.ts';
import { isBusError, isStoreError } from '../../domain/ports.ts';
import type { Logger } from '../../infra/logger.ts';
import { ApiError, type ApiErrorCode, type ErrorBody, isApiError, STATUS_OF } from '../errors.ts';

export interface RequestState {
  traceId: string;
}

const tracer = trace.getTracer('strata-api');

/** A trace id from the active span; a random one where no tracer provider is registered. */
const traceIdOf = (): string => {
  const traceId = trace.getActiveSpan()?.spanContext().traceId;
  return traceId === undefined || /^0+$/.test(traceId) ? randomBytes(16).toString('hex') : traceId;
};

/** Koa's own HTTP errors (from koa-jwt, the router, ctx.throw) mapped onto our codes. */
const fromHttpStatus = (status: number): ApiErrorCode => {
  switch (status) {
    case 401:
      return 'UNAUTHORIZED';
    case 403:
      return 'FORBIDDEN';
    case 404:
      return 'NOT_FOUND';
    case 405:
      return 'METHOD_NOT_ALLOWED';
    case 413:
      return 'PAYLOAD_TOO_LARGE';
    case 415:
      return 'UNSUPPORTED_MEDIA_TYPE';
    case 429:
      return 'RATE_LIMIT_EXCEEDED';
    case 503:
      return 'SERVICE_UNAVAILABLE';
    default:
      return status >= 400 && status < 500 ? 'VALIDATION_ERROR' : 'INTERNAL_ERROR';
  }
};

const toApiError = (error: unknown): ApiError => {
  if (isApiError(error)) return error;
  const domain = errorOf(error);
  if (domain !== undefined) return new ApiError(domain.code, domain.message, domain.details);
  if (isStoreError(error, 'WRONG_EXPECTED_REVISION')) {
    return new ApiError('CONFLICT', 'The resource was changed concurrently; retry the request');
  }
  // SERVICE_UNREACHABLE: an adapter that has not reached its service since the process started
  // (ServiceUnreachableError); a node that started without waiting for it may meet it in a request.
  if (
    isStoreError(error, 'UNAVAILABLE') ||
    isBusError(error, 'UNAVAILABLE') ||
    (error as { code?: unknown }).code === 'SERVICE_UNREACHABLE'
  ) {
    return new ApiError('SERVICE_UNAVAILABLE', 'A backing service is unavailable', [], { 'Retry-After': '1' });
  }
  const status = (error as { status?: unknown; expose?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = fromHttpStatus(status);
    const message = code === 'UNAUTHORIZED' ? 'Missing or invalid JWT token' : (error as Error).message;
    return new ApiError(code, message);
  }
  return new ApiError('INTERNAL_ERROR', 'Internal server error');
};

/**
 * First middleware: gives the request a trace id and turns every failure, and every unmatched route,
 * into the one documented error body.
 */
export const errorMiddleware = (logger: Logger) => (ctx: Context, next: Next) => {
  const parent = propagation.extract(context.active(), ctx.headers);
  return tracer.startActiveSpan(`${ctx.method} ${ctx.path}`, { kind: SpanKind.SERVER }, parent, async (span) => {
    try {
      await handleErrors(ctx, next, logger);
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      if (typeof route === 'string') span.updateName(`${ctx.method} ${route}`);
      span.setAttribute('http.response.status_code', ctx.status);
      if (ctx.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } finally {
      span.end();
    }
  });
};

const handleErrors = async (ctx: Context, next: Next, logger: Logger) => {
  const traceId = traceIdOf();
  (ctx.state as RequestState).traceId = traceId;
  ctx.set('X-Trace-Id', traceId);
  try {
    await next();
    if (ctx.body === undefined && [404, 405, 501].includes(ctx.status)) {
      const allow = String(ctx.response.headers.allow ?? '');
      if (ctx.status === 404 || allow === '') throw new ApiError('NOT_FOUND', `No route for ${ctx.method} ${ctx.path}`);
      throw new ApiError('METHOD_NOT_ALLOWED', `${ctx.method} is not allowed on ${ctx.path}; allowed: ${allow}`, [], {
        Allow: allow,
      });
    }
  } catch (caught) {
    const error = toApiError(caught);
    const status = STATUS_OF[error.code];
    if (status >= 500) logger.error({ err: caught, traceId, method: ctx.method, path: ctx.path }, 'request failed');
    const body: ErrorBody = {
      error: {
        code: error.code,
        message: error.message,
        details: error.details,
        traceId,
        timestamp: new Date().toISOString(),
      },
    };
    ctx.status = status;
    for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
    ctx.body = body;
  }
};
