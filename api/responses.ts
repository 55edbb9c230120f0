/**
 * JSON Schemas of response bodies: what the OpenAPI document promises and what the tests validate
 * responses against. Objects are closed (`additionalProperties: false`) so that a field added to a
 * route without being documented here fails the conformance test.
 */
import { LIMITS } from '../domain/function/validation.ts';
import { RUNTIME_NAMES } from '../domain/runtimes.ts';
import { STATUS_OF } from './errors.ts';
import { ROLE_NAMES } from './schemas.ts';

const timestamp = { type: 'string', format: 'date-time' } as const;
const nullableTimestamp = { type: ['string', 'null'], format: 'date-time' } as const;
const count = { type: 'integer', minimum: 0 } as const;
const stringMap = { type: 'object', additionalProperties: { type: 'string' } } as const;
const versionLabel = { type: 'string', pattern: '^v[1-9][0-9]*$' } as const;
const nullableVersionLabel = { type: ['string', 'null'], pattern: '^v[1-9][0-9]*$' } as const;
const runtime = { type: 'string', enum: RUNTIME_NAMES } as const;
const page = { total: count, limit: { type: 'integer', minimum: 1 }, offset: count } as const;

/** A closed object whose every property is present. */
const record = <P extends Record<string, object>>(properties: P, description?: string) =>
  ({
    type: 'object',
    ...(description === undefined ? {} : { description }),
    required: Object.keys(properties),
    additionalProperties: false,
    properties,
  }) as const;

export const errorBody = record(
  {
    error: record({
      code: { type: 'string', enum: Object.keys(STATUS_OF) },
      message: { type: 'string' },
      details: {
        type: 'array',
        items: record({ field: { type: 'string' }, message: { type: 'string' } }),
      },
      traceId: { type: 'string', pattern: '^[0-9a-f]{32}$' },
      timestamp,
    }),
  },
  'Every error: a machine code, a message, one entry per offending field, and the trace id of the request.',
);

export const health = record({
  status: { type: 'string', enum: ['ok', 'degraded'] },
  checks: { ...stringMap, description: "Per backing store: 'ok', or 'unavailable: <reason>'." },
  startedAt: timestamp,
});

export const openApiDocument = {
  type: 'object',
  description: 'This document (OpenAPI 3.1).',
  required: ['openapi', 'info', 'paths'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.' },
    info: { type: 'object' },
    paths: { type: 'object' },
  },
} as const;

export const loginResponse = record({
  token: { type: 'string', description: 'HS256 JWT: send it as `Authorization: Bearer <token>`.' },
  expiresAt: timestamp,
  user: record({ username: { type: 'string' }, role: { enum: ROLE_NAMES } }),
});

export const user = record({
  userId: { type: 'string' },
  username: { type: 'string' },
  role: { enum: ROLE_NAMES },
  status: { enum: ['Active', 'Disabled'] },
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const userList = record({ users: { type: 'array', items: user }, ...page });

const configuration = {
  description: { type: 'string' },
  runtime,
  handler: { type: 'string' },
  memorySize: { type: 'integer', minimum: LIMITS.memoryMin, maximum: LIMITS.memoryMax, multipleOf: LIMITS.memoryStep },
  timeout: { type: 'integer', minimum: LIMITS.timeoutMin, maximum: LIMITS.timeoutMax },
  concurrencyLimit: { type: ['integer', 'null'], minimum: 1, maximum: LIMITS.concurrencyMax },
  asyncRetries: { type: 'integer', minimum: 0, maximum: LIMITS.asyncRetriesMax },
  maxEventAgeSeconds: { type: 'integer', minimum: LIMITS.maxEventAgeMin, maximum: LIMITS.maxEventAgeMax },
} as const;

const invocationTotals = {
  totalInvocations: count,
  lastInvokedAt: nullableTimestamp,
} as const;

export const functionCreated = record({
  name: { type: 'string' },
  ...configuration,
  tags: stringMap,
  publishedVersion: nullableVersionLabel,
  ownerId: { type: 'string' },
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const functionSummary = record({
  name: { type: 'string' },
  description: { type: 'string' },
  runtime,
  memorySize: configuration.memorySize,
  publishedVersion: nullableVersionLabel,
  tags: stringMap,
  ...invocationTotals,
  createdAt: timestamp,
});

export const functionList = record({ functions: { type: 'array', items: functionSummary }, ...page });

export const functionDetail = record({
  name: { type: 'string' },
  ...configuration,
  environment: stringMap,
  tags: stringMap,
  publishedVersion: nullableVersionLabel,
  latestVersion: nullableVersionLabel,
  ownerId: { type: 'string' },
  ...invocationTotals,
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const functionUpdated = record({
  name: { type: 'string' },
  ...configuration,
  environment: stringMap,
  tags: stringMap,
  publishedVersion: nullableVersionLabel,
  updatedAt: timestamp,
});

const versionIdentity = {
  version: { type: 'integer', minimum: 1 },
  versionString: versionLabel,
  description: { type: 'string' },
  codeSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
} as const;

const versionCode = {
  codeSize: count,
  codeLocation: { type: 'string' },
  runtime,
  handler: { type: 'string' },
} as const;

export const versionPublished = record({
  functionName: { type: 'string' },
  ...versionIdentity,
  ...versionCode,
  createdAt: timestamp,
  createdBy: { type: 'string' },
});

export const versionSummary = record({ ...versionIdentity, invocationCount: count, createdAt: timestamp });

export const versionList = record({
  functionName: { type: 'string' },
  versions: { type: 'array', items: versionSummary },
  ...page,
});

export const versionDetail = record({
  functionName: { type: 'string' },
  ...versionIdentity,
  ...versionCode,
  memorySize: configuration.memorySize,
  timeout: configuration.timeout,
  environment: stringMap,
  createdAt: timestamp,
  createdBy: { type: 'string' },
  status: { const: 'Active' },
  invocationCount: count,
});

export const alias = record({
  functionName: { type: 'string' },
  aliasName: { type: 'string' },
  version: { type: 'integer', minimum: 1 },
  routingConfig: {
    type: 'object',
    description: 'Share of the traffic (percent) per version number.',
    propertyNames: { pattern: '^[1-9][0-9]*$' },
    additionalProperties: { type: 'integer', minimum: 0, maximum: 100 },
  },
  description: { type: 'string' },
  createdAt: timestamp,
  updatedAt: timestamp,
});

export const aliasList = record({
  functionName: { type: 'string' },
  aliases: { type: 'array', items: alias },
  ...page,
});

const outcome = {
  enum: ['success', 'functionError', 'timeout', 'outOfMemory', 'throttled', 'platformError'],
} as const;
const invocationStatus = {
  enum: ['Queued', 'Running', 'Succeeded', 'Failed', 'TimedOut', 'Throttled', 'DeadLettered'],
} as const;
const functionError = {
  type: 'object',
  required: ['type', 'message'],
  additionalProperties: false,
  properties: { type: { type: 'string' }, message: { type: 'string' }, stack: { type: 'string' } },
} as const;

export const invokeResult = {
  type: 'object',
  description:
    "The function's answer and the measurements of this call. `outcome` and `error` are present only when the function failed (also flagged by the X-Strata-Function-Error header).",
  required: [
    'statusCode',
    'body',
    'executionTime',
    'billedDuration',
    'memoryUsed',
    'wasColdStart',
    'coldStartDuration',
    'requestId',
    'version',
    'logStreamName',
  ],
  additionalProperties: false,
  properties: {
    statusCode: { type: 'integer' },
    body: { type: 'string' },
    outcome,
    error: functionError,
    executionTime: { type: 'number', minimum: 0, description: 'Milliseconds.' },
    billedDuration: { type: 'integer', minimum: 100, description: 'Milliseconds, rounded up to 100.' },
    memoryUsed: { type: 'number', minimum: 0, description: 'MB.' },
    wasColdStart: { type: 'boolean' },
    coldStartDuration: { type: ['number', 'null'], minimum: 0 },
    requestId: { type: 'string' },
    version: nullableVersionLabel,
    logStreamName: { type: ['string', 'null'] },
  },
} as const;

export const invocationQueued = record({
  requestId: { type: 'string' },
  status: { const: 'Queued' },
});

export const invocationRecord = record({
  requestId: { type: 'string' },
  functionName: { type: 'string' },
  version: nullableVersionLabel,
  invocationType: { enum: ['RequestResponse', 'Event'] },
  status: invocationStatus,
  outcome: { anyOf: [outcome, { type: 'null' }] },
  fault: { enum: ['none', 'function', 'caller', 'platform', null] },
  statusCode: { type: ['integer', 'null'] },
  body: { type: ['string', 'null'] },
  error: { anyOf: [functionError, { type: 'null' }] },
  executionTime: { type: ['number', 'null'], minimum: 0 },
  billedDuration: { type: ['integer', 'null'], minimum: 100 },
  memoryUsed: { type: ['number', 'null'], minimum: 0 },
  wasColdStart: { type: ['boolean', 'null'] },
  coldStartDuration: { type: ['number', 'null'], minimum: 0 },
  attempts: count,
  runnerId: { type: ['string', 'null'] },
  logStreamName: { type: ['string', 'null'] },
  enqueuedAt: timestamp,
  startedAt: nullableTimestamp,
  completedAt: nullableTimestamp,
});

export const invocationLogs = record({
  requestId: { type: 'string' },
  logs: {
    type: 'array',
    items: record({ timestamp, level: { type: 'string' }, message: { type: 'string' } }),
  },
  truncated: { type: 'boolean' },
  functionName: { type: 'string' },
  version: nullableVersionLabel,
  status: invocationStatus,
});

const milliseconds = { type: 'number', minimum: 0 } as const;

export const functionMetrics = {
  type: 'object',
  required: ['functionName', 'window', 'metrics', 'timestamp'],
  additionalProperties: false,
  properties: {
    functionName: { type: 'string' },
    window: { type: 'string', description: 'The ISO-8601 duration asked for.' },
    version: { ...versionLabel, description: 'Present when the metrics are of one version.' },
    metrics: record({
      invocations: count,
      errors: count,
      errorRate: { type: 'number', minimum: 0, maximum: 100, description: 'Percent of invocations that failed.' },
      coldStarts: count,
      avgDuration: milliseconds,
      p50Duration: milliseconds,
      p95Duration: milliseconds,
      p99Duration: milliseconds,
      avgMemoryUsed: { type: 'number', minimum: 0 },
      maxMemoryUsed: { type: 'number', minimum: 0 },
      throttles: count,
    }),
    timestamp,
  },
} as const;

const runnerHealth = {
  isHealthy: { type: 'boolean' },
  cpuUsage: { type: 'number', minimum: 0 },
  memoryUsage: { type: 'number', minimum: 0 },
  activeContainers: count,
} as const;

const runnerIdentity = {
  nodeId: { type: 'string' },
  hostname: { type: 'string' },
  port: { type: ['integer', 'null'] },
} as const;

export const runnerSummary = record({
  ...runnerIdentity,
  health: record(runnerHealth),
  startedAt: timestamp,
  lastHeartbeat: timestamp,
});

export const runnerList = record({ runners: { type: 'array', items: runnerSummary }, total: count });

export const runnerDetail = record({
  ...runnerIdentity,
  health: record({ ...runnerHealth, queuedInvocations: count }),
  resources: record({ totalCpuCores: count, totalMemoryMB: count, maxContainers: count }),
  metrics: record({
    totalInvocations: count,
    successfulInvocations: count,
    failedInvocations: count,
    coldStarts: count,
    avgInvocationDuration: milliseconds,
    avgColdStartDuration: milliseconds,
  }),
  activeContainers: { ...stringMap, description: 'Container id per `function:version` it serves.' },
  startedAt: timestamp,
  lastHeartbeat: timestamp,
});
