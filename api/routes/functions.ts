import type { FunctionCommands } from '../../commands/functions.ts';
import type { ConfigurationChanges } from '../../domain/function/decider.ts';
import type { FunctionConfiguration } from '../../domain/function/events.ts';
import type { ReadStore, Scalar } from '../../domain/ports.ts';
import { COLLECTIONS, type FunctionDocument, tagIndexKey } from '../../projections/documents.ts';
import { ALL_ROLES, type Endpoint, linksTo } from '../endpoint.ts';
import { functionCreated, functionDetail, functionList, functionUpdated } from '../responses.ts';
import { createFunctionBody, listFunctionsQuery, updateFunctionBody } from '../schemas.ts';
import { activeFunction, documents, param, pick } from './common.ts';

export interface FunctionRoutesOptions {
  readonly readStore: ReadStore;
  readonly functions: FunctionCommands;
  /** Invocation totals of a function; zero until the invocation plane reports. */
  readonly invocationStats?: (name: string) => Promise<{ totalInvocations: number; lastInvokedAt: string | null }>;
}

const CONFIG_FIELDS = [
  'description',
  'runtime',
  'handler',
  'memorySize',
  'timeout',
  'concurrencyLimit',
  'asyncRetries',
  'maxEventAgeSeconds',
] as const;

export const functionEndpoints = ({ readStore, functions, invocationStats }: FunctionRoutesOptions): Endpoint[] => {
  const stats = async (name: string) => (await invocationStats?.(name)) ?? { totalInvocations: 0, lastInvokedAt: null };
  return [
    {
      method: 'POST',
      path: '/functions',
      roles: ['Developer', 'Admin'],
      rateLimit: 20,
      body: createFunctionBody,
      summary: 'Create functions',
      responses: {
        201: {
          description: 'The function',
          body: functionCreated,
          links: linksTo(
            [
              'getFunctions',
              'updateFunctions',
              'deleteFunctions',
              'publishVersions',
              'listVersions',
              'createAliases',
              'listAliases',
              'invokeFunctions',
              'invokeFunctionsAsynchronously',
              'getFunctionMetrics',
            ],
            { name: '$response.body#/name' },
          ),
        },
      },
      errors: ['CONFLICT'],
      async handle({ body, metadata }) {
        const input = body as FunctionConfiguration & { name: string };
        await functions.create(input, metadata);
        const doc = await activeFunction(readStore, input.name);
        return {
          status: 201,
          body: {
            name: doc.name,
            ...pick(doc, CONFIG_FIELDS),
            tags: doc.tags,
            publishedVersion: doc.publishedVersion,
            ownerId: doc.ownerId,
            createdAt: doc.createdAt,
            updatedAt: doc.updatedAt,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/functions',
      roles: ALL_ROLES,
      rateLimit: 60,
      query: listFunctionsQuery,
      summary: 'List functions',
      responses: { 200: { description: 'A page of active functions, by name', body: functionList } },
      async handle({ query }) {
        const { runtime, tag, limit, offset } = query as {
          runtime?: string;
          tag?: string;
          limit: number;
          offset: number;
        };
        const where: Record<string, Scalar> = { status: 'Active' };
        if (runtime !== undefined) where.runtime = runtime;
        if (tag !== undefined) {
          const split = tag.indexOf(':');
          where[`tagIndex.${tagIndexKey(tag.slice(0, split))}`] = tag.slice(split + 1);
        }
        const page = await readStore.find(COLLECTIONS.functions, { where, sortBy: 'name', limit, offset });
        const items = await Promise.all(
          documents<FunctionDocument>(page.items).map(async (doc) => ({
            name: doc.name,
            description: doc.description,
            runtime: doc.runtime,
            memorySize: doc.memorySize,
            publishedVersion: doc.publishedVersion,
            tags: doc.tags,
            ...(await stats(doc.name)),
            createdAt: doc.createdAt,
          })),
        );
        return { status: 200, body: { functions: items, total: page.total, limit, offset } };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}',
      roles: ALL_ROLES,
      rateLimit: 60,
      summary: 'Get functions',
      responses: { 200: { description: 'The function', body: functionDetail } },
      errors: ['NOT_FOUND'],
      async handle({ params }) {
        const doc = await activeFunction(readStore, param(params, 'name'));
        return {
          status: 200,
          body: {
            name: doc.name,
            ...pick(doc, CONFIG_FIELDS),
            environment: doc.environment,
            tags: doc.tags,
            publishedVersion: doc.publishedVersion,
            latestVersion: doc.latestVersion === null ? null : `v${doc.latestVersion}`,
            ownerId: doc.ownerId,
            ...(await stats(doc.name)),
            createdAt: doc.createdAt,
            updatedAt: doc.updatedAt,
          },
        };
      },
    },
    {
      method: 'PUT',
      path: '/functions/{name}',
      roles: ['Developer', 'Admin'],
      rateLimit: 20,
      body: updateFunctionBody,
      summary: 'Update functions',
      description:
        'Changes any configuration field, or `publishedVersion` (the version used when no alias or version is named). Changes apply to versions published afterwards.',
      responses: { 200: { description: 'The function', body: functionUpdated } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, body, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const { publishedVersion, ...changes } = body as ConfigurationChanges & {
          publishedVersion?: number | string | null;
        };
        await functions.update(
          name,
          {
            ...changes,
            ...(publishedVersion === undefined
              ? {}
              : {
                  publishedVersion:
                    publishedVersion === null ? null : Number(String(publishedVersion).replace(/^v/, '')),
                }),
          },
          metadata,
        );
        const doc = await activeFunction(readStore, name);
        return {
          status: 200,
          body: {
            name: doc.name,
            ...pick(doc, CONFIG_FIELDS),
            environment: doc.environment,
            tags: doc.tags,
            publishedVersion: doc.publishedVersion,
            updatedAt: doc.updatedAt,
          },
        };
      },
    },
    {
      method: 'DELETE',
      path: '/functions/{name}',
      roles: ['Admin'],
      rateLimit: 10,
      summary: 'Delete functions',
      description: 'Deletes the function; its name stays reserved for the retention period, then it is purged.',
      responses: { 204: { description: 'Deleted' } },
      errors: ['NOT_FOUND', 'CONFLICT'],
      async handle({ params, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        await functions.delete(name, metadata);
        return { status: 204 };
      },
    },
  ];
};
