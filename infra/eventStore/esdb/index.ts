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
  isStoreError,
  type NewEvent,
  type RecordedEvent,
  StoreError,
  type Subscription,
} from '../../../domain/ports.ts';
import { ServiceUnreachableError } from '../../serviceErrors.ts';

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
  /**
   * How long the first contact with the server (`connect`, or else the first call) may take: a server that
   * has not answered by then fails it with one `ServiceUnreachableError` naming EventStoreDB and the
   * address (password masked). Default 5 000.
   */
  readonly reachTimeoutMs?: number;
  /**
   * How long a read may take before it fails with `UNAVAILABLE` (the client gives reads no deadline of its
   * own, so a server that hangs would hold them until its keep-alive gives up). Appends are bounded by the
   * client's `defaultDeadline` (10 s unless the connection string says otherwise). Default 10 000.
   */
  readonly readTimeoutMs?: number;
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
    case 'unknown':
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

export interface EsdbEventStore extends EventStore {
  /**
   * Reaches the server (a read of the last event of `$all`) within `reachTimeoutMs`, else rejects with one
   * `ServiceUnreachableError`. Every call but `subscribeToAll` does this first until it succeeded once.
   */
  connect(): Promise<void>;
}

type Streaming<T> = AsyncIterable<T> & { cancel(): Promise<void>; destroy(error?: Error): unknown };

/**
 * The event store on EventStoreDB / KurrentDB: one ESDB stream per aggregate stream, `$all` for the log.
 *
 * Outages: until the server first answered, calls fail after `reachTimeoutMs` with `ServiceUnreachableError`
 * (start-up stops with one line). After that, calls fail with `StoreError` `UNAVAILABLE` (gRPC unavailable
 * at once, a server that hangs after `readTimeoutMs` or the append deadline); the client reconnects by
 * itself on the next call, and subscriptions reconnect with backoff from where they were.
 */
export const createEsdbEventStore = (options: EsdbEventStoreOptions): EsdbEventStore => {
  const client = EventStoreDBClient.connectionString(options.connectionString);
  const namespace = options.namespace ?? '';
  const subscriptions = new Set<{ close(): Promise<void> }>();
  const readTimeoutMs = options.readTimeoutMs ?? 10_000;

  /** Iterates a read, failing it with `UNAVAILABLE` when it takes longer than `timeoutMs`. */
  const drain = async <T>(
    read: Streaming<T>,
    visit: (item: T) => boolean | undefined,
    what: string,
    timeoutMs = readTimeoutMs,
  ): Promise<void> => {
    const timer = setTimeout(() => {
      void read.cancel().catch(() => undefined);
      read.destroy(new StoreError('UNAVAILABLE', `EventStoreDB did not answer ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    try {
      for await (const item of read) if (visit(item) === false) break;
    } finally {
      clearTimeout(timer);
    }
  };

  const lastOfAll = async (timeoutMs?: number): Promise<RecordedEvent | null> => {
    let found: RecordedEvent | null = null;
    try {
      await drain(
        client.readAll({ fromPosition: END, direction: BACKWARDS, maxCount: PAGE }),
        (resolved) => {
          const recorded = toRecorded(resolved);
          if (recorded === undefined || recorded.streamId.startsWith('$')) return true;
          found = recorded;
          return false;
        },
        'a read of $all',
        timeoutMs,
      );
    } catch (error) {
      throw translate(error, 'read $all');
    }
    return found;
  };

  let reached: Promise<void> | undefined;
  /** The first contact, retried until `reachTimeoutMs`; a refusal that is not an outage ends it at once. */
  const reach = (): Promise<void> => {
    reached ??= (async () => {
      const started = Date.now();
      const deadline = started + (options.reachTimeoutMs ?? 5_000);
      let lastError: unknown;
      for (let delay = 100; Date.now() < deadline; delay = Math.min(1_000, delay * 2)) {
        try {
          await lastOfAll(Math.max(1, deadline - Date.now()));
          return;
        } catch (error) {
          lastError = error;
          if (!isStoreError(error, 'UNAVAILABLE')) break;
        }
        const pause = Math.min(delay, deadline - Date.now());
        if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
      }
      throw new ServiceUnreachableError({
        service: 'EventStoreDB',
        address: options.connectionString,
        cause: lastError,
        waitedMs: Date.now() - started,
      });
    })().catch((error: unknown) => {
      reached = undefined;
      throw error;
    });
    return reached;
  };

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
    let last: RecordedEvent | undefined;
    try {
      await drain(
        client.readStream(`${namespace}${streamId}`, { direction: BACKWARDS, fromRevision: END, maxCount: 1 }),
        (resolved) => {
          last = toRecorded(resolved);
          return false;
        },
        `a read of ${streamId}`,
      );
    } catch (error) {
      if (typeOf(error) === 'stream-not-found') return undefined;
      throw translate(error, `read ${streamId}`);
    }
    return last;
  };

  const readAllPage = async (after: bigint | undefined, maxCount: number): Promise<RecordedEvent[]> => {
    const events: RecordedEvent[] = [];
    const from = after === undefined ? START : { commit: after, prepare: after };
    try {
      await drain(
        client.readAll({ fromPosition: from, direction: FORWARDS, maxCount: maxCount + 1 }),
        (resolved) => {
          const recorded = toRecorded(resolved);
          if (recorded === undefined || recorded.streamId.startsWith('$')) return true;
          if (after !== undefined && recorded.position <= after) return true;
          events.push(recorded);
          return true;
        },
        'a read of $all',
      );
    } catch (error) {
      throw translate(error, 'read $all');
    }
    return events;
  };

  return {
    connect: reach,

    async append(streamId, events: readonly NewEvent[], expected): Promise<AppendResult> {
      await reach();
      if (events.length === 0) {
        const last = await lastOfStream(streamId);
        const actual = last?.revision ?? -1;
        const ok = expected === 'any' || (expected === 'noStream' ? last === undefined : expected === actual);
        if (!ok) {
          throw new StoreError(
            'WRONG_EXPECTED_REVISION',
            `stream "${streamId}": expected ${String(expected)}, actual ${actual}`,
          );
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
      await reach();
      const events: RecordedEvent[] = [];
      try {
        await drain(
          client.readStream(`${namespace}${streamId}`, { direction: FORWARDS, fromRevision: START }),
          (resolved) => {
            const recorded = toRecorded(resolved);
            if (recorded !== undefined) events.push(recorded);
            return true;
          },
          `a read of ${streamId}`,
        );
      } catch (error) {
        if (typeOf(error) === 'stream-not-found') return [];
        throw translate(error, `read ${streamId}`);
      }
      return events;
    },

    async readAll(readOptions = {}) {
      await reach();
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
      await reach();
      return (await lastOfAll())?.position ?? -1n;
    },

    async close() {
      for (const subscription of [...subscriptions]) await subscription.close();
      await client.dispose();
    },
  };
};
