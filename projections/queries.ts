import { chooseVersion } from '../domain/function/routing.ts';
import type { ReadStore } from '../domain/ports.ts';
import { type DomainError, domainError, notFound } from '../domain/shared/errors.ts';
import {
  type AliasDocument,
  aliasId,
  COLLECTIONS,
  type FunctionDocument,
  type VersionDocument,
  versionId,
} from './documents.ts';
import { stripGuard } from './readModels.ts';

export interface InvocationTarget {
  readonly fn: FunctionDocument;
  readonly version: VersionDocument;
  /** The alias the version was chosen through, if any. */
  readonly alias: string | null;
}

const asDocument = <T>(doc: Record<string, unknown> | null): T | null =>
  doc === null ? null : (stripGuard(doc) as unknown as T);

/**
 * Which version an invocation runs: the alias's weighted choice, the version asked for, else the
 * function's publishedVersion, else its latest version.
 */
export const resolveInvocationTarget = async (
  readStore: ReadStore,
  functionName: string,
  selector: { readonly alias?: string | undefined; readonly version?: number | undefined },
  random: () => number,
): Promise<InvocationTarget | DomainError> => {
  const fn = asDocument<FunctionDocument>(await readStore.get(COLLECTIONS.functions, functionName));
  if (fn === null || fn.status !== 'Active') return notFound(`Function '${functionName}' not found`);
  let number: number | undefined;
  let alias: string | null = null;
  if (selector.alias !== undefined) {
    const doc = asDocument<AliasDocument>(
      await readStore.get(COLLECTIONS.aliases, aliasId(functionName, selector.alias)),
    );
    if (doc === null) return notFound(`Alias '${selector.alias}' of function '${functionName}' not found`);
    number = chooseVersion(doc.routingConfig, random()) ?? doc.version;
    alias = doc.aliasName;
  } else if (selector.version !== undefined) {
    number = selector.version;
  } else if (fn.publishedVersion !== null) {
    number = Number(fn.publishedVersion.slice(1));
  } else if (fn.latestVersion !== null) {
    number = fn.latestVersion;
  }
  if (number === undefined) {
    return domainError('CONFLICT', `Function '${functionName}' has no version to invoke: publish one first`);
  }
  const version = asDocument<VersionDocument>(
    await readStore.get(COLLECTIONS.versions, versionId(functionName, number)),
  );
  if (version === null) return notFound(`Version ${number} of function '${functionName}' not found`);
  return { fn, version, alias };
};
