/**
 * JSON Schemas of request bodies, queries and path parameters: what ajv validates, and what
 * api/openapi.ts documents. The domain's rules (names, limits, runtimes) are stated here too, each with
 * the message a client gets when it breaks one (`x-message`, read by validate.ts); the deciders check
 * them again.
 */
import {
  ALIAS_NAME_PATTERN,
  ENVIRONMENT_KEY_PATTERN,
  FUNCTION_NAME_PATTERN,
  LIMITS,
  TAG_PATTERN,
} from '../domain/function/validation.ts';
import { RUNTIME_NAMES, RUNTIMES } from '../domain/runtimes.ts';
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, USERNAME_PATTERN } from '../domain/user/decider.ts';

/** The read stores page with safe integers: a larger offset is a 400, not a store failure. */
const MAX_OFFSET = Number.MAX_SAFE_INTEGER;

/** A rule and the message a client sees when a value breaks it. */
const rule = <S extends object>(schema: S, message: string) => ({ ...schema, 'x-message': message }) as const;

export const ROLE_NAMES = ['Admin', 'Developer', 'Operator', 'Viewer'] as const;

export const loginBody = {
  type: 'object',
  required: ['username', 'password'],
  additionalProperties: false,
  // The first Admin's default credentials (README), so that the docs page logs in with one click.
  examples: [{ username: 'admin@example.com', password: 'Admin123!' }],
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 256 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  },
} as const;

const username = rule(
  { type: 'string', pattern: USERNAME_PATTERN.source, description: 'Case-insensitive; an email address works' },
  'Username must be 3-128 characters: letters, digits and . _ % + @ -, starting with a letter or digit',
);

const password = {
  type: 'string',
  allOf: [
    rule(
      { minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH },
      `Password must be ${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters`,
    ),
    rule(
      { pattern: '^(?=[\\s\\S]*\\p{L})(?=[\\s\\S]*\\p{Nd})' },
      'Password must contain at least one letter and one digit',
    ),
  ],
} as const;

export const createUserBody = {
  type: 'object',
  required: ['username', 'password', 'role'],
  additionalProperties: false,
  properties: { username, password, role: { enum: ROLE_NAMES } },
} as const;

export const updateUserBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { role: { enum: ROLE_NAMES }, password },
} as const;

const description = rule(
  { type: 'string', maxLength: LIMITS.descriptionLength },
  `Description must be at most ${LIMITS.descriptionLength} characters`,
);

const environment = {
  type: 'object',
  description: `Variables for the function; names and values together at most ${LIMITS.environmentBytes} bytes of UTF-8`,
  propertyNames: rule(
    { pattern: ENVIRONMENT_KEY_PATTERN.source },
    'Environment variable names must start with a letter and hold only letters, digits and _',
  ),
  additionalProperties: { type: 'string' },
} as const;

const tagValue = `^${TAG_PATTERN.source.slice(1, -1)}$`;

const tags = rule(
  {
    type: 'object',
    maxProperties: LIMITS.tagCount,
    propertyNames: rule(
      { minLength: 1, maxLength: LIMITS.tagKeyLength, pattern: tagValue.replace(':', '') },
      `Tag keys must be 1-${LIMITS.tagKeyLength} characters of letters, digits, spaces and _ . / = + - @ (no ':')`,
    ),
    additionalProperties: rule(
      { type: 'string', maxLength: LIMITS.tagValueLength, pattern: tagValue },
      `Tag values must be 0-${LIMITS.tagValueLength} characters of letters, digits, spaces and _ . : / = + - @`,
    ),
  },
  `At most ${LIMITS.tagCount} tags are allowed`,
);

const runtime = rule({ enum: RUNTIME_NAMES }, `Runtime must be one of: ${RUNTIME_NAMES.join(', ')}`);

/** A handler in some runtime's format; with the runtime in the same body, in that runtime's format. */
const handler = rule(
  { type: 'string', maxLength: 256, anyOf: RUNTIMES.map((spec) => ({ pattern: spec.handlerPattern.source })) },
  `Handler must be in a runtime's format: ${RUNTIMES.map((spec) => `${spec.name} ${spec.handlerFormat}`).join('; ')}`,
);

const handlerOfRuntime = RUNTIMES.map((spec) => ({
  if: { properties: { runtime: { const: spec.name } }, required: ['runtime'] },
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then, never awaited
  then: {
    properties: {
      handler: rule(
        { type: 'string', pattern: spec.handlerPattern.source },
        `Handler for ${spec.name} must be ${spec.handlerFormat}`,
      ),
    },
  },
}));

const configurationProperties = {
  description,
  runtime,
  handler,
  memorySize: rule(
    { type: 'integer', minimum: LIMITS.memoryMin, maximum: LIMITS.memoryMax, multipleOf: LIMITS.memoryStep },
    `MemorySize must be ${LIMITS.memoryMin}-${LIMITS.memoryMax} MB in ${LIMITS.memoryStep} MB increments`,
  ),
  timeout: rule(
    { type: 'integer', minimum: LIMITS.timeoutMin, maximum: LIMITS.timeoutMax, description: 'Seconds' },
    `Timeout must be a whole number of seconds from ${LIMITS.timeoutMin} to ${LIMITS.timeoutMax}`,
  ),
  environment,
  tags,
  concurrencyLimit: rule(
    { type: ['integer', 'null'], minimum: 1, maximum: LIMITS.concurrencyMax },
    `concurrencyLimit must be 1-${LIMITS.concurrencyMax}, or null for the platform default`,
  ),
  asyncRetries: rule(
    { type: 'integer', minimum: 0, maximum: LIMITS.asyncRetriesMax },
    `asyncRetries must be a whole number from 0 to ${LIMITS.asyncRetriesMax}`,
  ),
  maxEventAgeSeconds: rule(
    { type: 'integer', minimum: LIMITS.maxEventAgeMin, maximum: LIMITS.maxEventAgeMax },
    `maxEventAgeSeconds must be a whole number from ${LIMITS.maxEventAgeMin} to ${LIMITS.maxEventAgeMax}`,
  ),
} as const;

export const createFunctionBody = {
  type: 'object',
  required: ['name', 'runtime', 'handler'],
  additionalProperties: false,
  properties: {
    name: rule(
      { type: 'string', pattern: FUNCTION_NAME_PATTERN.source },
      `Name must be 1-${LIMITS.nameLength} characters: letters, digits, '-' and '_', starting with a letter or digit`,
    ),
    ...configurationProperties,
  },
  allOf: handlerOfRuntime,
} as const;

export const updateFunctionBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    ...configurationProperties,
    publishedVersion: {
      anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', pattern: '^v?[1-9][0-9]*$' }, { type: 'null' }],
    },
  },
  allOf: handlerOfRuntime,
} as const;

export const listFunctionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    runtime: { type: 'string' },
    tag: { type: 'string', pattern: '^[^:]+:.*$' },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0 },
  },
} as const;

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, maximum: MAX_OFFSET, default: 0 },
  },
} as const;

export const publishVersionBody = {
  type: 'object',
  required: ['code'],
  additionalProperties: false,
  properties: {
    // No length keyword: ajv would count the code points of up to 67 MB of text (~10 ms per MB); an empty
    // or broken code is refused as INVALID_CODE_PACKAGE when decoded and inspected.
    code: { type: 'string', contentEncoding: 'base64', contentMediaType: 'application/zip' },
    description,
    environment,
  },
} as const;

/** With a ZIP body, what a JSON body would carry besides `code`. */
export const publishVersionQuery = {
  type: 'object',
  properties: {
    description: { ...description, description: 'With `Content-Type: application/zip` only: the description' },
    environment: {
      ...environment,
      description: `With \`Content-Type: application/zip\` only, as \`environment[NAME]=value\`: ${environment.description.charAt(0).toLowerCase()}${environment.description.slice(1)}`,
    },
  },
} as const;

const routingConfig = {
  type: 'object',
  minProperties: 1,
  propertyNames: { pattern: '^[1-9][0-9]*$' },
  additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
} as const;

export const createAliasBody = {
  type: 'object',
  required: ['aliasName'],
  anyOf: [{ required: ['version'] }, { required: ['routingConfig'] }],
  additionalProperties: false,
  properties: {
    aliasName: rule(
      { type: 'string', pattern: ALIAS_NAME_PATTERN.source },
      'Alias names must be 1-128 letters, digits, - and _, starting with a letter or digit, and not all digits',
    ),
    version: { type: 'integer', minimum: 1 },
    routingConfig,
    description,
  },
} as const;

export const updateAliasBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    version: { type: 'integer', minimum: 1 },
    routingConfig,
    description,
  },
} as const;

export const invokeBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    payload: {},
    alias: { type: 'string', minLength: 1, maxLength: 128 },
    version: {
      anyOf: [
        { type: 'integer', minimum: 1 },
        { type: 'string', pattern: '^v?[1-9][0-9]*$' },
      ],
    },
    invocationType: { enum: ['RequestResponse', 'Event', 'DryRun'] },
  },
} as const;

export const metricsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    window: { type: 'string', default: 'PT1H', maxLength: 64 },
    version: { type: 'string', pattern: '^v?[1-9][0-9]*$' },
  },
} as const;

/**
 * Path parameters, as documented. ajv does not check them: a name that matches nothing is a 404, and
 * `{version}` is parsed by the routes (a 400 when it is not a version).
 */
export const pathParameters: Readonly<Record<string, { description: string; schema: object; example: string }>> = {
  name: { description: 'Function name', schema: { type: 'string', minLength: 1 }, example: 'hello' },
  version: {
    description: "Version number, optionally prefixed with 'v'",
    schema: { type: 'string', pattern: '^v?[1-9][0-9]{0,8}$' },
    example: 'v1',
  },
  alias: { description: 'Alias name', schema: { type: 'string', minLength: 1 }, example: 'production' },
  username: {
    description: 'Username (case-insensitive)',
    schema: { type: 'string', minLength: 1 },
    example: 'admin@example.com',
  },
  requestId: {
    description: 'Request id of an invocation',
    schema: { type: 'string', minLength: 1 },
    example: 'req-0123456789abcdef',
  },
  nodeId: { description: 'Runner node id', schema: { type: 'string', minLength: 1 }, example: 'runner-1' },
};
