import type { PlainRoute } from '../openapi.ts';
import { health } from '../responses.ts';

export interface HealthProbe {
  readonly name: string;
  check(): Promise<void>;
}

/** `GET /health`, without authentication: 200 when every probe answers, else 503. */
export const healthReply = async (probes: readonly HealthProbe[], startedAt: Date) => {
  const checks: Record<string, string> = {};
  let healthy = true;
  for (const probe of probes) {
    try {
      await probe.check();
      checks[probe.name] = 'ok';
    } catch (error) {
      healthy = false;
      checks[probe.name] = `unavailable: ${(error as Error).message}`;
    }
  }
  return {
    status: healthy ? 200 : 503,
    body: { status: healthy ? 'ok' : 'degraded', checks, startedAt: startedAt.toISOString() },
  };
};

export const HEALTH_ROUTE: PlainRoute = {
  method: 'GET',
  path: '/health',
  summary: 'Check health',
  description: 'Whether the backing stores answer. Needs no token.',
  responses: {
    200: { description: 'Every store answers', content: { 'application/json': health } },
    503: { description: 'A store does not answer', content: { 'application/json': health } },
  },
};
