import test, { type ExecutionContext } from 'ava';
import { uniqueName } from '../api/support.ts';
import { ADMIN, type Client, createClient } from '../support/platform.ts';
import { kill, startServer, temporaryDirectory } from '../support/server.ts';
import {
  awaitHealthyRunners,
  deploy,
  eventually,
  finalRecord,
  handlerCode,
  type InvocationRecord,
  invokeAsync,
  startInvocationPlatform,
} from './support.ts';

// Nothing accepted is lost: async invocations survive a runner killed mid-work, and the whole platform
// killed right after it answered 202.

/** Waits `event.ms` on a timer, then answers with its input. */
const NAP = handlerCode('await new Promise((resolve) => setTimeout(resolve, event.ms)); return event.n;');

const allSucceeded = async (
  t: ExecutionContext,
  client: Client,
  name: string,
  accepted: readonly string[],
): Promise<InvocationRecord[]> => {
  const records = await Promise.all(accepted.map((requestId) => finalRecord(client, name, requestId, 60_000)));
  t.deepEqual(
    records.map((record) => record.status),
    accepted.map(() => 'Succeeded'),
  );
  t.deepEqual(
    records.map((record) => Number(record.body)),
    accepted.map((_, n) => n),
    'each request ran with its own payload',
  );
  return records;
};

test('async invocations running on a runner killed with SIGKILL all succeed after its restart', async (t) => {
  const strata = await startInvocationPlatform({}, { runners: 1 });
  t.teardown(() => strata.stop());
  const { admin, platform } = strata;
  const name = uniqueName('survivor');
  await deploy(t, admin, name, NAP, { asyncRetries: 0 });
  const [pid] = platform.runnerPids();
  if (pid === undefined) throw new Error('no runner process');

  const N = 30;
  const accepted: string[] = [];
  for (let n = 0; n < N; n += 1) accepted.push(await invokeAsync(t, admin, name, { payload: { n, ms: 1_500 } }));
  // Kill once the runner has sandboxes up: the invocations are running.
  await eventually('the runner to be working', async () => {
    const runner = await admin.request<{ health: { activeContainers: number } }>('GET', '/api/v1/runners/runner-1');
    return runner.body.health.activeContainers > 0 ? true : undefined;
  });
  const killedAt = new Date().toISOString();
  process.kill(pid, 'SIGKILL');

  const records = await allSucceeded(t, admin, name, accepted);
  t.true(
    records.some((record) => (record.completedAt ?? '') > killedAt),
    'some invocations were interrupted by the kill and finished after it',
  );
  const [restarted] = platform.runnerPids();
  t.true(restarted !== undefined && restarted !== pid, 'the supervisor started a new runner process');
  await awaitHealthyRunners(admin, 1);
});

test('async invocations accepted just before the whole platform is killed with SIGKILL all succeed after a restart', async (t) => {
  const dataDir = await temporaryDirectory(t, 'strata-invocations-crash-');
  // Info-level logs: the URL is read from the 'Strata API listening' line.
  const env = { STRATA_HEARTBEAT_INTERVAL: 'PT0.2S' };
  const first = await startServer(t, dataDir, env);
  const anonymous = createClient(first.url);
  const admin = createClient(first.url, await anonymous.login(ADMIN.username, ADMIN.password));
  const name = uniqueName('durable');
  await deploy(t, admin, name, NAP, { asyncRetries: 0 });
  await awaitHealthyRunners(admin, 1);

  const N = 20;
  const accepted = await Promise.all(
    Array.from({ length: N }, (_, n) => invokeAsync(t, admin, name, { payload: { n, ms: 2_000 } })),
  );
  const killedAt = new Date().toISOString();
  await kill(first);

  const second = await startServer(t, dataDir, env);
  const restarted = createClient(second.url, await createClient(second.url).login(ADMIN.username, ADMIN.password));
  const records = await allSucceeded(t, restarted, name, accepted);
  t.true(
    records.some((record) => (record.completedAt ?? '') > killedAt),
    'the kill came before the invocations finished',
  );
});
