import type { FunctionCommands, PublishVersionInput } from '../../commands/functions.ts';
import type { ReadStore } from '../../domain/ports.ts';
import { COLLECTIONS, type VersionDocument, versionId } from '../../projections/documents.ts';
import { ALL_ROLES, type Endpoint, linksTo } from '../endpoint.ts';
import { ApiError } from '../errors.ts';
import { readRawBody } from '../middleware/body.ts';
import { versionDetail, versionList, versionPublished } from '../responses.ts';
import { pageQuery, publishVersionBody, publishVersionQuery } from '../schemas.ts';
import { activeFunction, documentOr404, documents, param, parseVersion } from './common.ts';
import { codeBytes, codeUpload, MAX_CODE_BYTES, VERSION_BODY_LIMIT, versionBodyReader } from './versionBody.ts';

interface VersionFields {
  readonly description?: string;
  readonly environment?: Record<string, string>;
}

const fieldsOf = ({ description, environment }: VersionFields): VersionFields => ({
  ...(description === undefined ? {} : { description }),
  ...(environment === undefined ? {} : { environment }),
});

export interface VersionRoutesOptions {
  readonly readStore: ReadStore;
  readonly functions: FunctionCommands;
  readonly invocationCount?: (name: string, version: number) => Promise<number>;
}

export const versionEndpoints = ({ readStore, functions, invocationCount }: VersionRoutesOptions): Endpoint[] => {
  const count = async (name: string, version: number) => (await invocationCount?.(name, version)) ?? 0;
  const load = (name: string, version: number) =>
    documentOr404<VersionDocument>(
      readStore,
      COLLECTIONS.versions,
      versionId(name, version),
      `Version ${version} of function '${name}'`,
    );
  return [
    {
      method: 'POST',
      path: '/functions/{name}/versions',
      roles: ['Developer', 'Admin'],
      rateLimit: 20,
      body: publishVersionBody,
      bodyLimit: VERSION_BODY_LIMIT,
      parseBody: versionBodyReader(() => functions.uploadCode()),
      rawBody: {
        mediaType: 'application/zip',
        limit: MAX_CODE_BYTES,
        schema: { type: 'string', contentMediaType: 'application/zip' },
      },
      query: publishVersionQuery,
      summary: 'Publish versions',
      description: [
        'Publishes an immutable version from `code`, the strict base64 of a ZIP of at most 50 MB, snapshotting the configuration with `environment` merged over it.',
        'Or send the ZIP itself as the body, with `Content-Type: application/zip` (at most 50 MB) and `description` and `environment[NAME]=value` in the query: it is stored while it arrives. Its errors are those of the JSON form.',
      ].join('\n\n'),
      responses: {
        201: {
          description: 'The version',
          body: versionPublished,
          links: linksTo(['getVersions', 'deleteVersions'], {
            name: '$response.body#/functionName',
            version: '$response.body#/version',
          }),
        },
      },
      errors: ['NOT_FOUND', 'CONFLICT', 'INVALID_CODE_PACKAGE'],
      async handle({ params, body, query, raw, ctx, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const fields = fieldsOf(query as VersionFields);
        let input: PublishVersionInput;
        if (raw) {
          const upload = functions.uploadCode();
          try {
            const code = await readRawBody(ctx, MAX_CODE_BYTES, (chunk) => upload.write(chunk));
            input = { code, upload, ...fields };
          } catch (error) {
            await upload.discard();
            throw error;
          }
        } else {
          const given = Object.keys(fields);
          if (given.length > 0) {
            throw new ApiError(
              'VALIDATION_ERROR',
              'Request query validation failed',
              given.map((field) => ({
                field,
                message: `With a JSON body, give ${field} in the body (the query carries it with Content-Type: application/zip only)`,
              })),
            );
          }
          const json = body as VersionFields & { readonly code: string };
          const upload = codeUpload(json);
          input = { code: codeBytes(json), ...(upload === undefined ? {} : { upload }), ...fieldsOf(json) };
        }
        const version = await functions.publishVersion(name, input, metadata);
        const doc = await load(name, version);
        return {
          status: 201,
          body: {
            functionName: doc.functionName,
            version: doc.version,
            versionString: doc.versionString,
            description: doc.description,
            codeSha256: doc.codeSha256,
            codeSize: doc.codeSize,
            codeLocation: doc.codeLocation,
            runtime: doc.runtime,
            handler: doc.handler,
            createdAt: doc.createdAt,
            createdBy: doc.createdBy,
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/versions',
      roles: ALL_ROLES,
      rateLimit: 60,
      query: pageQuery,
      summary: 'List versions',
      responses: { 200: { description: 'A page of versions, newest first', body: versionList } },
      errors: ['NOT_FOUND'],
      async handle({ params, query }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const { limit, offset } = query as { limit: number; offset: number };
        const page = await readStore.find(COLLECTIONS.versions, {
          where: { functionName: name },
          sortBy: 'version',
          descending: true,
          limit,
          offset,
        });
        const versions = await Promise.all(
          documents<VersionDocument>(page.items).map(async (doc) => ({
            version: doc.version,
            versionString: doc.versionString,
            description: doc.description,
            codeSha256: doc.codeSha256,
            invocationCount: await count(name, doc.version),
            createdAt: doc.createdAt,
          })),
        );
        return { status: 200, body: { functionName: name, versions, total: page.total, limit, offset } };
      },
    },
    {
      method: 'GET',
      path: '/functions/{name}/versions/{version}',
      roles: ALL_ROLES,
      rateLimit: 60,
      summary: 'Get versions',
      responses: { 200: { description: 'The version', body: versionDetail } },
      errors: ['NOT_FOUND', 'VALIDATION_ERROR'],
      async handle({ params }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        const doc = await load(name, parseVersion(params.version));
        return { status: 200, body: { ...doc, invocationCount: await count(name, doc.version) } };
      },
    },
    {
      method: 'DELETE',
      path: '/functions/{name}/versions/{version}',
      roles: ['Developer', 'Admin'],
      rateLimit: 10,
      summary: 'Delete versions',
      description: 'Deletes a version no alias routes to. Its number is never given again.',
      responses: { 204: { description: 'Deleted' } },
      errors: ['NOT_FOUND', 'VALIDATION_ERROR', 'CONFLICT'],
      async handle({ params, metadata }) {
        const name = param(params, 'name');
        await activeFunction(readStore, name);
        await functions.deleteVersion(name, parseVersion(params.version), metadata);
        return { status: 204 };
      },
    },
  ];
};
