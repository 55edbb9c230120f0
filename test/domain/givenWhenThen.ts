import type { ExecutionContext } from 'ava';
import type { Decider } from '../../domain/shared/decider.ts';
import { type DomainErrorCode, isDomainError } from '../../domain/shared/errors.ts';

export interface Then<E> {
  /** The command is accepted and emits exactly these events. */
  then(expected: readonly E[]): void;
  /**
   * The command is refused with this code. `fieldOrMessagePart`, if given, must be the field of one of
   * the error's details or, for an error without details (not found, conflict), part of its message.
   */
  thenError(code: DomainErrorCode, fieldOrMessagePart?: string): void;
}

export interface Given<C, E> {
  when(command: C): Then<E>;
}

/** `spec(t, decider).given(events).when(command).then(events)` — or `.thenError(code, field)`. */
export const spec = <C, E, S>(t: ExecutionContext, decider: Decider<C, E, S>) => ({
  given: (events: readonly E[]): Given<C, E> => ({
    when: (command: C): Then<E> => {
      const state = events.reduce(decider.evolve, decider.initialState);
      const decision = decider.decide(command, state);
      return {
        // biome-ignore lint/suspicious/noThenProperty: given/when/then is the vocabulary; never awaited
        then: (expected) => {
          if (isDomainError(decision)) {
            t.fail(`expected events, got ${decision.code}: ${decision.message} ${JSON.stringify(decision.details)}`);
            return;
          }
          t.deepEqual(decision, expected);
        },
        thenError: (code, fieldOrMessagePart) => {
          if (!isDomainError(decision)) {
            t.fail(`expected ${code}, got events ${JSON.stringify(decision)}`);
            return;
          }
          t.is(decision.code, code, decision.message);
          if (fieldOrMessagePart === undefined) return;
          if (decision.details.length > 0) {
            const fields = decision.details.map((detail) => detail.field);
            t.true(
              fields.includes(fieldOrMessagePart),
              `expected field '${fieldOrMessagePart}' among ${fields.join(', ')}`,
            );
          } else {
            t.true(
              decision.message.includes(fieldOrMessagePart),
              `expected '${fieldOrMessagePart}' in message '${decision.message}'`,
            );
          }
        },
      };
    },
  }),
});
