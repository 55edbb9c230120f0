import type { FunctionEvent } from '../domain/function/events.ts';
import { DEFAULT_CONFIGURATION } from '../domain/function/validation.ts';
import type { RecordedEvent } from '../domain/ports.ts';
import { assertNever } from '../domain/shared/errors.ts';
import type { UserEvent } from '../domain/user/events.ts';
import {
  type AliasDocument,
  type FunctionDocument,
  tagIndexOf,
  type UserDocument,
  type VersionDocument,
  versionString,
} from './documents.ts';

/** Events written before the invocation settings existed read as the defaults. */
const INVOCATION_DEFAULTS = {
  concurrencyLimit: DEFAULT_CONFIGURATION.concurrencyLimit,
  asyncRetries: DEFAULT_CONFIGURATION.asyncRetries,
  maxEventAgeSeconds: DEFAULT_CONFIGURATION.maxEventAgeSeconds,
};

/** A recorded event with its domain shape: what every pure read-model evolve takes. */
export type Recorded<E> = E & Pick<RecordedEvent, 'metadata' | 'streamId' | 'revision'>;

/** The function's own document; null deletes it. */
export const evolveFunctionDocument = (
  doc: FunctionDocument | null,
  event: Recorded<FunctionEvent>,
): FunctionDocument | null => {
  const at = event.metadata.occurredAt;
  switch (event.type) {
    case 'FunctionCreated': {
      const { name, ownerId, ...configuration } = event.data;
      return {
        name,
        ...INVOCATION_DEFAULTS,
        ...configuration,
        tagIndex: tagIndexOf(configuration.tags),
        publishedVersion: null,
        ownerId,
        status: 'Active',
        createdAt: at,
        updatedAt: at,
        deletedAt: null,
        purgeAfter: null,
        versionCount: 0,
        latestVersion: null,
      };
    }
    case 'FunctionConfigurationUpdated': {
      if (doc === null) return null;
      const { publishedVersion, ...changes } = event.data.changes;
      return {
        ...doc,
        ...changes,
        tagIndex: changes.tags === undefined ? doc.tagIndex : tagIndexOf(changes.tags),
        publishedVersion:
          publishedVersion === undefined
            ? doc.publishedVersion
            : publishedVersion === null
              ? null
              : versionString(publishedVersion),
        updatedAt: at,
      };
    }
    case 'FunctionDeleted':
      return doc === null
        ? null
        : { ...doc, status: 'Deleted', deletedAt: at, purgeAfter: event.data.purgeAfter, updatedAt: at };
    case 'FunctionPurged':
      return null;
    case 'FunctionVersionPublished':
      return doc === null
        ? null
        : { ...doc, versionCount: doc.versionCount + 1, latestVersion: event.data.version, updatedAt: at };
    case 'FunctionVersionDeleted':
      return doc === null ? null : { ...doc, versionCount: doc.versionCount - 1, updatedAt: at };
    case 'FunctionAliasCreated':
    case 'FunctionAliasRoutingChanged':
    case 'FunctionAliasDeleted':
      return doc;
    default:
      return assertNever(event);
  }
};

/** One version's document; events about other versions leave it as it is. */
export const evolveVersionDocument = (
  doc: VersionDocument | null,
  event: Recorded<FunctionEvent>,
): VersionDocument | null => {
  switch (event.type) {
    case 'FunctionVersionPublished': {
      const { name, version, ...snapshot } = event.data;
      return {
        functionName: name,
        version,
        versionString: versionString(version),
        ...snapshot,
        createdAt: event.metadata.occurredAt,
        createdBy: event.metadata.userId,
        status: 'Active',
      };
    }
    case 'FunctionVersionDeleted':
    case 'FunctionPurged':
      return null;
    default:
      return doc;
  }
};

export const evolveAliasDocument = (
  doc: AliasDocument | null,
  event: Recorded<FunctionEvent>,
): AliasDocument | null => {
  const at = event.metadata.occurredAt;
  switch (event.type) {
    case 'FunctionAliasCreated':
      return {
        functionName: event.data.name,
        aliasName: event.data.aliasName,
        version: event.data.version,
        routingConfig: event.data.routingConfig,
        description: event.data.description,
        createdAt: at,
        updatedAt: at,
      };
    case 'FunctionAliasRoutingChanged':
      return doc === null
        ? null
        : {
            ...doc,
            version: event.data.version,
            routingConfig: event.data.routingConfig,
            description: event.data.description,
            updatedAt: at,
          };
    case 'FunctionAliasDeleted':
    case 'FunctionPurged':
      return null;
    default:
      return doc;
  }
};

export const evolveUserDocument = (doc: UserDocument | null, event: Recorded<UserEvent>): UserDocument | null => {
  const at = event.metadata.occurredAt;
  switch (event.type) {
    case 'UserRegistered':
      return {
        userId: event.data.userId,
        username: event.data.username,
        role: event.data.role,
        passwordHash: event.data.passwordHash,
        status: 'Active',
        createdAt: at,
        updatedAt: at,
      };
    case 'UserRoleChanged':
      return doc === null ? null : { ...doc, role: event.data.role, updatedAt: at };
    case 'UserPasswordChanged':
      return doc === null ? null : { ...doc, passwordHash: event.data.passwordHash, updatedAt: at };
    case 'UserDisabled':
      return doc === null ? null : { ...doc, status: 'Disabled', updatedAt: at };
    default:
      return assertNever(event);
  }
};
