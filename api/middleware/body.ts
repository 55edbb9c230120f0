import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { ApiError } from '../errors.ts';

export const DEFAULT_BODY_LIMIT = 6 * 1024 * 1024;

/** Turns the bytes of a JSON body into its value; throws a SyntaxError when they are not JSON. */
export type JsonParser = (bytes: Buffer) => unknown;

// UTF-8 with a leading byte order mark dropped, as raw-body's decoding did.
const utf8 = new TextDecoder();

/** JSON.parse of the UTF-8 text; a blank body reads as `{}`. */
export const parseJson: JsonParser = (bytes) => {
  const text = utf8.decode(bytes);
  return text.trim() === '' ? {} : JSON.parse(text);
};

const isJson = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return false;
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
};

/** Reads a JSON body of at most `limit` bytes; an empty body reads as `{}`. */
export const readJsonBody = async (ctx: Context, limit: number, parse: JsonParser = parseJson): Promise<unknown> => {
  const length = ctx.request.length;
  if (length !== undefined && length > limit) throw tooLarge(limit);
  const hasBody = (length !== undefined && length > 0) || ctx.get('transfer-encoding') !== '';
  if (!hasBody) return {};
  if (!isJson(ctx.get('content-type') || undefined)) {
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', 'Request bodies must be JSON (Content-Type: application/json)', [
      { field: 'Content-Type', message: `Expected application/json, got '${ctx.get('content-type') || 'nothing'}'` },
    ]);
  }
  let bytes: Buffer;
  try {
    bytes = await getRawBody(ctx.req, { limit, ...(length === undefined ? {} : { length }) });
  } catch (error) {
    if ((error as { type?: string }).type === 'entity.too.large') throw tooLarge(limit);
    throw new ApiError('VALIDATION_ERROR', 'The request body could not be read', [
      { field: 'body', message: (error as Error).message },
    ]);
  }
  try {
    return parse(bytes);
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new ApiError('VALIDATION_ERROR', 'Malformed JSON in request body', [
      { field: 'body', message: error.message },
    ]);
  }
};

const tooLarge = (limit: number) =>
  new ApiError('PAYLOAD_TOO_LARGE', `Request payload exceeds ${Math.round(limit / 1024 / 1024)} MB`);
