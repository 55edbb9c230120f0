import type { Decider, Decision } from '../shared/decider.ts';
import { assertNever, conflict, type FieldProblem, notFound, validationError } from '../shared/errors.ts';
import type { Role, UserEvent } from './events.ts';

export const USERNAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._%+@-]{2,127}$/;
export const PASSWORD_MIN_LENGTH = 8;
export const PASSWORD_MAX_LENGTH = 256;

export interface UserState {
  readonly status: 'absent' | 'active' | 'disabled';
  readonly userId: string;
  readonly username: string;
  readonly role: Role | null;
}

export type UserCommand =
  | {
      readonly type: 'RegisterUser';
      readonly userId: string;
      readonly username: string;
      readonly role: Role;
      readonly passwordHash: string;
    }
  | { readonly type: 'ChangeUserRole'; readonly username: string; readonly role: Role; readonly actingUsername: string }
  | { readonly type: 'ChangeUserPassword'; readonly username: string; readonly passwordHash: string }
  | { readonly type: 'DisableUser'; readonly username: string; readonly actingUsername: string };

export const initialUserState: UserState = { status: 'absent', userId: '', username: '', role: null };

/** Password rules, checked before hashing (the decider only ever sees the hash). */
export const checkPassword = (password: string, problems: FieldProblem[], field = 'password'): void => {
  if (password.length < PASSWORD_MIN_LENGTH || password.length > PASSWORD_MAX_LENGTH) {
    problems.push({ field, message: `Password must be ${PASSWORD_MIN_LENGTH}-${PASSWORD_MAX_LENGTH} characters` });
  } else if (!/\p{L}/u.test(password) || !/\p{Nd}/u.test(password)) {
    problems.push({ field, message: 'Password must contain at least one letter and one digit' });
  }
};

export const checkUsername = (username: string, problems: FieldProblem[]): void => {
  if (!USERNAME_PATTERN.test(username)) {
    problems.push({
      field: 'username',
      message: 'Username must be 3-128 characters: letters, digits and . _ % + @ -, starting with a letter or digit',
    });
  }
};

const sameUser = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

export const decideUser = (command: UserCommand, state: UserState): Decision<UserEvent> => {
  if (command.type === 'RegisterUser') {
    const problems: FieldProblem[] = [];
    checkUsername(command.username, problems);
    if (problems.length > 0) return validationError('User validation failed', problems);
    if (state.status !== 'absent') return conflict(`User '${command.username}' already exists`);
    return [
      {
        type: 'UserRegistered',
        data: {
          userId: command.userId,
          username: command.username,
          role: command.role,
          passwordHash: command.passwordHash,
        },
      },
    ];
  }
  if (state.status === 'absent') return notFound(`User '${command.username}' not found`);
  if (state.status === 'disabled') return conflict(`User '${state.username}' is disabled`);
  switch (command.type) {
    case 'ChangeUserRole':
      if (sameUser(command.actingUsername, state.username) && command.role !== state.role) {
        return conflict('You cannot change your own role');
      }
      if (command.role === state.role) return [];
      return [{ type: 'UserRoleChanged', data: { username: state.username, role: command.role } }];
    case 'ChangeUserPassword':
      return [{ type: 'UserPasswordChanged', data: { username: state.username, passwordHash: command.passwordHash } }];
    case 'DisableUser':
      if (sameUser(command.actingUsername, state.username)) return conflict('You cannot disable yourself');
      return [{ type: 'UserDisabled', data: { username: state.username } }];
    default:
      return assertNever(command);
  }
};

export const evolveUser = (state: UserState, event: UserEvent): UserState => {
  switch (event.type) {
    case 'UserRegistered':
      return { status: 'active', userId: event.data.userId, username: event.data.username, role: event.data.role };
    case 'UserRoleChanged':
      return { ...state, role: event.data.role };
    case 'UserPasswordChanged':
      return state;
    case 'UserDisabled':
      return { ...state, status: 'disabled' };
    default:
      return assertNever(event);
  }
};

export const userDecider: Decider<UserCommand, UserEvent, UserState> = {
  initialState: initialUserState,
  decide: decideUser,
  evolve: evolveUser,
};
