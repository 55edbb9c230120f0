import test, { type ExecutionContext } from 'ava';
import type { FieldProblem } from '../../domain/shared/errors.ts';
import { checkPassword, type UserCommand, userDecider } from '../../domain/user/decider.ts';
import type { Role, UserEvent } from '../../domain/user/events.ts';
import { spec } from './givenWhenThen.ts';

const user = (t: ExecutionContext) => spec(t, userDecider);

const ALICE = 'alice';
const ADMIN = 'admin';
const HASH = 'scrypt$c2FsdA$aGFzaA';

// Events
const registered = (role: Role = 'Developer', username = ALICE): UserEvent => ({
  type: 'UserRegistered',
  data: { userId: `user-${username}`, username, role, passwordHash: HASH },
});
const roleChanged = (role: Role): UserEvent => ({ type: 'UserRoleChanged', data: { username: ALICE, role } });
const passwordChanged = (passwordHash: string): UserEvent => ({
  type: 'UserPasswordChanged',
  data: { username: ALICE, passwordHash },
});
const disabled = (): UserEvent => ({ type: 'UserDisabled', data: { username: ALICE } });

// Commands
const register = (username = ALICE, role: Role = 'Developer'): UserCommand => ({
  type: 'RegisterUser',
  userId: `user-${username}`,
  username,
  role,
  passwordHash: HASH,
});
const changeRole = (role: Role, actingUsername = ADMIN): UserCommand => ({
  type: 'ChangeUserRole',
  username: ALICE,
  role,
  actingUsername,
});
const changePassword = (passwordHash: string): UserCommand => ({
  type: 'ChangeUserPassword',
  username: ALICE,
  passwordHash,
});
const disable = (actingUsername = ADMIN): UserCommand => ({ type: 'DisableUser', username: ALICE, actingUsername });

// Register
test('register records the user with role and password hash', (t) =>
  user(t).given([]).when(register()).then([registered()]));
test('register an Admin', (t) =>
  user(t)
    .given([])
    .when(register(ALICE, 'Admin'))
    .then([registered('Admin')]));
for (const username of ['bob', 'alice@example.com', 'j.doe_1+ops%x-y', `u${'x'.repeat(127)}`]) {
  test(`username '${username.length > 20 ? `${username.slice(0, 8)}…(${username.length})` : username}' is accepted`, (t) =>
    user(t)
      .given([])
      .when(register(username))
      .then([registered('Developer', username)]));
}
for (const username of ['', 'ab', '-bob', '.bob', 'bob smith', 'bob/ops', 'zoë', `u${'x'.repeat(128)}`]) {
  test(`username '${username.length > 20 ? `${username.slice(0, 8)}…(${username.length})` : username}' → VALIDATION_ERROR username`, (t) =>
    user(t).given([]).when(register(username)).thenError('VALIDATION_ERROR', 'username'));
}
test('register of an existing user → CONFLICT', (t) =>
  user(t).given([registered()]).when(register()).thenError('CONFLICT', 'already exists'));
test('register of a disabled user → CONFLICT', (t) =>
  user(t).given([registered(), disabled()]).when(register()).thenError('CONFLICT', 'already exists'));

// Role
test('an admin changes a role', (t) =>
  user(t)
    .given([registered('Viewer')])
    .when(changeRole('Operator'))
    .then([roleChanged('Operator')]));
test('changing to the role the user already has records nothing', (t) =>
  user(t)
    .given([registered('Viewer'), roleChanged('Operator')])
    .when(changeRole('Operator'))
    .then([]));
test('a role change after an earlier one is recorded', (t) =>
  user(t)
    .given([registered('Viewer'), roleChanged('Operator')])
    .when(changeRole('Viewer'))
    .then([roleChanged('Viewer')]));
test('changing your own role → CONFLICT', (t) =>
  user(t)
    .given([registered('Admin')])
    .when(changeRole('Viewer', ALICE))
    .thenError('CONFLICT', 'own role'));
test('changing your own role under another letter case → CONFLICT', (t) =>
  user(t)
    .given([registered('Admin')])
    .when(changeRole('Viewer', 'ALICE'))
    .thenError('CONFLICT', 'own role'));
test('setting your own role to the one you have records nothing', (t) =>
  user(t)
    .given([registered('Admin')])
    .when(changeRole('Admin', ALICE))
    .then([]));

// Password
test('password change records the new hash', (t) =>
  user(t)
    .given([registered()])
    .when(changePassword('scrypt$bmV3$bmV3'))
    .then([passwordChanged('scrypt$bmV3$bmV3')]));
test('password change after an earlier one records the newest hash', (t) =>
  user(t)
    .given([registered(), passwordChanged('scrypt$b2xk$b2xk')])
    .when(changePassword('scrypt$bmV3$bmV3'))
    .then([passwordChanged('scrypt$bmV3$bmV3')]));

// Disable
test('an admin disables a user', (t) => user(t).given([registered()]).when(disable()).then([disabled()]));
test('disabling yourself → CONFLICT', (t) =>
  user(t)
    .given([registered('Admin')])
    .when(disable(ALICE))
    .thenError('CONFLICT', 'yourself'));
test('disabling yourself under another letter case → CONFLICT', (t) =>
  user(t)
    .given([registered('Admin')])
    .when(disable('Alice'))
    .thenError('CONFLICT', 'yourself'));

// Disabled and missing users
const commandsOnAUser: Record<Exclude<UserCommand['type'], 'RegisterUser'>, UserCommand> = {
  ChangeUserRole: changeRole('Operator'),
  ChangeUserPassword: changePassword('scrypt$bmV3$bmV3'),
  DisableUser: disable(),
};
for (const [type, command] of Object.entries(commandsOnAUser)) {
  test(`${type} on a disabled user → CONFLICT`, (t) =>
    user(t).given([registered(), disabled()]).when(command).thenError('CONFLICT', 'disabled'));
  test(`${type} on a missing user → NOT_FOUND`, (t) =>
    user(t).given([]).when(command).thenError('NOT_FOUND', `User '${ALICE}' not found`));
}

// Unknown commands and events are refused loudly, not ignored
test('an unknown command throws', (t) => {
  const state = userDecider.evolve(userDecider.initialState, registered());
  t.throws(() => userDecider.decide({ type: 'RenameUser', username: ALICE } as unknown as UserCommand, state), {
    message: /Unhandled case/,
  });
});
test('an unknown event throws', (t) => {
  t.throws(
    () => userDecider.evolve(userDecider.initialState, { type: 'UserRenamed', data: {} } as unknown as UserEvent),
    {
      message: /Unhandled case/,
    },
  );
});

// Password rules (checked before hashing)
const passwordProblems = (password: string, field?: string): FieldProblem[] => {
  const problems: FieldProblem[] = [];
  checkPassword(password, problems, field);
  return problems;
};
for (const [what, password] of [
  ['8 characters, letters first', 'abcdefg1'],
  ['8 characters, digits first', '1234567a'],
  ['256 characters', `a${'1'.repeat(255)}`],
  ['spaces and accents', 'Pässwörd 1'],
] as const) {
  test(`password of ${what} with a letter and a digit is accepted`, (t) => t.deepEqual(passwordProblems(password), []));
}
for (const [why, password] of [
  ['7 characters', 'abcdef1'],
  ['257 characters', `a${'1'.repeat(256)}`],
  ['empty', ''],
  ['no digit', 'abcdefgh'],
  ['no letter', '12345678'],
] as const) {
  test(`password with ${why} is refused on field password`, (t) =>
    t.deepEqual(
      passwordProblems(password).map((problem) => problem.field),
      ['password'],
    ));
}
test('password problems are reported on the given field', (t) =>
  t.deepEqual(
    passwordProblems('short', 'newPassword').map((problem) => problem.field),
    ['newPassword'],
  ));
test('a too-short password reports the length rule, not the character rule', (t) =>
  t.regex(passwordProblems('abc')[0]?.message ?? '', /8-256 characters/));
test('a long password without a digit reports the character rule', (t) =>
  t.regex(passwordProblems('abcdefghij')[0]?.message ?? '', /letter and one digit/));
