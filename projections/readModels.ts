import { FUNCTION_STREAM_PREFIX, type FunctionEvent } from '../domain/function/events.ts';
import type { Document, ReadStore, RecordedEvent } from '../domain/ports.ts';
import { USER_STREAM_PREFIX, type UserEvent } from '../domain/user/events.ts';
import { aliasId, COLLECTIONS, userId, versionId } from './documents.ts';
import {
  evolveAliasDocument,
  evolveFunctionDocument,
  evolveUserDocument,
  evolveVersionDocument,
  type Recorded,
} from './evolve.ts';

/** A read model: which streams feed it, what it indexes, and how an event changes its documents. */
export interface Projection {
  readonly name: string;
  /** Bump when `apply` changes meaning: the read models are then rebuilt from the log. */
  readonly version: number;
  readonly streamPrefixes: readonly string[];
  /** Compound indexes per collection (see `ReadStore.ensureIndex`). */
  readonly indexes: Readonly<Record<string, readonly (readonly string[])[]>>;
  apply(event: RecordedEvent, store: ReadStore): Promise<void>;
}

type Evolve<D, E> = (doc: D | null, event: Recorded<E>) => D | null;

/**
 * Applies a pure evolve to one document, guarded by the stream revision stored beside it, so that
 * replaying an event already applied changes nothing.
 */
export const applyGuarded = async <D extends object, E>(
  store: ReadStore,
  collection: string,
  id: string,
  event: RecordedEvent,
  evolve: Evolve<D, E>,
): Promise<void> => {
  const stored = await store.get(collection, id);
  if (stored !== null && stored._stream === event.streamId && (stored._revision as number) >= event.revision) return;
  const current = stored === null ? null : (stripGuard(stored) as D);
  const next = evolve(current, event as unknown as Recorded<E>);
  if (next === null) {
    if (stored !== null) await store.delete(collection, id);
    return;
  }
  await store.put(collection, id, { ...next, _stream: event.streamId, _revision: event.revision });
};

/** A document without its guard fields: what queries return. */
export const stripGuard = (document: Document): Document => {
  const { _stream: _s, _revision: _r, ...rest } = document;
  return rest;
};

const functionName = (event: RecordedEvent): string => (event.data as { name: string }).name;

const functionsProjection: Projection = {
  name: 'functions',
  version: 2,
  streamPrefixes: [FUNCTION_STREAM_PREFIX],
  indexes: {
    [COLLECTIONS.functions]: [
      ['status', 'name'],
      ['status', 'runtime', 'name'],
    ],
    [COLLECTIONS.versions]: [['functionName', 'version']],
    [COLLECTIONS.aliases]: [['functionName', 'aliasName']],
  },
  async apply(event, store) {
    const name = functionName(event);
    await applyGuarded(store, COLLECTIONS.functions, name, event, evolveFunctionDocument);
    const typed = event as unknown as FunctionEvent;
    switch (typed.type) {
      case 'FunctionVersionPublished':
      case 'FunctionVersionDeleted':
        await applyGuarded(
          store,
          COLLECTIONS.versions,
          versionId(name, typed.data.version),
          event,
          evolveVersionDocument,
        );
        return;
      case 'FunctionAliasCreated':
      case 'FunctionAliasRoutingChanged':
      case 'FunctionAliasDeleted':
        await applyGuarded(store, COLLECTIONS.aliases, aliasId(name, typed.data.aliasName), event, evolveAliasDocument);
        return;
      case 'FunctionPurged':
        for (const [collection, evolve] of [
          [COLLECTIONS.versions, evolveVersionDocument],
          [COLLECTIONS.aliases, evolveAliasDocument],
        ] as const) {
          const { items } = await store.find(collection, { where: { functionName: name } });
          for (const item of items) {
            const id =
              collection === COLLECTIONS.versions
                ? versionId(name, item.version as number)
                : aliasId(name, item.aliasName as string);
            await applyGuarded(store, collection, id, event, evolve as Evolve<object, FunctionEvent>);
          }
        }
        return;
      default:
        return;
    }
  },
};

const usersProjection: Projection = {
  name: 'users',
  version: 1,
  streamPrefixes: [USER_STREAM_PREFIX],
  indexes: { [COLLECTIONS.users]: [['username']] },
  async apply(event, store) {
    const username = (event.data as UserEvent['data']).username;
    await applyGuarded(store, COLLECTIONS.users, userId(username), event, evolveUserDocument);
  },
};

export const READ_MODELS: readonly Projection[] = [functionsProjection, usersProjection];
