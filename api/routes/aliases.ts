import type { AliasInput, FunctionCommands } from '../../commands/functions.ts';
import type { ReadStore } from '../../domain/ports.ts';
import { type AliasDocument, aliasId, COLLECTIONS } from '../../projections/documents.ts';
import { ALL_ROLES, type Endpoint, linksTo } from '../endpoint.ts';
import { alias, aliasList } from '../responses.ts';
import { createAliasBody, pageQuery, updateAliasBody } from '../schemas.ts';
import { activeFunction, documentOr404, documents, param } from './common.ts';

export interface AliasRoutesOptions {
  readonly readStore: ReadStore;
  readonly functions: FunctionCommands;
}

export const aliasEndpoints = ({ readStore, functions }: AliasRoutesOptions): Endpoint[] => {
  const load = (name: string, aliasName: string) =>
    documentOr404<AliasDocument>(
      readStore,
      COLLECTIONS.aliases,
      aliasId(name, aliasName),
      `Alias '${aliasName}' of function '${name}'`,
    );
  return [
    {
      method: 'POST',
      path: '/functions/{name}/aliases',
      roles: ['Developer', 'Admin'],
      rateLimit: 20,
      body: createAliasBody,
      summary: 'Create aliases',
      responses: {
        201: {
          description: 'The alias',
          body: alias,
          links: linksTo(['getAliases', 'updateAliases', 'deleteAliases'], {
            name: '$response.body#/functionName',
            alias: '$response.body#/aliasName',
          }),
        },
      },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, body, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const input = body as AliasInput;
        await functions.createAlias(name, input, metadata);
        return { status: 201, body: await load(name, input.aliasName) };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/aliases',
      roles: ALL_ROLES,
      rateLimit: 60,
      query: pageQuery,
      summary: 'List aliases',
      responses: { 200: { description: 'A page of aliases, by name', body: aliasList } },
      errors: ['NOT_FOUND'],
      async handle({ params, query }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const { limit, offset } = query as { limit: number; offset: number };
        const page = await readStore.find(COLLECTIONS.aliases, {
          where: { functionName: name },
          sortBy: 'aliasName',
          limit,
          offset,
        });
        return {
          status: 200,
          body: { functionName: name, aliases: documents<AliasDocument>(page.items), total: page.total, limit, offset },
        };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/aliases/{alias}',
      roles: ALL_ROLES,
      rateLimit: 60,
      summary: 'Get aliases',
      responses: { 200: { description: 'The alias', body: alias } },
      errors: ['NOT_FOUND'],
      async handle({ params }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        return { status: 200, body: await load(name, param(params, 'alias')) };
      },
    },
    {
      method: 'PUT',
      path: '/functions/{name}/aliases/{alias}',
      roles: ['Operator', 'Admin'],
      rateLimit: 20,
      body: updateAliasBody,
      summary: 'Update aliases',
      description: 'Points the alias at another version, or splits its traffic between versions (`routingConfig`).',
      responses: { 200: { description: 'The alias', body: alias } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, body, metadata }) {
        const name = param(params, 'name');
        const aliasName = param(params, 'alias');
        await activeFunction(readStore, name);
        await functions.updateAlias(name, { ...(body as Omit<AliasInput, 'aliasName'>), aliasName }, metadata);
        return { status: 200, body: await load(name, aliasName) };
      },
    },
    {
      method: 'DELETE',
      path: '/functions/{name}/aliases/{alias}',
      roles: ['Operator', 'Admin'],
      rateLimit: 10,
      summary: 'Delete aliases',
      responses: { 204: { description: 'Deleted' } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        await functions.deleteAlias(name, param(params, 'alias'), metadata);
        return { status: 204 };
      },
    },
  ];
};
