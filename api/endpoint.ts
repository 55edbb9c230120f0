import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Role } from '../domain/user/events.ts';
import type { CommandMetadata } from '../commands/execute.ts';
import { ApiError, type ApiErrorCode } from './errors.ts';
import { DEFAULT_BODY_LIMIT, type JsonParser, mediaTypeOf, payloadTooLarge, readJsonBody } from './middleware/body.ts';
import type { RequestState } from './middleware/errors.ts';
import { type RateLimiter, setRateHeaders } from './middleware/rateLimit.ts';
import { bodyValidator, queryValidator, type Validator } from './validate.ts';

export interface Caller {
  readonly userId: string;
  readonly username: string;
  readonly role: Role;
}

export interface Input<B, Q> {
  readonly body: B;
  readonly query: Q;
  readonly params: Readonly<Record<string, string>>;
  /** The authenticated user; absent only on public endpoints. */
  readonly caller: Caller | undefined;
  /** Metadata for the commands this request issues. */
  readonly metadata: CommandMetadata;
  /** True when the body came as the endpoint's `rawBody` media type: `body` is then undefined, the body unread. */
  readonly raw: boolean;
  readonly ctx: Context;
}

/** A body an endpoint also takes as it is, in a media type other than JSON, for the handler to read. */
export interface RawBody {
  readonly mediaType: string;
  /** Largest body accepted, in bytes: larger Content-Lengths are refused before the handler runs. */
  readonly limit: number;
  /** Its schema in the document. */
  readonly schema: object;
}

export interface Reply {
  readonly status: number;
  readonly body?: unknown;
}

/** A successful answer as documented: what it means, and the JSON Schema of its body (none for a 204). */
export interface Success {
  readonly description: string;
  readonly body?: object;
  /** Operations this answer leads to (OpenAPI links): operationId → path parameter → runtime expression. */
  readonly links?: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** The same path parameters, from this answer, for each of the operations named. */
export const linksTo = (
  operationIds: readonly string[],
  parameters: Readonly<Record<string, string>>,
): Readonly<Record<string, Readonly<Record<string, string>>>> =>
  Object.fromEntries(operationIds.map((operationId) => [operationId, parameters]));

/** One operation of the API: its route, who may call it, how often, and what it accepts. */
export interface Endpoint<B = unknown, Q = unknown> {
  readonly method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Path under /api/v1 in the reference's style, e.g. `/functions/{name}`. */
  readonly path: string;
  /** Roles allowed, or 'public' for endpoints without authentication. */
  readonly roles: readonly Role[] | 'public';
  /** Default requests per minute per user (per client address on public endpoints). */
  readonly rateLimit: number;
  /** Whose requests the limit counts: the caller's (default), or all callers' of the function named in the path. */
  readonly rateLimitBy?: 'user' | 'function';
  readonly body?: object;
  /** Largest body accepted, in bytes; 6 MB unless said otherwise. */
  readonly bodyLimit?: number;
  /** Parses the body's bytes into what `body` validates; JSON.parse of its UTF-8 text unless said otherwise. */
  readonly parseBody?: JsonParser;
  readonly rawBody?: RawBody;
  readonly query?: object;
  readonly summary: string;
  /** Longer prose for the documentation. */
  readonly description?: string;
  /** Every successful status the handler answers with, and its body. */
  readonly responses: Readonly<Record<number, Success>>;
  /** Error codes the handler itself answers with, beyond those `possibleErrors` adds for every endpoint like it. */
  readonly errors?: readonly ApiErrorCode[];
  handle(input: Input<B, Q>): Promise<Reply>;
}

export const ALL_ROLES: readonly Role[] = ['Admin', 'Developer', 'Operator', 'Viewer'];

export const API_PREFIX = '/api/v1';

/** `METHOD /api/v1/path/{param}`: the key rate limits are configured by. */
export const endpointKey = (endpoint: Pick<Endpoint, 'method' | 'path'>): string =>
  `${endpoint.method} ${API_PREFIX}${endpoint.path}`;

/**
 * Every error code an endpoint may answer with: those `mount` produces for its kind (validation of its
 * body and query, authentication, roles, body size and type, rate limit, failures), plus its own.
 */
export const possibleErrors = (endpoint: Endpoint): Set<ApiErrorCode> => {
  const codes = new Set<ApiErrorCode>(endpoint.errors ?? []);
  if (endpoint.body !== undefined || endpoint.query !== undefined) codes.add('VALIDATION_ERROR');
  if (endpoint.body !== undefined) {
    codes.add('PAYLOAD_TOO_LARGE');
    codes.add('UNSUPPORTED_MEDIA_TYPE');
  }
  if (endpoint.roles !== 'public') {
    codes.add('UNAUTHORIZED');
    if (ALL_ROLES.some((role) => !endpoint.roles.includes(role))) codes.add('FORBIDDEN');
  }
  codes.add('RATE_LIMIT_EXCEEDED');
  codes.add('INTERNAL_ERROR');
  codes.add('SERVICE_UNAVAILABLE');
  return codes;
};

const DEEP_OBJECT_KEY = /^([^[\]]+)\[([^[\]]*)\]$/;

/**
 * The query with its `name[key]=value` parameters gathered into a `name` object: OpenAPI's deepObject style,
 * in which the document describes object-valued query parameters. Where `name` is also given plainly, the
 * bracketed keys are left as they are (and fail validation as unknown parameters).
 */
const deepObjects = (query: Readonly<Record<string, unknown>>): Record<string, unknown> => {
  const entries = Object.entries(query);
  const plain = new Set(entries.map(([key]) => key).filter((key) => !DEEP_OBJECT_KEY.test(key)));
  const objects = new Map<string, [string, unknown][]>();
  const gathered: [string, unknown][] = [];
  for (const [key, value] of entries) {
    const [, name, property] = DEEP_OBJECT_KEY.exec(key) ?? [];
    if (name === undefined || property === undefined || plain.has(name)) gathered.push([key, value]);
    else objects.set(name, [...(objects.get(name) ?? []), [property, value]]);
  }
  for (const [name, properties] of objects) gathered.push([name, Object.fromEntries(properties)]);
  return Object.fromEntries(gathered);
};

const koaPath = (path: string): string => path.replace(/\{(\w+)\}/g, ':$1');

export interface MountOptions {
  readonly rateLimiter: RateLimiter;
  /** Per-endpoint overrides keyed by `endpointKey`; `false` disables limiting. */
  readonly rateLimits: Readonly<Record<string, number>> | false;
  /** Resolves the bearer token's user, or throws UNAUTHORIZED. */
  readonly authenticate: (ctx: Context) => Promise<Caller>;
  readonly now: () => Date;
}

export const mount = (router: Router, endpoints: readonly Endpoint[], options: MountOptions): void => {
  for (const endpoint of endpoints) {
    const key = endpointKey(endpoint);
    const limit = options.rateLimits === false ? undefined : (options.rateLimits[key] ?? endpoint.rateLimit);
    const validateBody: Validator | undefined = endpoint.body === undefined ? undefined : bodyValidator(endpoint.body);
    const validateQuery: Validator = queryValidator(endpoint.query ?? { type: 'object', additionalProperties: true });
    const method = endpoint.method.toLowerCase() as 'get' | 'post' | 'put' | 'delete';
    router[method](koaPath(endpoint.path), async (ctx) => {
      const caller = endpoint.roles === 'public' ? undefined : await options.authenticate(ctx);
      if (limit !== undefined) {
        const subject =
          endpoint.rateLimitBy === 'function' ? `function:${ctx.params.name}` : (caller?.userId ?? `ip:${ctx.ip}`);
        const decision = options.rateLimiter.take(`${subject}|${key}`, limit);
        setRateHeaders(ctx, decision);
        if (!decision.allowed) {
          throw new ApiError(
            'RATE_LIMIT_EXCEEDED',
            `Rate limit of ${limit} requests per minute exceeded for ${key}`,
            [],
            { 'Retry-After': String(decision.retryAfterSeconds) },
          );
        }
      }
      if (caller !== undefined && endpoint.roles !== 'public' && !endpoint.roles.includes(caller.role)) {
        throw new ApiError('FORBIDDEN', `Role ${caller.role} may not ${endpoint.summary.toLowerCase()}`, [
          { field: 'role', message: `Requires one of: ${endpoint.roles.join(', ')}` },
        ]);
      }
      const query = validateQuery(deepObjects(ctx.query));
      const raw = endpoint.rawBody !== undefined && mediaTypeOf(ctx) === endpoint.rawBody.mediaType;
      if (raw && endpoint.rawBody !== undefined && (ctx.request.length ?? 0) > endpoint.rawBody.limit) {
        throw payloadTooLarge(endpoint.rawBody.limit);
      }
      const body =
        validateBody === undefined || raw
          ? undefined
          : validateBody(
              await readJsonBody(ctx, {
                limit: endpoint.bodyLimit ?? DEFAULT_BODY_LIMIT,
                ...(endpoint.parseBody === undefined ? {} : { parse: endpoint.parseBody }),
                ...(endpoint.rawBody === undefined ? {} : { alsoAccepted: endpoint.rawBody.mediaType }),
              }),
            );
      const requestId = (ctx.state as RequestState).traceId;
      const correlation = ctx.get('x-correlation-id');
      const metadata: CommandMetadata = {
        userId: caller?.userId ?? 'anonymous',
        now: options.now().toISOString(),
        traceId: (ctx.state as RequestState).traceId,
        correlationId: /^[\w.:-]{1,128}$/.test(correlation) ? correlation : requestId,
        causationId: requestId,
      };
      const reply = await endpoint.handle({ body, query, params: ctx.params, caller, metadata, raw, ctx });
      ctx.status = reply.status;
      if (reply.body !== undefined) ctx.body = reply.body;
    });
  }
};
