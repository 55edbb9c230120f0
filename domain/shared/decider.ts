import type { DomainError } from './errors.ts';

/** Who and when: every command carries them, so deciders never read a clock or an id source. */
export interface CommandContext {
  readonly userId: string;
  /** ISO-8601 time of the decision. */
  readonly now: string;
}

export type Decision<E> = readonly E[] | DomainError;

/** A pure aggregate: decide what happens, and fold what happened into state. */
export interface Decider<C, E, S> {
  readonly initialState: S;
  decide(command: C, state: S): Decision<E>;
  evolve(state: S, event: E): S;
}
