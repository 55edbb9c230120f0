import type { Decider } from '../domain/shared/decider.ts';
import { DomainFailure, isDomainError } from '../domain/shared/errors.ts';
import { type EventMetadata, type EventStore, isStoreError, type RecordedEvent } from '../domain/ports.ts';

/** Who asked, when, and under which trace: becomes every appended event's metadata. */
export interface CommandMetadata {
  readonly userId: string;
  readonly now: string;
  readonly traceId: string;
  readonly correlationId: string;
  /** The id of what caused this command: a request id, or the id of an event for process managers. */
  readonly causationId: string;
}

export interface DomainEventShape {
  readonly type: string;
  readonly data: unknown;
}

export interface Executed<E, S> {
  readonly events: readonly E[];
  readonly state: S;
  /** Log position of the last appended event, or null when the command changed nothing. */
  readonly position: bigint | null;
}

export interface ExecuteOptions {
  /** How many times a version conflict is retried (reload, decide again) before it surfaces. */
  readonly conflictRetries?: number;
}

/**
 * Load → decide → append, retrying only on a version conflict. A domain error is thrown as a
 * `DomainFailure`; a conflict that outlives the retries is thrown as the store's error.
 */
export const execute = async <C, E extends DomainEventShape, S>(
  eventStore: EventStore,
  decider: Decider<C, E, S>,
  schemaVersions: Readonly<Record<string, number>>,
  streamId: string,
  command: C,
  metadata: CommandMetadata,
  options: ExecuteOptions = {},
): Promise<Executed<E, S>> => {
  const retries = options.conflictRetries ?? 5;
  for (let attempt = 0; ; attempt += 1) {
    const history = await eventStore.readStream(streamId);
    const state = history.reduce(
      (current, recorded) => decider.evolve(current, toDomainEvent<E>(recorded)),
      decider.initialState,
    );
    const decision = decider.decide(command, state);
    if (isDomainError(decision)) throw new DomainFailure(decision);
    if (decision.length === 0) return { events: [], state, position: null };
    const last = history.at(-1);
    const eventMetadata: EventMetadata = {
      userId: metadata.userId,
      occurredAt: metadata.now,
      traceId: metadata.traceId,
      correlationId: metadata.correlationId,
      causationId: metadata.causationId,
    };
    try {
      const appended = await eventStore.append(
        streamId,
        decision.map((event) => ({
          type: event.type,
          schemaVersion: schemaVersions[event.type] ?? 1,
          data: event.data,
          metadata: eventMetadata,
        })),
        last === undefined ? 'noStream' : last.revision,
      );
      return { events: decision, state: decision.reduce(decider.evolve, state), position: appended.position };
    } catch (error) {
      if (!isStoreError(error, 'WRONG_EXPECTED_REVISION') || attempt >= retries) throw error;
    }
  }
};

export const toDomainEvent = <E>(recorded: RecordedEvent): E => ({ type: recorded.type, data: recorded.data }) as E;
