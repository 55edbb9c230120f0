import type { Document, ReadStore } from '../../domain/ports.ts';
import { COLLECTIONS, type FunctionDocument } from '../../projections/documents.ts';
import { stripGuard } from '../../projections/readModels.ts';
import { ApiError } from '../errors.ts';

/** The function's document, or NOT_FOUND when it never existed or was deleted. */
export const activeFunction = async (readStore: ReadStore, name: string): Promise<FunctionDocument> => {
  const doc = await readStore.get(COLLECTIONS.functions, name);
  if (doc === null || doc.status !== 'Active') throw new ApiError('NOT_FOUND', `Function '${name}' not found`);
  return stripGuard(doc) as unknown as FunctionDocument;
};

/** `6` or `v6` → 6; anything else is a 400 on the `version` path parameter. */
export const parseVersion = (text: string | undefined): number => {
  const match = /^v?([1-9][0-9]{0,8})$/.exec(text ?? '');
  if (match?.[1] === undefined) {
    throw new ApiError('VALIDATION_ERROR', 'Invalid version', [
      { field: 'version', message: "A version is a positive number, optionally prefixed with 'v' (e.g. 6 or v6)" },
    ]);
  }
  return Number(match[1]);
};

export const documentOr404 = async <T>(
  readStore: ReadStore,
  collection: string,
  id: string,
  what: string,
): Promise<T> => {
  const doc = await readStore.get(collection, id);
  if (doc === null) throw new ApiError('NOT_FOUND', `${what} not found`);
  return stripGuard(doc) as unknown as T;
};

export const param = (params: Readonly<Record<string, string>>, name: string): string => params[name] ?? '';

export const pick = <T extends object, K extends keyof T>(value: T, keys: readonly K[]): Pick<T, K> =>
  Object.fromEntries(keys.map((key) => [key, value[key]])) as Pick<T, K>;

export const documents = <T>(items: readonly Document[]): T[] => items.map((item) => stripGuard(item) as unknown as T);
