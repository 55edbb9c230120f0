import type { CodeUpload } from '../../domain/ports.ts';
import { ApiError } from '../errors.ts';
import { type JsonBodyReader, type JsonParser, type ParseJsonBytes, parseJson } from '../middleware/body.ts';

export const MAX_CODE_BYTES = 50 * 1024 * 1024;
/** The JSON body of an upload: the base64 of 50 MB plus room for the other fields. */
export const VERSION_BODY_LIMIT = Math.ceil(MAX_CODE_BYTES / 3) * 4 + 256 * 1024;

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

const notBase64 = () =>
  new ApiError('INVALID_CODE_PACKAGE', 'Function code ZIP is invalid', [
    { field: 'code', message: 'code must be the base64 encoding of a ZIP file' },
  ]);

const paddingOf = (code: string): number => (code.endsWith('==') ? 2 : code.endsWith('=') ? 1 : 0);

/**
 * Strict base64 (the alphabet of RFC 4648 §4, right padding, no whitespace) decoded in one pass of native
 * code, or null. Buffer decodes `-` and `_` too and skips every other character, so those two are looked
 * for and a skipped character shows as a short result; `=` may only end the text.
 */
const decodeStrict = (text: string): Buffer | null => {
  const { length } = text;
  if (length % 4 !== 0) return null;
  const firstPad = text.indexOf('=');
  const padding = firstPad === -1 ? 0 : length - firstPad;
  if (padding > 2 || (padding === 2 && text.charCodeAt(length - 1) !== 0x3d)) return null;
  if (text.includes('-') || text.includes('_')) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.byteLength === (length / 4) * 3 - padding ? bytes : null;
};

/** Strict base64, refusing what decodes past 50 MB before decoding it. */
export const decodeCode = (code: string): Uint8Array => {
  if (code.length % 4 !== 0) throw notBase64();
  if ((code.length / 4) * 3 - paddingOf(code) > MAX_CODE_BYTES) {
    if (!BASE64.test(code)) throw notBase64();
    throw new ApiError('PAYLOAD_TOO_LARGE', 'Function code exceeds 50 MB', [
      { field: 'code', message: 'The decoded ZIP must be at most 50 MB' },
    ]);
  }
  const bytes = decodeStrict(code);
  if (bytes === null) throw notBase64();
  return bytes;
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const CODE_KEY = Buffer.from('code');

const isSpace = (byte: number | undefined) => byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;

const skipSpace = (bytes: Buffer, at: number): number => {
  let index = at;
  while (isSpace(bytes[index])) index += 1;
  return index;
};

/** Just past the string whose opening quote is at `at`, or -1. A quote after an odd run of backslashes is escaped. */
const skipString = (bytes: Buffer, at: number): number => {
  for (let from = at + 1; ; ) {
    const quote = bytes.indexOf(QUOTE, from);
    if (quote === -1) return -1;
    let backslashes = 0;
    while (bytes[quote - 1 - backslashes] === BACKSLASH) backslashes += 1;
    if (backslashes % 2 === 0) return quote + 1;
    from = quote + 1;
  }
};

/** Just past the value starting at `at`, or -1; loose, since JSON.parse judges the whole text afterwards. */
const skipValue = (bytes: Buffer, at: number): number => {
  let depth = 0;
  for (let index = at; index < bytes.length; ) {
    const byte = bytes[index];
    if (byte === QUOTE) {
      index = skipString(bytes, index);
      if (index === -1 || depth === 0) return index;
      continue;
    }
    if (byte === OPEN_BRACE || byte === OPEN_BRACKET) depth += 1;
    else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      if (depth === 0) return index;
      depth -= 1;
      if (depth === 0) return index + 1;
    } else if (depth === 0 && (byte === COMMA || isSpace(byte))) return index;
    index += 1;
  }
  return -1;
};

/**
 * Where the text of the top-level `code` string lies, when the body is an object with exactly one member of
 * that name (spelt without escapes) whose value is a string; null otherwise.
 */
const findCode = (bytes: Buffer): { readonly start: number; readonly end: number } | null => {
  let index = skipSpace(bytes, 0);
  if (bytes[index] !== OPEN_BRACE) return null;
  let found: { start: number; end: number } | null = null;
  for (index = skipSpace(bytes, index + 1); bytes[index] !== CLOSE_BRACE; ) {
    if (bytes[index] !== QUOTE) return null;
    const keyEnd = skipString(bytes, index);
    if (keyEnd === -1) return null;
    const key = bytes.subarray(index + 1, keyEnd - 1);
    if (key.includes(BACKSLASH)) return null;
    index = skipSpace(bytes, keyEnd);
    if (bytes[index] !== COLON) return null;
    const valueStart = skipSpace(bytes, index + 1);
    const valueEnd = skipValue(bytes, valueStart);
    if (valueEnd === -1) return null;
    if (key.equals(CODE_KEY)) {
      if (found !== null || bytes[valueStart] !== QUOTE) return null;
      found = { start: valueStart + 1, end: valueEnd - 1 };
    }
    index = skipSpace(bytes, valueEnd);
    if (bytes[index] === COMMA) index = skipSpace(bytes, index + 1);
    else if (bytes[index] !== CLOSE_BRACE) return null;
  }
  return found;
};

const decodedCode = new WeakMap<object, Uint8Array>();

/**
 * Parses a publish body as JSON.parse would, without handing the megabytes of `code` to it: when `code` is
 * strict base64 (which needs no escapes), the rest of the body is parsed with an empty `code` in its place,
 * and the text decoded once here is kept for `codeBytes`. Anything else is parsed whole, errors included.
 */
export const parseVersionBody: ParseJsonBytes = (bytes) => {
  const span = findCode(bytes);
  if (span === null || ((span.end - span.start) / 4) * 3 > MAX_CODE_BYTES) return parseJson(bytes);
  const code = bytes.toString('latin1', span.start, span.end);
  const decoded = decodeStrict(code);
  if (decoded === null) return parseJson(bytes);
  let rest: unknown;
  try {
    rest = parseJson(Buffer.concat([bytes.subarray(0, span.start), bytes.subarray(span.end)]));
  } catch {
    return parseJson(bytes);
  }
  const body = rest as { code: string };
  body.code = code;
  decodedCode.set(body, decoded);
  return body;
};

const EQUALS = 0x3d;
const DASH = 0x2d;
const UNDERSCORE = 0x5f;
const EMPTY: Buffer = Buffer.alloc(0);
/** How much of the start of a body is searched for the `code` member before the body is left to be read whole. */
const PREFIX_LIMIT = 64 * 1024;

/** Where the text of the top-level `code` string starts (just past its quote), or null when not (yet) found. */
const findCodeStart = (bytes: Buffer): number | null => {
  let index = skipSpace(bytes, 0);
  if (bytes[index] !== OPEN_BRACE) return null;
  for (index = skipSpace(bytes, index + 1); bytes[index] !== CLOSE_BRACE; ) {
    if (bytes[index] !== QUOTE) return null;
    const keyEnd = skipString(bytes, index);
    if (keyEnd === -1) return null;
    const key = bytes.subarray(index + 1, keyEnd - 1);
    index = skipSpace(bytes, keyEnd);
    if (bytes[index] !== COLON) return null;
    const valueStart = skipSpace(bytes, index + 1);
    if (key.equals(CODE_KEY)) return bytes[valueStart] === QUOTE ? valueStart + 1 : null;
    const valueEnd = skipValue(bytes, valueStart);
    if (valueEnd === -1) return null;
    index = skipSpace(bytes, valueEnd);
    if (bytes[index] === COMMA) index = skipSpace(bytes, index + 1);
    else if (bytes[index] !== CLOSE_BRACE) return null;
  }
  return null;
};

/**
 * Reads a publish body as it arrives, decoding the base64 of `code` piece by piece into one buffer, so that
 * neither the body nor the text of `code` is ever held whole: what comes before and after `code` is parsed
 * by JSON.parse, with `code` empty (its bytes are for `codeBytes`). With `startUpload`, the decoded bytes
 * also go to an upload as they come (`codeUpload`), which is discarded once the response is over unless it
 * was committed. A body this cannot follow (`code` not a plain member of the top-level object, not strict
 * base64, given twice…) is parsed whole by `parseVersionBody` once all of it has arrived: the value and the
 * errors are always JSON.parse's.
 */
export const versionBodyReader = (startUpload?: () => CodeUpload): JsonParser => ({
  begin(length): JsonBodyReader {
    const chunks: Buffer[] = [];
    let phase: 'prefix' | 'code' | 'rest' | 'whole' = 'prefix';
    /** The body up to the text of `code`, its opening quote included. */
    let prefix: Buffer = EMPTY;
    /** The body from the closing quote of `code`. */
    const rest: Buffer[] = [];
    let upload: CodeUpload | undefined;
    let decoded: Buffer = Buffer.allocUnsafeSlow(length === undefined ? 64 * 1024 : Math.floor(length / 4) * 3);
    let size = 0;
    /** Text of `code` not decoded yet, fewer than 4 characters. */
    let carry: Buffer = EMPTY;

    /** Decodes text of a length divisible by 4 that may end in padding only when it ends the code; false when not strict base64. */
    const decodeQuads = (text: Buffer, last: boolean): boolean => {
      if (text.byteLength === 0) return true;
      if (text.includes(DASH) || text.includes(UNDERSCORE)) return false;
      const firstPad = text.indexOf(EQUALS);
      const padding = firstPad === -1 ? 0 : text.byteLength - firstPad;
      if (padding > 0 && (!last || padding > 2 || text[text.byteLength - 1] !== EQUALS)) return false;
      const expected = (text.byteLength / 4) * 3 - padding;
      if (size + expected > MAX_CODE_BYTES) return false;
      if (size + expected > decoded.byteLength) {
        const larger = Buffer.allocUnsafeSlow(Math.max(decoded.byteLength * 2, size + expected));
        decoded.copy(larger, 0, 0, size);
        decoded = larger;
      }
      // Buffer skips characters outside the alphabet: one shows as a short result.
      if (decoded.write(text.toString('latin1'), size, 'base64') !== expected) return false;
      upload?.write(decoded.subarray(size, size + expected));
      size += expected;
      return true;
    };

    const decodeText = (text: Buffer, last: boolean): boolean => {
      let whole = text;
      if (carry.byteLength > 0) {
        const fill = Math.min(4 - carry.byteLength, whole.byteLength);
        const quad = Buffer.concat([carry, whole.subarray(0, fill)]);
        whole = whole.subarray(fill);
        carry = EMPTY;
        if (quad.byteLength < 4) {
          carry = quad;
          return !last;
        }
        if (!decodeQuads(quad, last && whole.byteLength === 0)) return false;
      }
      const end = whole.byteLength - (whole.byteLength % 4);
      if (last && end !== whole.byteLength) return false;
      if (!decodeQuads(whole.subarray(0, end), last)) return false;
      carry = whole.subarray(end);
      return true;
    };

    const discard = () => {
      upload?.discard().catch(() => {});
      upload = undefined;
    };

    const readCode = (piece: Buffer) => {
      const quote = piece.indexOf(QUOTE);
      if (!decodeText(quote === -1 ? piece : piece.subarray(0, quote), quote !== -1)) {
        phase = 'whole';
        discard();
      } else if (quote !== -1) {
        phase = 'rest';
        rest.push(piece.subarray(quote));
      }
    };

    const readPrefix = (chunk: Buffer) => {
      const seen = prefix.byteLength === 0 ? chunk : Buffer.concat([prefix, chunk]);
      const start = findCodeStart(seen);
      if (start !== null) {
        prefix = seen.subarray(0, start);
        phase = 'code';
        upload = startUpload?.();
        readCode(seen.subarray(start));
      } else if (seen.byteLength > PREFIX_LIMIT) {
        phase = 'whole';
      } else {
        prefix = Buffer.from(seen);
      }
    };

    const parseWhole = () => {
      discard();
      return parseVersionBody(Buffer.concat(chunks));
    };

    return {
      write(chunk) {
        chunks.push(chunk);
        if (phase === 'prefix') readPrefix(chunk);
        else if (phase === 'code') readCode(chunk);
        else if (phase === 'rest') rest.push(chunk);
      },
      end() {
        if (phase !== 'rest') return parseWhole();
        const outside = Buffer.concat([prefix, ...rest]);
        const span = findCode(outside);
        if (span === null || span.start !== prefix.byteLength || span.end !== span.start) return parseWhole();
        let body: unknown;
        try {
          body = parseJson(outside);
        } catch {
          return parseWhole();
        }
        decodedCode.set(body as object, decoded.subarray(0, size));
        if (upload !== undefined) uploads.set(body as object, upload);
        return body;
      },
      close: discard,
    };
  },
});

const uploads = new WeakMap<object, CodeUpload>();

/** The upload the decoded code of a publish body went to while it arrived, if it did. */
export const codeUpload = (body: object): CodeUpload | undefined => uploads.get(body);

/** The ZIP of a validated publish body: decoded while parsing, or now. */
export const codeBytes = (body: { readonly code: string }): Uint8Array =>
  decodedCode.get(body) ?? decodeCode(body.code);
