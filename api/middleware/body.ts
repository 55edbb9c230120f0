import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { ApiError } from '../errors.ts';

export const DEFAULT_BODY_LIMIT = 6 * 1024 * 1024;

/**
 * Turns a JSON body into its value; throws a SyntaxError when it is not JSON. Either a function of all its
 * bytes, or one that is handed each piece as it arrives (`begin` gets the Content-Length, when given) and
 * answers the value at the `end`, so that it need not hold all of them.
 */
export type JsonParser = ParseJsonBytes | { readonly begin: (length: number | undefined) => JsonBodyReader };

export type ParseJsonBytes = (bytes: Buffer) => unknown;

export interface JsonBodyReader {
  write(chunk: Buffer): void;
  end(): unknown;
  /** Called once the response is over, however the request went (read or not, handled or refused). */
  close?(): void;
}

// UTF-8 with a leading byte order mark dropped, as raw-body's decoding did.
const utf8 = new TextDecoder();

/** JSON.parse of the UTF-8 text; a blank body reads as `{}`. */
export const parseJson: ParseJsonBytes = (bytes) => {
  const text = utf8.decode(bytes);
  return text.trim() === '' ? {} : JSON.parse(text);
};

/** The media type of the request's body, lower-cased and without parameters; '' when none is given. */
export const mediaTypeOf = (ctx: Context): string => (ctx.get('content-type').split(';')[0] ?? '').trim().toLowerCase();

const isJson = (type: string): boolean =>
  type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));

export interface JsonBodyOptions {
  /** Largest body accepted, in bytes. */
  readonly limit: number;
  readonly parse?: JsonParser;
  /** Another media type the endpoint takes, named when the body is neither JSON nor that. */
  readonly alsoAccepted?: string;
}

const hasBody = (ctx: Context): boolean => {
  const length = ctx.request.length;
  return (length !== undefined && length > 0) || ctx.get('transfer-encoding') !== '';
};

/** Reads a JSON body of at most `limit` bytes; an empty body reads as `{}`. */
export const readJsonBody = async (ctx: Context, options: JsonBodyOptions): Promise<unknown> => {
  const { limit, parse = parseJson, alsoAccepted } = options;
  const length = ctx.request.length;
  if (length !== undefined && length > limit) throw payloadTooLarge(limit);
  if (!hasBody(ctx)) return {};
  if (!isJson(mediaTypeOf(ctx))) {
    const expected = alsoAccepted === undefined ? 'application/json' : `application/json or ${alsoAccepted}`;
    throw new ApiError('UNSUPPORTED_MEDIA_TYPE', `Request bodies must be JSON (Content-Type: ${expected})`, [
      { field: 'Content-Type', message: `Expected ${expected}, got '${ctx.get('content-type') || 'nothing'}'` },
    ]);
  }
  let end: () => unknown;
  if (typeof parse === 'function') {
    let bytes: Buffer;
    try {
      bytes = await getRawBody(ctx.req, { limit, ...(length === undefined ? {} : { length }) });
    } catch (error) {
      throw readFailure(error, limit);
    }
    end = () => parse(bytes);
  } else {
    const reader = parse.begin(length);
    if (reader.close !== undefined) ctx.res.once('close', () => reader.close?.());
    await receiveBody(ctx, limit, (chunk) => reader.write(chunk));
    end = () => reader.end();
  }
  try {
    return end();
  } catch (error) {
    if (!(error instanceof SyntaxError)) throw error;
    throw new ApiError('VALIDATION_ERROR', 'Malformed JSON in request body', [
      { field: 'body', message: error.message },
    ]);
  }
};

/**
 * Reads a body of at most `limit` bytes as it arrives, handing each piece to `onChunk` on the way (which
 * may keep it, and may throw to stop); answers all of it. The failures are those of `readJsonBody`.
 */
export const readRawBody = async (ctx: Context, limit: number, onChunk: (chunk: Buffer) => void): Promise<Buffer> => {
  const length = ctx.request.length;
  if (length !== undefined && length > limit) throw payloadTooLarge(limit);
  if (!hasBody(ctx)) return Buffer.alloc(0);
  // Copied into one buffer as the pieces come, when the length is known: no joining at the end.
  const whole = length === undefined ? undefined : Buffer.allocUnsafeSlow(length);
  const chunks: Buffer[] = [];
  const size = await receiveBody(ctx, limit, (chunk, offset) => {
    onChunk(chunk);
    if (whole === undefined) chunks.push(chunk);
    else whole.set(chunk, offset);
  });
  return whole ?? Buffer.concat(chunks, size);
};

/**
 * Hands each piece of a body of at most `limit` bytes to `onChunk` as it arrives, with its offset; answers
 * the size. Like raw-body: on a failure the rest of the body is left unread (Node drains it after the answer).
 */
const receiveBody = (
  ctx: Context,
  limit: number,
  onChunk: (chunk: Buffer, offset: number) => void,
): Promise<number> => {
  const length = ctx.request.length;
  const request = ctx.req;
  return new Promise<number>((resolve, reject) => {
    let size = 0;
    let settled = false;
    const settle = (failure: unknown) => {
      if (settled) return;
      settled = true;
      request.off('data', onData);
      request.off('end', onEnd);
      request.off('error', onError);
      request.off('close', onClose);
      if (failure === undefined) resolve(size);
      else {
        request.pause();
        reject(failure);
      }
    };
    const onData = (chunk: Buffer) => {
      const offset = size;
      size += chunk.byteLength;
      if (size > limit || (length !== undefined && size > length)) {
        return settle(size > limit ? payloadTooLarge(limit) : sizeMismatch(size, length, limit));
      }
      try {
        onChunk(chunk, offset);
      } catch (error) {
        return settle(error);
      }
    };
    const onEnd = () => settle(length === undefined || size === length ? undefined : sizeMismatch(size, length, limit));
    const onError = (error: Error) => settle(readFailure(error, limit));
    const onClose = () => settle(readFailure(new Error('request aborted'), limit));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', onError);
    request.on('close', onClose);
  });
};

const sizeMismatch = (size: number, length: number | undefined, limit: number): ApiError =>
  readFailure(new Error(`request size ${size} did not match content length ${length}`), limit);

const readFailure = (error: unknown, limit: number): ApiError => {
  if ((error as { type?: string }).type === 'entity.too.large') return payloadTooLarge(limit);
  return new ApiError('VALIDATION_ERROR', 'The request body could not be read', [
    { field: 'body', message: (error as Error).message },
  ]);
};

export const payloadTooLarge = (limit: number) =>
  new ApiError('PAYLOAD_TOO_LARGE', `Request payload exceeds ${Math.round(limit / 1024 / 1024)} MB`);
