/** JSON Schemas of request bodies and queries: what ajv validates, and (later) what OpenAPI documents. */

const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;

export const ROLE_NAMES = ['Admin', 'Developer', 'Operator', 'Viewer'] as const;

export const loginBody = {
  type: 'object',
  required: ['username', 'password'],
  additionalProperties: false,
  properties: {
    username: { type: 'string', minLength: 1, maxLength: 256 },
    password: { type: 'string', minLength: 1, maxLength: 1024 },
  },
} as const;

export const createUserBody = {
  type: 'object',
  required: ['username', 'password', 'role'],
  additionalProperties: false,
  properties: {
    username: { type: 'string', maxLength: 256 },
    password: { type: 'string', maxLength: 1024 },
    role: { enum: ROLE_NAMES },
  },
} as const;

export const updateUserBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    role: { enum: ROLE_NAMES },
    password: { type: 'string', maxLength: 1024 },
  },
} as const;

const configurationProperties = {
  description: { type: 'string' },
  runtime: { type: 'string' },
  handler: { type: 'string', maxLength: 256 },
  memorySize: { type: 'integer' },
  timeout: { type: 'integer' },
  environment: stringMap,
  tags: stringMap,
  concurrencyLimit: { type: ['integer', 'null'] },
  asyncRetries: { type: 'integer' },
  maxEventAgeSeconds: { type: 'integer' },
} as const;

export const createFunctionBody = {
  type: 'object',
  required: ['name', 'runtime', 'handler'],
  additionalProperties: false,
  properties: { name: { type: 'string', maxLength: 256 }, ...configurationProperties },
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
} as const;

export const listFunctionsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    runtime: { type: 'string' },
    tag: { type: 'string', pattern: '^[^:]+:.*$' },
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0 },
  },
} as const;

export const pageQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 100, default: 20 },
    offset: { type: 'integer', minimum: 0, default: 0 },
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
    description: { type: 'string' },
    environment: stringMap,
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
    aliasName: { type: 'string', maxLength: 256 },
    version: { type: 'integer', minimum: 1 },
    routingConfig,
    description: { type: 'string' },
  },
} as const;

export const updateAliasBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    version: { type: 'integer', minimum: 1 },
    routingConfig,
    description: { type: 'string' },
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
