import {
  ANY,
  BACKWARDS,
  END,
  EventStoreDBClient,
  excludeSystemEvents,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  type AllStreamResolvedEvent,
  type AppendExpectedRevision,
  type ResolvedEvent,
  START,
  streamNameFilter,
} from '@eventstore/db-client';
import {
  type AppendResult,
  type EventMetadata,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type RecordedEvent,
  StoreError,
  type Subscription,
} from '../../../domain/ports.ts';

export interface EsdbEventStoreOptions {
  /** e.g. `esdb://127.0.0.1:2113?tls=false`. */
  readonly connectionString: string;
  /**
   * Prepended to every stream id, so that several Strata installations (or test runs) can share one
   * server; reads and subscriptions see only their own namespace.
   */
  readonly namespace?: string;
  /** First delay before a broken subscription reconnects; doubles up to `maxReconnectDelayMs`. */
  readonly reconnectDelayMs?: number;
  readonly maxReconnectDelayMs?: number;
  readonly logger?: { warn(details: Record<string, unknown>, message: string): void };
}

interface StoredMetadata extends EventMetadata {
  readonly schemaVersion: number;
}

const PAGE = 500;

const typeOf = (error: unknown): string | undefined => (error as { type?: unknown }).type as string | undefined;

/** Vendor errors become the port's: a wrong expected version is a conflict, the rest unavailability. */
const translate = (error: unknown, what: string): unknown => {
  switch (typeOf(error)) {
    case 'wrong-expected-version':
      return new StoreError('WRONG_EXPECTED_REVISION', `${what}: ${(error as Error).message}`, { cause: error });
    case 'unavailable':
    case 'deadline-exceeded':
    case 'timeout':
    case 'not-leader':
    case 'cancelled':
      return new StoreError('UNAVAILABLE', `EventStoreDB unavailable: ${(error as Error).message}`, { cause: error });
    default:
      return error;
  }
};

const expectedOf = (expected: ExpectedRevision): AppendExpectedRevision => {
  if (expected === 'noStream') return NO_STREAM;
  if (expected === 'any') return ANY;
  return expected < 0 ? NO_STREAM : BigInt(expected);
};

/** The event store on EventStoreDB / KurrentDB: one ESDB stream per aggregate stream, `$all` for the log. */
export const createEsdbEventStore = (options: EsdbEventStoreOptions): EventStore => {
  const client = EventStoreDBClient.connectionString(options.connectionString);
  const namespace = options.namespace ?? '';
  const subscriptions = new Set<{ close(): Promise<void> }>();

  const toRecorded = (resolved: ResolvedEvent | AllStreamResolvedEvent): RecordedEvent | undefined => {
    const event = resolved.event;
    if (event === undefined || !event.isJson || !event.streamId.startsWith(namespace)) return undefined;
    const { schemaVersion, ...metadata } = (event.metadata ?? {}) as unknown as StoredMetadata;
    return {
      streamId: event.streamId.slice(namespace.length),
      revision: Number(event.revision),
      position: event.position?.commit ?? resolved.commitPosition ?? 0n,
      type: event.type,
      schemaVersion: schemaVersion ?? 1,
      data: event.data,
      metadata,
      recordedAt: event.created.toISOString(),
    };
  };

  const filterFor = (prefixes?: readonly string[]) =>
    namespace === '' && prefixes === undefined
      ? excludeSystemEvents()
      : streamNameFilter({ prefixes: (prefixes ?? ['']).map((prefix) => `${namespace}${prefix}`) });

  const lastOfStream = async (streamId: string): Promise<RecordedEvent | undefined> => {
    try {
      for await (const resolved of client.readStream(`${namespace}${streamId}`, { direction: BACKWARDS, fromRevision: END, maxCount: 1 })) {
        return toRecorded(resolved);
      }
    } catch (error) {
      if (typeOf(error) === 'stream-not-found') return undefined;
      throw translate(error, `read ${streamId}`);
    }
    return undefined;
  };

  const readAllPage = async (after: bigint | undefined, maxCount: number): Promise<RecordedEvent[]> => {
    const events: RecordedEvent[] = [];
    const from = after === undefined ? START : { commit: after, prepare: after };
    try {
      for await (const resolved of client.readAll({ fromPosition: from, direction: FORWARDS, maxCount: maxCount + 1 })) {
        const recorded = toRecorded(resolved);
        if (recorded === undefined || recorded.streamId.startsWith('$')) continue;
        if (after !== undefined && recorded.position <= after) continue;
        events.push(recorded);
      }
    } catch (error) {
      throw translate(error, 'read $all');
    }
    return events;
  };

  return {
    async append(streamId, events: readonly NewEvent[], expected): Promise<AppendResult> {
      if (events.length === 0) {
        const last = await lastOfStream(streamId);
        const actual = last?.revision ?? -1;
        const ok = expected === 'any' || (expected === 'noStream' ? last === undefined : expected === actual);
        if (!ok) {
          throw new StoreError('WRONG_EXPECTED_REVISION', `stream "${streamId}": expected ${String(expected)}, actual ${actual}`);
        }
        return { nextExpectedRevision: actual, position: last?.position ?? -1n };
      }
      try {
        const result = await client.appendToStream(
          `${namespace}${streamId}`,
          events.map((event) =>
            jsonEvent({
              type: event.type,
              data: event.data as Record<string, unknown>,
              metadata: { ...event.metadata, schemaVersion: event.schemaVersion },
            }),
          ),
          { expectedRevision: expectedOf(expected) },
        );
        return { nextExpectedRevision: Number(result.nextExpectedRevision), position: result.position?.commit ?? 0n };
      } catch (error) {
        throw translate(error, `append to ${streamId}`);
      }
    },

    async readStream(streamId) {
      const events: RecordedEvent[] = [];
      try {
        for await (const resolved of client.readStream(`${namespace}${streamId}`, { direction: FORWARDS, fromRevision: START })) {
          const recorded = toRecorded(resolved);
          if (recorded !== undefined) events.push(recorded);
        }
      } catch (error) {
        if (typeOf(error) === 'stream-not-found') return [];
        throw translate(error, `read ${streamId}`);
      }
      return events;
    },

    async readAll(readOptions = {}) {
      const limit = readOptions.maxCount ?? Number.POSITIVE_INFINITY;
      const events: RecordedEvent[] = [];
      let after = readOptions.after;
      while (events.length < limit) {
        const page = await readAllPage(after, Math.min(PAGE, limit - events.length));
        if (page.length === 0) break;
        events.push(...page.slice(0, limit - events.length));
        after = page.at(-1)?.position;
      }
      return events;
    },

    subscribeToAll(handler, subscribeOptions = {}): Subscription {
      let closed = false;
      let after = subscribeOptions.after;
      let running: Promise<void> = Promise.resolve();
      let current: { unsubscribe(): Promise<void> } | undefined;
      const baseDelay = options.reconnectDelayMs ?? 200;
      const maxDelay = options.maxReconnectDelayMs ?? 10_000;

      const run = async () => {
        let delay = baseDelay;
        while (!closed) {
          const subscription = client.subscribeToAll({
            fromPosition: after === undefined ? START : { commit: after, prepare: after },
            filter: filterFor(subscribeOptions.streamPrefixes),
          });
          current = subscription;
          try {
            for await (const resolved of subscription) {
              if (closed) break;
              const recorded = toRecorded(resolved);
              if (recorded === undefined || (after !== undefined && recorded.position <= after)) continue;
              try {
                await handler(recorded);
              } catch (error) {
                closed = true;
                subscribeOptions.onError?.(error as Error);
                break;
              }
              after = recorded.position;
              delay = baseDelay;
            }
          } catch (error) {
            if (closed) break;
            options.logger?.warn({ err: error, retryInMs: delay }, 'EventStoreDB subscription broke; reconnecting');
            await new Promise((resolve) => setTimeout(resolve, delay * (0.5 + Math.random())));
            delay = Math.min(delay * 2, maxDelay);
          } finally {
            await subscription.unsubscribe().catch(() => undefined);
          }
        }
      };
      running = run();
      const handle = {
        async close() {
          closed = true;
          await current?.unsubscribe().catch(() => undefined);
          await running;
          subscriptions.delete(handle);
        },
      };
      subscriptions.add(handle);
      return handle;
    },

    async headPosition() {
      try {
        for await (const resolved of client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: PAGE })) {
          const recorded = toRecorded(resolved);
          if (recorded !== undefined && !recorded.streamId.startsWith('$')) return recorded.position;
        }
      } catch (error) {
        throw translate(error, 'read $all');
      }
      return -1n;
    },

    async close() {
      for (const subscription of [...subscriptions]) await subscription.close();
      await client.dispose();
    },
  };
};
