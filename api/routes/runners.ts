import type { RunnerHeartbeat } from '../../domain/invocation/messages.ts';
import type { ReadStore } from '../../domain/ports.ts';
import { RUNNERS_COLLECTION, runnerDetails, runnerSummary } from '../../projections/runners.ts';
import type { Endpoint } from '../endpoint.ts';
import { runnerDetail, runnerList } from '../responses.ts';
import { pageQuery } from '../schemas.ts';
import { documentOr404, documents, param } from './common.ts';

export const runnerEndpoints = (readStore: ReadStore, now: () => Date): Endpoint[] => [
  {
    method: 'GET',
    path: '/runners',
    roles: ['Admin', 'Viewer'],
    rateLimit: 60,
    query: pageQuery,
    summary: 'List runners',
    responses: { 200: { description: 'A page of runner nodes, by node id', body: runnerList } },
    async handle({ query }) {
      const { limit, offset } = query as { limit: number; offset: number };
      const page = await readStore.find(RUNNERS_COLLECTION, { sortBy: 'nodeId', limit, offset });
      const at = now();
      return {
        status: 200,
        body: {
          runners: documents<RunnerHeartbeat>(page.items).map((heartbeat) => runnerSummary(heartbeat, at)),
          total: page.total,
        },
      };
    },
  },
  {
    method: 'GET',
    path: '/runners/{nodeId}',
    roles: ['Admin', 'Viewer'],
    rateLimit: 60,
    summary: 'Get runners',
    responses: { 200: { description: 'The runner node', body: runnerDetail } },
    errors: ['NOT_FOUND'],
    async handle({ params }) {
      const nodeId = param(params, 'nodeId');
      const heartbeat = await documentOr404<RunnerHeartbeat>(
        readStore,
        RUNNERS_COLLECTION,
        nodeId,
        `Runner '${nodeId}'`,
      );
      return { status: 200, body: runnerDetails(heartbeat, now()) };
    },
  },
];
