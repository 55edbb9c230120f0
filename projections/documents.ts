/** Read-model documents, exactly as the queries serve them (minus the `_stream`/`_revision` guard). */

export const COLLECTIONS = {
  functions: 'functions',
  versions: 'versions',
  aliases: 'aliases',
  users: 'users',
} as const;

export interface FunctionDocument {
  readonly name: string;
  readonly description: string;
  readonly runtime: string;
  readonly handler: string;
  readonly memorySize: number;
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly tags: Readonly<Record<string, string>>;
  /** The tags keyed by `tagIndexKey`, so that a filter can name any tag key as a plain field path. */
  readonly tagIndex: Readonly<Record<string, string>>;
  readonly concurrencyLimit: number | null;
  readonly asyncRetries: number;
  readonly maxEventAgeSeconds: number;
  readonly publishedVersion: string | null;
  readonly ownerId: string;
  readonly status: 'Active' | 'Deleted';
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly deletedAt: string | null;
  readonly purgeAfter: string | null;
  readonly versionCount: number;
  readonly latestVersion: number | null;
}

export interface VersionDocument {
  readonly functionName: string;
  readonly version: number;
  readonly versionString: string;
  readonly description: string;
  readonly codeSha256: string;
  readonly codeSize: number;
  readonly codeLocation: string;
  readonly runtime: string;
  readonly handler: string;
  readonly memorySize: number;
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly createdAt: string;
  readonly createdBy: string;
  readonly status: 'Active';
}

export interface AliasDocument {
  readonly functionName: string;
  readonly aliasName: string;
  readonly version: number;
  readonly routingConfig: Readonly<Record<string, number>>;
  readonly description: string;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface UserDocument {
  readonly userId: string;
  readonly username: string;
  readonly role: string;
  /** Never leaves the server: only login reads it. */
  readonly passwordHash: string;
  readonly status: 'Active' | 'Disabled';
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A tag key as a field-path segment: tag keys may hold '.', '/' and spaces, which field paths cannot. */
export const tagIndexKey = (tagKey: string): string => Buffer.from(tagKey, 'utf8').toString('hex');

export const tagIndexOf = (tags: Readonly<Record<string, string>>): Record<string, string> =>
  Object.fromEntries(Object.entries(tags).map(([key, value]) => [tagIndexKey(key), value]));

export const versionString = (version: number): string => `v${version}`;
export const versionId = (functionName: string, version: number): string => `${functionName}:${version}`;
export const aliasId = (functionName: string, aliasName: string): string => `${functionName}:${aliasName}`;
export const userId = (username: string): string => username.toLowerCase();
