import { setTimeout as sleep } from 'node:timers/promises';
import anyTest, { type TestFn } from 'ava';
import { TOPICS } from '../../domain/invocation/messages.ts';
import { loadConfig } from '../../infra/config.ts';
import { silentLogger } from '../../infra/logger.ts';
import { startRunner } from '../../infra/runner.ts';
import { INVOCATION_COLLECTIONS } from '../../projections/invocations.ts';
import { assertError, isIsoTimestamp, uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  deploy,
  eventually,
  FAST_ENV,
  finalRecord,
  HELLO,
  handlerCode,
  invokeAsync,
  startInvocationPlatform,
} from './support.ts';

interface DeadLetter {
  readonly reason: string;
  readonly requestId: string | null;
  readonly topic: string;
  readonly original: string;
  readonly failedAt: string;
  readonly headers: Readonly<Record<string, string>>;
}

interface DeadLetters {
  of(requestId: string): Promise<DeadLetter>;
  close(): Promise<void>;
}

/**
 * Reads the dead-letter topic from its start with a group of its own. One reader per platform, joined
 * before any letter is written: the bus deletes a message once every group has handled it, so a group
 * joining later would not see letters other groups had read.
 */
const readDeadLetters = async (strata: TestPlatform): Promise<DeadLetters> => {
  const letters = new Map<string, DeadLetter>();
  const consumer = await strata.platform.bus.consume(
    { topic: TOPICS.deadLetters, group: uniqueName('dead-letter-reader'), from: 'earliest' },
    async (message) => {
      const letter = JSON.parse(message.value) as Omit<DeadLetter, 'headers'>;
      if (letter.requestId !== null) letters.set(letter.requestId, { ...letter, headers: message.headers ?? {} });
    },
  );
  return {
    of: (requestId) => eventually(`the dead letter of ${requestId}`, async () => letters.get(requestId)),
    close: () => consumer.close(),
  };
};

interface Platform {
  readonly strata: TestPlatform;
  readonly deadLetters: DeadLetters;
}

interface Context {
  /** One runner process. */
  readonly busy: Platform;
  /** No runner, except while a serial test runs one. */
  readonly idle: Platform;
}

const test = anyTest as TestFn<Context>;

const withDeadLetters = async (strata: TestPlatform): Promise<Platform> => ({
  strata,
  deadLetters: await readDeadLetters(strata),
});

test.before(async (t) => {
  const [busy, idle] = await Promise.all([
    startInvocationPlatform().then(withDeadLetters),
    startInvocationPlatform({}, { runners: 0 }).then(withDeadLetters),
  ]);
  t.context = { busy, idle };
});

test.after.always(async (t) => {
  await Promise.all(
    [t.context.busy, t.context.idle].map(async (platform) => {
      await platform?.deadLetters.close();
      await platform?.strata.stop();
    }),
  );
});

const FAILING = handlerCode('console.log("attempt"); throw new TypeError("cannot handle " + event.id);');

test('an async invoke answers 202 Queued and its record ends Succeeded with the result', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('async');
  await deploy(t, admin, name, HELLO);
  const requestId = await invokeAsync(t, admin, name, { payload: JSON.stringify({ name: 'Grace' }) });
  t.regex(requestId, /^\S+$/);
  const record = await finalRecord(admin, name, requestId);
  t.like(record, {
    requestId,
    functionName: name,
    version: 'v1',
    invocationType: 'Event',
    status: 'Succeeded',
    outcome: 'success',
    statusCode: 200,
    body: '{"hello":"Grace"}',
    error: null,
    attempts: 1,
    wasColdStart: true,
  });
  t.true((record.billedDuration ?? 0) >= 100);
  t.true(isIsoTimestamp(record.completedAt));
});

test('invocationType Event on /invoke queues like /invoke-async', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('event');
  await deploy(t, admin, name, HELLO);
  const response = await admin.request<{ requestId: string; status: string }>(
    'POST',
    `/api/v1/functions/${name}/invoke`,
    { body: { invocationType: 'Event', payload: { name: 'Ada' } } },
  );
  t.is(response.status, 202);
  t.is(response.body.status, 'Queued');
  t.like(await finalRecord(admin, name, response.body.requestId), { status: 'Succeeded', body: '{"hello":"Ada"}' });
});

test('the logs of an invocation are its console lines with levels and timestamps', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('logs');
  await deploy(
    t,
    admin,
    name,
    handlerCode(
      'console.log("processing %s", event.item); console.info({ step: 2 }); console.warn("almost"); console.error(new RangeError("not fatal").message); console.debug("done"); return "ok";',
    ),
  );
  const requestId = await invokeAsync(t, admin, name, { payload: { item: 'photo.jpg' } });
  t.like(await finalRecord(admin, name, requestId), { status: 'Succeeded' });
  const response = await admin.request<{
    requestId: string;
    functionName: string;
    version: string;
    truncated: boolean;
    logs: { timestamp: string; level: string; message: string }[];
  }>('GET', `/api/v1/functions/${name}/invocations/${requestId}/logs`);
  t.is(response.status, 200);
  t.like(response.body, { requestId, functionName: name, version: 'v1', truncated: false });
  t.deepEqual(
    response.body.logs.map(({ level, message }) => [level, message]),
    [
      ['INFO', 'processing photo.jpg'],
      ['INFO', '{ step: 2 }'],
      ['WARN', 'almost'],
      ['ERROR', 'not fatal'],
      ['DEBUG', 'done'],
    ],
  );
  for (const line of response.body.logs) t.true(isIsoTimestamp(line.timestamp), line.timestamp);
  const times = response.body.logs.map((line) => line.timestamp);
  t.deepEqual([...times].sort(), times, 'in the order they were written');
});

test('logs past 256 KB are cut, marked truncated, and the invocation still succeeds', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('chatty');
  await deploy(
    t,
    admin,
    name,
    handlerCode('for (let i = 0; i < 400; i++) console.log(String(i).padEnd(1024, "x")); return "said it all";'),
  );
  const requestId = await invokeAsync(t, admin, name);
  t.like(await finalRecord(admin, name, requestId), { status: 'Succeeded', body: '"said it all"' });
  const response = await admin.request<{ truncated: boolean; logs: { level: string; message: string }[] }>(
    'GET',
    `/api/v1/functions/${name}/invocations/${requestId}/logs`,
  );
  t.true(response.body.truncated);
  const bytes = response.body.logs.slice(0, -1).reduce((sum, line) => sum + Buffer.byteLength(line.message), 0);
  t.true(bytes <= 256 * 1024, `${bytes} bytes kept`);
  t.true(response.body.logs.length > 200 && response.body.logs.length < 400);
  t.like(response.body.logs.at(-1), { level: 'WARN' });
  t.regex(response.body.logs.at(-1)?.message ?? '', /truncated/);
});

test('an invocation or its logs under another function, or unknown, is a 404', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('owner');
  const other = uniqueName('other');
  await deploy(t, admin, name, HELLO);
  await deploy(t, admin, other, HELLO);
  const requestId = await invokeAsync(t, admin, name);
  await finalRecord(admin, name, requestId);
  t.is((await admin.request('GET', `/api/v1/functions/${other}/invocations/${requestId}`)).status, 404);
  t.is((await admin.request('GET', `/api/v1/functions/${other}/invocations/${requestId}/logs`)).status, 404);
  t.is((await admin.request('GET', `/api/v1/functions/${name}/invocations/req-unknown`)).status, 404);
});

test('a failing function with asyncRetries 2 is attempted 3 times, then dead-lettered with the reason', async (t) => {
  const { strata, deadLetters } = t.context.busy;
  const name = uniqueName('retried');
  await deploy(t, strata.admin, name, FAILING, { asyncRetries: 2 });
  const requestId = await invokeAsync(t, strata.admin, name, { payload: { id: 7 } });
  const record = await finalRecord(strata.admin, name, requestId);
  t.like(record, {
    status: 'DeadLettered',
    outcome: 'functionError',
    statusCode: 500,
    attempts: 3,
    error: { type: 'TypeError', message: 'cannot handle 7' },
  });
  const letter = await deadLetters.of(requestId);
  t.is(letter.topic, TOPICS.invocations);
  t.regex(letter.reason, /functionError after 3 attempt/);
  t.is(letter.headers['strata-dead-letter-reason'], letter.reason);
  t.like(JSON.parse(letter.original), { requestId, functionName: name, payload: '{"id":7}' });
  t.true(isIsoTimestamp(letter.failedAt));
});

test('with asyncRetries 0 a failing function is attempted once', async (t) => {
  const { strata, deadLetters } = t.context.busy;
  const name = uniqueName('once');
  await deploy(t, strata.admin, name, FAILING, { asyncRetries: 0 });
  const requestId = await invokeAsync(t, strata.admin, name, { payload: { id: 1 } });
  t.like(await finalRecord(strata.admin, name, requestId), {
    status: 'DeadLettered',
    outcome: 'functionError',
    attempts: 1,
  });
  t.regex((await deadLetters.of(requestId)).reason, /functionError after 1 attempt/);
});

test('a function that fails once and then works succeeds on its retry', async (t) => {
  const { admin } = t.context.busy.strata;
  const name = uniqueName('flaky');
  // Module state survives in the warm sandbox between attempts.
  await deploy(
    t,
    admin,
    name,
    handlerCode(
      'globalThis.calls = (globalThis.calls ?? 0) + 1; if (globalThis.calls === 1) throw new Error("first call fails"); return globalThis.calls;',
    ),
    {
      asyncRetries: 2,
    },
  );
  const requestId = await invokeAsync(t, admin, name);
  t.like(await finalRecord(admin, name, requestId), { status: 'Succeeded', attempts: 2, body: '2' });
});

test('a timeout is retried too, and ends dead-lettered as timed out', async (t) => {
  const { strata, deadLetters } = t.context.busy;
  const name = uniqueName('slowly');
  await deploy(t, strata.admin, name, handlerCode('while (true) {}'), { asyncRetries: 1, timeout: 1 });
  const requestId = await invokeAsync(t, strata.admin, name);
  t.like(await finalRecord(strata.admin, name, requestId), {
    status: 'DeadLettered',
    outcome: 'timeout',
    attempts: 2,
    error: { type: 'Timeout' },
  });
  t.regex((await deadLetters.of(requestId)).reason, /timeout after 2 attempt/);
});

// The tests on the platform without runners start one each: serial, so that one runner never takes the
// other test's requests.

test.serial(
  'requests wait for a runner; one whose function was deleted meanwhile is dead-lettered as ResourceNotFound',
  async (t) => {
    const { strata: idle, deadLetters } = t.context.idle;
    const { admin } = idle;
    const kept = uniqueName('kept');
    const deleted = uniqueName('deleted');
    await deploy(t, admin, kept, HELLO);
    await deploy(t, admin, deleted, HELLO);
    const keptRequest = await invokeAsync(t, admin, kept, { payload: { name: 'later' } });
    const deletedRequest = await invokeAsync(t, admin, deleted);
    const queued = await admin.request('GET', `/api/v1/functions/${deleted}/invocations/${deletedRequest}`);
    t.like(queued.body, { status: 'Queued', attempts: 0, outcome: null });
    t.is((await admin.request('DELETE', `/api/v1/functions/${deleted}`)).status, 204);

    const runner = await startRunner(loadConfig({ ...FAST_ENV, STRATA_DATA_DIR: idle.dataDir }), silentLogger());
    t.teardown(() => runner.close());

    t.like(await finalRecord(admin, kept, keptRequest), { status: 'Succeeded', body: '{"hello":"later"}' });
    const letter = await deadLetters.of(deletedRequest);
    t.regex(letter.reason, new RegExp(`Function '${deleted}' not found`));
    // The function answers 404 everywhere, its invocations too; the record stays for the retention.
    const record = await eventually('the record of the dead-lettered request', async () => {
      const stored = await idle.platform.readStore.get(INVOCATION_COLLECTIONS.records, deletedRequest);
      return stored?.status === 'Queued' ? undefined : (stored ?? undefined);
    });
    t.like(record, {
      status: 'DeadLettered',
      outcome: 'platformError',
      attempts: 0,
      error: { type: 'ResourceNotFound' },
    });
    for (const path of [`invocations/${deletedRequest}`, `invocations/${deletedRequest}/logs`]) {
      const response = await admin.request('GET', `/api/v1/functions/${deleted}/${path}`);
      assertError(t, response, 404, 'NOT_FOUND');
    }
  },
);

test.serial('a request older than the maximum event age when a runner takes it is dead-lettered', async (t) => {
  const { strata: idle, deadLetters } = t.context.idle;
  const { admin } = idle;
  const name = uniqueName('stale');
  await deploy(t, admin, name, HELLO);
  const requestId = await invokeAsync(t, admin, name);
  await sleep(1_200);

  const config = loadConfig({ ...FAST_ENV, STRATA_DATA_DIR: idle.dataDir, STRATA_MAX_EVENT_AGE: 'PT1S' });
  const runner = await startRunner(config, silentLogger());
  t.teardown(() => runner.close());

  t.like(await finalRecord(admin, name, requestId), {
    status: 'DeadLettered',
    outcome: 'platformError',
    attempts: 0,
    error: { type: 'EventAgeExceeded' },
  });
  t.regex((await deadLetters.of(requestId)).reason, /Maximum event age of 1 s exceeded after 0 attempt/);
});

test('with no runner up, a sync invoke answers 503 once the function’s timeout and 10 s have passed', async (t) => {
  const { admin } = t.context.idle.strata;
  const name = uniqueName('unanswered');
  await deploy(t, admin, name, HELLO, { timeout: 1 });
  const response = await admin.request('POST', `/api/v1/functions/${name}/invoke`, { body: {} });
  const error = assertError(t, response, 503, 'SERVICE_UNAVAILABLE');
  t.regex(error.message, /No runner answered/);
});
