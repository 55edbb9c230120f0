import type { Document } from '../../../domain/ports.ts';

// MongoDB-wire servers refuse (FerretDB 1.x, MongoDB before 5.0) or cannot query (MongoDB 5.0+) keys that
// contain '.' or start with '$', and BSON keys cannot hold NUL. Read-model documents carry user-chosen keys
// (tags, environment variables, routing weights), so such characters are percent-escaped, '%' included,
// which makes the escaping reversible. Field paths in queries are `[A-Za-z0-9_-]` segments: never escaped.
//
// FerretDB 1.x also refuses an array directly inside an array. Such an array is wrapped in an object whose
// only key is `%a`: no escaped key can be `%a`, so the wrapper is never mistaken for a document's object.
const needsEscape = /[%.\0]|^\$/;
const escapable = /[%.\0]|^\$/g;
const escaped = /%(25|2E|00|24)/g;
const arrayWrapper = '%a';

const escapeKey = (key: string): string =>
  key.replace(escapable, (character) => `%${character.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);

const unescapeKey = (key: string): string =>
  key.replace(escaped, (_match, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

// JSON.parse revives bottom-up: children are already encoded when their parent is.
const encode = (_key: string, value: unknown): unknown => {
  if (Array.isArray(value)) {
    return value.some(Array.isArray)
      ? value.map((element: unknown) => (Array.isArray(element) ? { [arrayWrapper]: element } : element))
      : value;
  }
  if (isObject(value) && Object.keys(value).some((key) => needsEscape.test(key))) {
    // Object.fromEntries defines own properties, so even a key named "__proto__" stays a plain key.
    return Object.fromEntries(Object.entries(value).map(([key, child]) => [escapeKey(key), child]));
  }
  return value;
};

/**
 * The document as BSON will store it: first through JSON, exactly as the SQLite store keeps it (undefined
 * fields dropped, dates as ISO strings, non-finite numbers as null), then encoded as described above.
 */
export const toStored = (document: Document): Document => JSON.parse(JSON.stringify(document), encode) as Document;

const decode = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(decode);
  if (!isObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === arrayWrapper) return decode(value[arrayWrapper]);
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) => [key.includes('%') ? unescapeKey(key) : key, decode(child)]),
  );
};

/** The document as it was put. */
export const fromStored = (stored: Document): Document => decode(stored) as Document;
