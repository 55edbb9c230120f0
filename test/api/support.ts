import { createHash, randomBytes } from 'node:crypto';
import type { ExecutionContext } from 'ava';
import { zipSync } from 'fflate';
import type { Client, Response } from '../support/platform.ts';

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly details: readonly { field: string; message: string }[];
    readonly traceId: string;
    readonly timestamp: string;
  };
}

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

export const isIsoTimestamp = (value: unknown): boolean =>
  typeof value === 'string' && ISO_TIMESTAMP.test(value) && !Number.isNaN(Date.parse(value));

/** A function name no other test uses, so tests sharing a platform can run at once. */
export const uniqueName = (prefix: string): string => `${prefix}-${randomBytes(4).toString('hex')}`;

/**
 * Asserts the documented error body: the status, the code, the field names in `details` (when given),
 * a 32-hex trace id and an ISO timestamp. Returns the error for further checks.
 */
export const assertError = (
  t: ExecutionContext,
  response: Response<unknown>,
  status: number,
  code: string,
  fields?: readonly string[],
): ErrorBody['error'] => {
  t.is(response.status, status, JSON.stringify(response.body));
  const error = (response.body as Partial<ErrorBody> | undefined)?.error;
  if (error === undefined) {
    t.fail(`no error body: ${JSON.stringify(response.body)}`);
    throw new Error('no error body');
  }
  t.is(error.code, code);
  t.is(typeof error.message, 'string');
  t.true(error.message.length > 0);
  t.true(Array.isArray(error.details));
  t.regex(error.traceId, /^[0-9a-f]{32}$/);
  t.true(isIsoTimestamp(error.timestamp), error.timestamp);
  t.is(response.headers.get('content-type')?.split(';')[0], 'application/json');
  if (fields !== undefined) {
    for (const field of fields) {
      t.true(
        error.details.some((detail) => detail.field === field),
        `expected a detail for '${field}', got ${JSON.stringify(error.details)}`,
      );
    }
  }
  return error;
};

export const NODE_FUNCTION = { runtime: 'Node24', handler: 'index.handler' } as const;

/** Creates a Node24 function and fails the test unless the API answered 201. */
export const createFunction = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  fields: Record<string, unknown> = {},
): Promise<Record<string, unknown>> => {
  const response = await client.request('POST', '/api/v1/functions', { body: { name, ...NODE_FUNCTION, ...fields } });
  t.is(response.status, 201, JSON.stringify(response.body));
  return response.body;
};

/** Publishes a version from a base64 ZIP and fails the test unless the API answered 201. */
export const publishVersion = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  code: string,
  fields: Record<string, unknown> = {},
): Promise<Record<string, unknown>> => {
  const response = await client.request('POST', `/api/v1/functions/${name}/versions`, { body: { code, ...fields } });
  t.is(response.status, 201, JSON.stringify(response.body));
  return response.body;
};

/** A Node ZIP whose content differs from any other call's, so that its sha256 is unique. */
export const uniqueNodeZip = (): string =>
  Buffer.from(
    zipSync({
      'index.js': Buffer.from(
        `exports.handler = async () => ({ statusCode: 200, body: '${randomBytes(8).toString('hex')}' });\n`,
      ),
    }),
  ).toString('base64');

export const sha256OfBase64 = (base64: string): string =>
  createHash('sha256').update(Buffer.from(base64, 'base64')).digest('hex');

export const RATE_LIMIT_HEADERS = ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'] as const;

export const assertRateLimitHeaders = (t: ExecutionContext, response: Response<unknown>): void => {
  for (const header of RATE_LIMIT_HEADERS) {
    t.regex(response.headers.get(header) ?? '', /^\d+$/, `${header} on a ${response.status}`);
  }
};
