import { checkedPassword, type UserCommands } from '../../commands/users.ts';
import type { ReadStore } from '../../domain/ports.ts';
import type { Role } from '../../domain/user/events.ts';
import { COLLECTIONS, type UserDocument, userId } from '../../projections/documents.ts';
import { type Caller, type Endpoint, linksTo } from '../endpoint.ts';
import { user as userSchema, userList } from '../responses.ts';
import { createUserBody, pageQuery, updateUserBody } from '../schemas.ts';
import { documentOr404, documents, param } from './common.ts';

export interface UserRoutesOptions {
  readonly readStore: ReadStore;
  readonly users: UserCommands;
}

/** A user as the API shows it: never the password hash. */
const publicUser = (user: UserDocument) => ({
  userId: user.userId,
  username: user.username,
  role: user.role,
  status: user.status,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
});

export const userEndpoints = ({ readStore, users }: UserRoutesOptions): Endpoint[] => {
  const load = (username: string) =>
    documentOr404<UserDocument>(readStore, COLLECTIONS.users, userId(username), `User '${username}'`);
  const caller = (value: Caller | undefined): Caller => value as Caller;
  return [
    {
      method: 'POST',
      path: '/users',
      roles: ['Admin'],
      rateLimit: 20,
      body: createUserBody,
      summary: 'Create users',
      responses: {
        201: {
          description: 'The user',
          body: userSchema,
          links: linksTo(['getUsers', 'updateUsers', 'disableUsers'], { username: '$response.body#/username' }),
        },
      },
      errors: ['CONFLICT'],
      async handle({ body, metadata }) {
        const input = body as { username: string; password: string; role: Role };
        await users.register(input, metadata);
        return { status: 201, body: publicUser(await load(input.username)) };
      },
    },
    {
      method: 'GET',
      path: '/users',
      roles: ['Admin'],
      rateLimit: 60,
      query: pageQuery,
      summary: 'List users',
      responses: { 200: { description: 'A page of users, by username', body: userList } },
      async handle({ query }) {
        const { limit, offset } = query as { limit: number; offset: number };
        const page = await readStore.find(COLLECTIONS.users, { sortBy: 'username', limit, offset });
        return {
          status: 200,
          body: { users: documents<UserDocument>(page.items).map(publicUser), total: page.total, limit, offset },
        };
      },
    },
    {
      method: 'GET',
      path: '/users/{username}',
      roles: ['Admin'],
      rateLimit: 60,
      summary: 'Get users',
      responses: { 200: { description: 'The user', body: userSchema } },
      errors: ['NOT_FOUND'],
      async handle({ params }) {
        return { status: 200, body: publicUser(await load(param(params, 'username'))) };
      },
    },
    {
      method: 'PUT',
      path: '/users/{username}',
      roles: ['Admin'],
      rateLimit: 20,
      body: updateUserBody,
      summary: 'Update users',
      description: 'Changes the role or the password of a user. Nobody changes their own role.',
      responses: { 200: { description: 'The user', body: userSchema } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, body, metadata, caller: who }) {
        const username = (await load(param(params, 'username'))).username;
        const { role, password } = body as { role?: Role; password?: string };
        if (password !== undefined) checkedPassword(password);
        if (role !== undefined) await users.changeRole(username, role, caller(who).username, metadata);
        if (password !== undefined) await users.changePassword(username, password, metadata);
        return { status: 200, body: publicUser(await load(username)) };
      },
    },
    {
      method: 'DELETE',
      path: '/users/{username}',
      roles: ['Admin'],
      rateLimit: 10,
      summary: 'Disable users',
      description: 'Disables a user: their tokens stop working at once. Nobody disables themselves.',
      responses: { 204: { description: 'Disabled' } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, metadata, caller: who }) {
        const username = (await load(param(params, 'username'))).username;
        await users.disable(username, caller(who).username, metadata);
        return { status: 204 };
      },
    },
  ];
};
