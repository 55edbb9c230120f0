import type { EventStore, Ids } from '../domain/ports.ts';
import { DomainFailure, type FieldProblem, validationError } from '../domain/shared/errors.ts';
import { checkPassword, userDecider } from '../domain/user/decider.ts';
import { type Role, USER_EVENT_SCHEMA_VERSIONS, userStreamId } from '../domain/user/events.ts';
import { type CommandMetadata, execute } from './execute.ts';

export interface UserCommandsOptions {
  readonly eventStore: EventStore;
  readonly ids: Ids;
  readonly hashPassword: (password: string) => Promise<string>;
  readonly awaitProjection: (position: bigint) => Promise<void>;
}

export type UserCommands = ReturnType<typeof createUserCommands>;

/** Throws the validation failure a password would meet, before anything is changed. */
export const checkedPassword = (password: string): void => {
  const problems: FieldProblem[] = [];
  checkPassword(password, problems);
  if (problems.length > 0) throw new DomainFailure(validationError('User validation failed', problems));
};

export const createUserCommands = (options: UserCommandsOptions) => {
  const run = async (
    username: string,
    command: Parameters<typeof userDecider.decide>[0],
    metadata: CommandMetadata,
  ) => {
    const result = await execute(
      options.eventStore,
      userDecider,
      USER_EVENT_SCHEMA_VERSIONS,
      userStreamId(username),
      command,
      metadata,
    );
    if (result.position !== null) await options.awaitProjection(result.position);
    return result;
  };

  return {
    register: async (input: { username: string; password: string; role: Role }, metadata: CommandMetadata) => {
      checkedPassword(input.password);
      const passwordHash = await options.hashPassword(input.password);
      const userId = options.ids.next('user');
      return run(
        input.username,
        { type: 'RegisterUser', userId, username: input.username, role: input.role, passwordHash },
        metadata,
      );
    },

    changeRole: (username: string, role: Role, actingUsername: string, metadata: CommandMetadata) =>
      run(username, { type: 'ChangeUserRole', username, role, actingUsername }, metadata),

    changePassword: async (username: string, password: string, metadata: CommandMetadata) => {
      checkedPassword(password);
      const passwordHash = await options.hashPassword(password);
      return run(username, { type: 'ChangeUserPassword', username, passwordHash }, metadata);
    },

    disable: (username: string, actingUsername: string, metadata: CommandMetadata) =>
      run(username, { type: 'DisableUser', username, actingUsername }, metadata),
  };
};
