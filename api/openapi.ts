import packageJson from '../package.json' with { type: 'json' };
import { API_PREFIX, type Endpoint, possibleErrors, type Success } from './endpoint.ts';
import { type ApiErrorCode, STATUS_OF } from './errors.ts';
import * as responseSchemas from './responses.ts';
import * as requestSchemas from './schemas.ts';
import { pathParameters } from './schemas.ts';

// The OpenAPI 3.1 document, built from the endpoint table and the same schema objects ajv validates
// with: a schema exported from api/schemas.ts or api/responses.ts becomes a component named after its
// export, and every other use of that object refers to it.

/** A route outside the endpoint table (health, this document, the docs pages), described for the document. */
export interface PlainRoute {
  readonly method: 'GET';
  /** Full path, in `{param}` style. */
  readonly path: string;
  readonly summary: string;
  readonly description?: string;
  readonly parameters?: readonly PlainParameter[];
  /** Every status it answers with, and its body per media type. */
  readonly responses: Readonly<Record<number, { description: string; content: Readonly<Record<string, object>> }>>;
  /** Error codes it answers with (as the common error body). */
  readonly errors?: readonly ApiErrorCode[];
}

export interface PlainParameter {
  readonly name: string;
  readonly in: 'path' | 'query';
  readonly description: string;
  readonly schema: object;
}

export type OpenApiDocument = Record<string, unknown> & {
  readonly paths: Record<string, Record<string, Record<string, unknown>>>;
};

const TAGS = [
  { name: 'Authentication', segments: ['authentication', 'login'], description: 'Log in for a bearer token.' },
  { name: 'Users', segments: ['users'], description: 'Users and their roles (Admin only).' },
  { name: 'Functions', segments: ['functions'], description: 'Functions and their configuration.' },
  { name: 'Versions', segments: ['versions'], description: 'Immutable versions of a function, published from a ZIP.' },
  { name: 'Aliases', segments: ['aliases'], description: 'Named pointers at versions, with weighted traffic splits.' },
  {
    name: 'Invocations',
    segments: ['invoke', 'invoke-async', 'invocations', 'logs', 'metrics'],
    description: 'Running functions, and their records, logs and metrics.',
  },
  { name: 'Runners', segments: ['runners'], description: 'The nodes that run functions.' },
  {
    name: 'Platform',
    segments: ['health', 'openapi.json', 'docs'],
    description: 'Health, this document and its pages.',
  },
] as const;

/** The tag of the path's last literal segment that names a resource. */
const tagOf = (path: string): string => {
  const segments = path.split('/').filter((segment) => segment !== '' && !segment.startsWith('{'));
  for (const segment of segments.reverse()) {
    const tag = TAGS.find((candidate) => (candidate.segments as readonly string[]).includes(segment));
    if (tag !== undefined) return tag.name;
  }
  throw new Error(`No documentation tag for ${path}`);
};

const ERROR_MEANING: Readonly<Record<ApiErrorCode, string>> = {
  VALIDATION_ERROR: 'the request is invalid; `details` names each offending field',
  INVALID_CODE_PACKAGE: 'the code is not a ZIP the runtime can run',
  UNAUTHORIZED: 'no valid bearer token (for login: wrong username or password)',
  FORBIDDEN: "the caller's role may not do this",
  NOT_FOUND: 'something named in the path does not exist',
  METHOD_NOT_ALLOWED: 'the path does not take this method',
  CONFLICT: 'the request conflicts with the current state (already exists, in use, or changed concurrently)',
  PAYLOAD_TOO_LARGE: 'the body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'the body is not JSON',
  RATE_LIMIT_EXCEEDED: 'over the rate limit (or the function is at its concurrency limit); retry after Retry-After',
  INTERNAL_ERROR: 'an unexpected failure',
  SERVICE_UNAVAILABLE: 'a backing service (store, bus or runners) is unavailable; retry',
};

const header = (description: string, schema: object, required = false) => ({ description, required, schema });

const HEADERS = {
  'X-Trace-Id': header(
    'The trace id of the request (also in error bodies).',
    { type: 'string', pattern: '^[0-9a-f]{32}$' },
    true,
  ),
  'X-RateLimit-Limit': header('Requests allowed per minute (absent when rate limiting is turned off).', {
    type: 'integer',
    minimum: 0,
  }),
  'X-RateLimit-Remaining': header('Requests left in the current minute.', { type: 'integer', minimum: 0 }),
  'X-RateLimit-Reset': header('Unix time (seconds) when the current window ends.', { type: 'integer', minimum: 0 }),
  'Retry-After': header('Seconds to wait before retrying.', { type: 'integer', minimum: 0 }),
  'X-Strata-Function-Error': header('Present when the function failed: its outcome.', {
    type: 'string',
    enum: ['functionError', 'timeout', 'outOfMemory', 'throttled', 'platformError'],
  }),
} as const;

const headerRef = (name: keyof typeof HEADERS) => ({ $ref: `#/components/headers/${name}` });

const COMMON_HEADERS = {
  'X-Trace-Id': headerRef('X-Trace-Id'),
  'X-RateLimit-Limit': headerRef('X-RateLimit-Limit'),
  'X-RateLimit-Remaining': headerRef('X-RateLimit-Remaining'),
  'X-RateLimit-Reset': headerRef('X-RateLimit-Reset'),
};

const isSchemaExport = (value: unknown): value is object =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && 'type' in value;

const componentName = (exportName: string): string => exportName.charAt(0).toUpperCase() + exportName.slice(1);

/** Components by object identity: each exported request or response schema, named after its export. */
const COMPONENTS = new Map<object, string>(
  [...Object.entries(requestSchemas), ...Object.entries(responseSchemas)]
    .map(([name, schema]): [string, unknown] => [name, schema])
    .filter((entry): entry is [string, object] => isSchemaExport(entry[1]))
    .map(([name, schema]) => [schema, componentName(name)]),
);

const operationIdOf = (summary: string): string =>
  summary
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word !== '')
    .map((word, index) => (index === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1)))
    .join('');

/** `RATE_LIMIT_EXCEEDED` → `RateLimitExceeded`. */
const pascalCaseOf = (code: string): string =>
  code
    .toLowerCase()
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');

const pathParameterNames = (path: string): string[] => [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1] ?? '');

export interface DocumentOptions {
  readonly endpoints: readonly Endpoint[];
  readonly routes: readonly PlainRoute[];
}

export const buildOpenApiDocument = ({ endpoints, routes }: DocumentOptions): OpenApiDocument => {
  const used = new Set<object>();

  /** A deep copy of a schema in which every component (other than `top` itself) is a `$ref`. */
  const schemaOf = (value: unknown, top?: object): unknown => {
    if (Array.isArray(value)) return value.map((item) => schemaOf(item));
    if (typeof value !== 'object' || value === null) return value;
    const component = COMPONENTS.get(value);
    if (component !== undefined && value !== top) {
      used.add(value);
      return { $ref: `#/components/schemas/${component}` };
    }
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, schemaOf(item)]));
  };

  /** Error answers, one component per status and set of codes, e.g. `NotFound`, `ValidationErrorOrInvalidCodePackage`. */
  const errorComponents: Record<string, unknown> = {};
  const errorResponses = (codes: ReadonlySet<ApiErrorCode>) => {
    const byStatus = new Map<number, ApiErrorCode[]>();
    for (const code of [...codes].sort()) {
      byStatus.set(STATUS_OF[code], [...(byStatus.get(STATUS_OF[code]) ?? []), code]);
    }
    const responses: Record<string, unknown> = {};
    for (const [status, statusCodes] of [...byStatus.entries()].sort(([a], [b]) => a - b)) {
      const name = statusCodes.map(pascalCaseOf).join('Or');
      errorComponents[name] ??= {
        description: statusCodes.map((code) => `\`${code}\`: ${ERROR_MEANING[code]}`).join('; '),
        headers: {
          ...COMMON_HEADERS,
          ...(status === 429 ? { 'Retry-After': { ...HEADERS['Retry-After'], required: true } } : {}),
          ...(status === 503 ? { 'Retry-After': headerRef('Retry-After') } : {}),
        },
        content: {
          'application/json': {
            schema: {
              allOf: [
                schemaOf(responseSchemas.errorBody),
                { properties: { error: { properties: { code: { enum: statusCodes } } } } },
              ],
            },
          },
        },
      };
      responses[String(status)] = { $ref: `#/components/responses/${name}` };
    }
    return responses;
  };

  const pathParameterList = (path: string) =>
    pathParameterNames(path).map((name) => {
      const parameter = pathParameters[name];
      if (parameter === undefined) throw new Error(`Path parameter {${name}} of ${path} is not in pathParameters`);
      return { name, in: 'path', required: true, ...parameter };
    });

  const queryParameterList = (schema: object | undefined) => {
    if (schema === undefined) return [];
    const { properties = {}, required = [] } = schema as {
      properties?: Record<string, object>;
      required?: readonly string[];
    };
    return Object.entries(properties).map(([name, property]) => ({
      name,
      in: 'query',
      required: required.includes(name),
      ...((property as { description?: unknown }).description === undefined
        ? {}
        : { description: (property as { description: unknown }).description }),
      // Object-valued parameters go as `name[key]=value` (api/endpoint.ts gathers them).
      ...((property as { type?: unknown }).type === 'object' ? { style: 'deepObject', explode: true } : {}),
      schema: schemaOf(property),
    }));
  };

  const linked = new Set<string>();
  const successResponse = (success: Success, extraHeaders: Record<string, unknown> = {}) => ({
    description: success.description,
    headers: { ...COMMON_HEADERS, ...extraHeaders },
    ...(success.body === undefined ? {} : { content: { 'application/json': { schema: schemaOf(success.body) } } }),
    ...(success.links === undefined
      ? {}
      : {
          links: Object.fromEntries(
            Object.entries(success.links).map(([operationId, parameters]) => {
              linked.add(operationId);
              return [operationId, { operationId, parameters }];
            }),
          ),
        }),
  });

  const paths: Record<string, Record<string, Record<string, unknown>>> = {};
  const operationIds = new Set<string>();
  const add = (path: string, method: string, operation: Record<string, unknown>) => {
    const operationId = operation.operationId as string;
    if (operationIds.has(operationId)) throw new Error(`Two operations are called ${operationId}`);
    operationIds.add(operationId);
    paths[path] ??= {};
    const item = paths[path];
    if (item[method] !== undefined) throw new Error(`${method.toUpperCase()} ${path} is documented twice`);
    item[method] = operation;
  };

  for (const endpoint of endpoints) {
    const path = `${API_PREFIX}${endpoint.path}`;
    const limitSubject =
      endpoint.rateLimitBy === 'function' ? 'function' : endpoint.roles === 'public' ? 'client address' : 'user';
    const who = endpoint.roles === 'public' ? 'Anyone' : `Roles: ${endpoint.roles.join(', ')}`;
    const body = endpoint.body as { required?: readonly string[]; minProperties?: number; anyOf?: unknown } | undefined;
    add(path, endpoint.method.toLowerCase(), {
      tags: [tagOf(endpoint.path)],
      summary: endpoint.summary,
      description: [
        endpoint.description,
        `${who}. Rate limit: ${endpoint.rateLimit.toLocaleString('en')} requests per minute per ${limitSubject}.`,
      ]
        .filter((line) => line !== undefined)
        .join('\n\n'),
      operationId: operationIdOf(endpoint.summary),
      ...(endpoint.roles === 'public' ? { security: [] } : {}),
      parameters: [...pathParameterList(endpoint.path), ...queryParameterList(endpoint.query)],
      ...(body === undefined
        ? {}
        : {
            requestBody: {
              required: (body.required?.length ?? 0) > 0 || (body.minProperties ?? 0) > 0 || body.anyOf !== undefined,
              content: {
                'application/json': { schema: schemaOf(body) },
                ...(endpoint.rawBody === undefined
                  ? {}
                  : { [endpoint.rawBody.mediaType]: { schema: endpoint.rawBody.schema } }),
              },
            },
          }),
      responses: {
        ...Object.fromEntries(
          Object.entries(endpoint.responses).map(([status, success]) => [
            status,
            successResponse(
              success,
              endpoint.path.endsWith('/invoke') && status === '200'
                ? { 'X-Strata-Function-Error': headerRef('X-Strata-Function-Error') }
                : {},
            ),
          ]),
        ),
        ...errorResponses(possibleErrors(endpoint)),
      },
      'x-strata-roles': endpoint.roles === 'public' ? [] : endpoint.roles,
      'x-strata-rate-limit': { perMinute: endpoint.rateLimit, per: limitSubject },
    });
  }

  for (const route of routes) {
    add(route.path, route.method.toLowerCase(), {
      tags: [tagOf(route.path)],
      summary: route.summary,
      ...(route.description === undefined ? {} : { description: route.description }),
      operationId: operationIdOf(route.summary),
      security: [],
      parameters: (route.parameters ?? []).map((parameter) => ({
        ...parameter,
        required: parameter.in === 'path',
        schema: schemaOf(parameter.schema),
      })),
      responses: {
        ...Object.fromEntries(
          Object.entries(route.responses).map(([status, response]) => [
            status,
            {
              description: response.description,
              headers: COMMON_HEADERS,
              content: Object.fromEntries(
                Object.entries(response.content).map(([type, schema]) => [type, { schema: schemaOf(schema) }]),
              ),
            },
          ]),
        ),
        ...errorResponses(new Set(route.errors ?? [])),
      },
    });
  }

  for (const operationId of linked) {
    if (!operationIds.has(operationId)) throw new Error(`A link names the unknown operation ${operationId}`);
  }

  // Components refer to further components: convert until no new one is used.
  const schemas: Record<string, unknown> = {};
  for (let grew = true; grew; ) {
    grew = false;
    for (const schema of [...used]) {
      const name = COMPONENTS.get(schema) ?? '';
      if (!(name in schemas)) {
        schemas[name] = schemaOf(schema, schema);
        grew = true;
      }
    }
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Strata API',
      version: packageJson.version,
      summary: 'Self-hosted serverless functions: upload code, publish versions, route aliases, invoke.',
      description: [
        'REST + JSON. Authenticate with `Authorization: Bearer <JWT>` from `POST /api/v1/authentication/login`;',
        'in these docs, logging in through that operation authorizes the page.',
        '',
        'Every error has one body (`ErrorBody`): a machine code, a message, a `details` entry per offending field',
        'and the trace id. A method a path does not take answers 405 `METHOD_NOT_ALLOWED` with an `Allow` header;',
        'an unknown path answers 404 `NOT_FOUND`. `HEAD` is answered wherever `GET` is, and `OPTIONS` lists the',
        'methods of a path.',
        '',
        'Every response carries `X-Trace-Id` and, while rate limiting is on, `X-RateLimit-Limit`,',
        '`X-RateLimit-Remaining` and `X-RateLimit-Reset`; a 429 also carries `Retry-After`.',
      ].join('\n'),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    servers: [{ url: '/', description: 'This Strata server' }],
    security: [{ bearerAuth: [] }],
    tags: TAGS.map(({ name, description }) => ({ name, description })),
    paths,
    components: {
      securitySchemes: {
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'The token from POST /api/v1/authentication/login.',
        },
      },
      headers: HEADERS,
      responses: Object.fromEntries(Object.entries(errorComponents).sort(([a], [b]) => a.localeCompare(b))),
      schemas: Object.fromEntries(Object.entries(schemas).sort(([a], [b]) => a.localeCompare(b))),
    },
  };
};

export const OPENAPI_ROUTE: PlainRoute = {
  method: 'GET',
  path: `${API_PREFIX}/openapi.json`,
  summary: 'Get the OpenAPI document',
  description: 'This document. Needs no token.',
  responses: {
    200: { description: 'The OpenAPI 3.1 document', content: { 'application/json': responseSchemas.openApiDocument } },
  },
};
