import { randomBytes } from 'node:crypto';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import kafkajs from 'kafkajs';
import { MongoClient } from 'mongodb';
import { isIsoTimestamp, uniqueName } from '../api/support.ts';
import { ADMIN, type Client, createClient, type TestPlatform, zipBase64 } from '../support/platform.ts';
import {
  awaitHealthyRunners,
  eventually,
  finalRecord,
  type InvokeResponse,
  type Metrics,
  metricsWhen,
  startInvocationPlatform,
} from '../invocations/support.ts';

// The whole flow a user walks, over HTTP, on the backing services scripts/services.sh runs (Kafka for the
// invocation bus, FerretDB for read models and code): .ci/run starts them and exports both variables.
const brokers = process.env.STRATA_KAFKA_BROKERS;
const mongoUrl = process.env.STRATA_MONGODB_URL;
// STRATA_SERVICES_REQUIRED=1 (set by .ci/run) turns a missing variable into a failure instead of a skip.
const required = process.env.STRATA_SERVICES_REQUIRED === '1';

interface Context {
  readonly strata: TestPlatform;
}

const test = anyTest as TestFn<Context>;

/** The connection string with its database replaced: this run's read models and code sit apart from others'. */
const withDatabase = (url: string, database: string): string => {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(url);
  if (match === null) throw new Error(`not a MongoDB connection string: ${url}`);
  return `${match[1]}/${database}${match[2] ?? ''}`;
};

/** Version `label`'s package: answers with its label, the greeting and the name; fails when asked to. */
const versionCode = (label: string): string =>
  zipBase64({
    'index.js': `exports.handler = async (event, context) => {
  console.log(\`${label} greets \${event.name ?? 'world'} in \${context.requestId}\`);
  if (event.fail) throw new Error('asked to fail');
  return { statusCode: 200, body: JSON.stringify({ version: '${label}', message: \`\${process.env.GREETING}, \${event.name ?? 'world'}\` }) };
};
`,
  });

interface Logs {
  readonly requestId: string;
  readonly functionName: string;
  readonly version: string | null;
  readonly status: string;
  readonly truncated: boolean;
  readonly logs: readonly { readonly timestamp: string; readonly level: string; readonly message: string }[];
}

interface RunnerDetails {
  readonly nodeId: string;
  readonly health: { readonly isHealthy: boolean; readonly activeContainers: number };
  readonly metrics: {
    readonly totalInvocations: number;
    readonly successfulInvocations: number;
    readonly failedInvocations: number;
    readonly coldStarts: number;
  };
  readonly activeContainers: Readonly<Record<string, string>>;
}

const ok = async <T>(t: ExecutionContext, what: string, call: Promise<{ status: number; body: T }>, status = 200) => {
  const response = await call;
  if (response.status !== status) {
    t.fail(`${what}: expected ${status}, got ${response.status} ${JSON.stringify(response.body)}`);
    throw new Error(`${what} failed`);
  }
  return response.body;
};

/** Logs of an invocation, once its record is written (records come from the results topic). */
const logsOf = (client: Client, name: string, requestId: string): Promise<Logs> =>
  eventually(`the logs of ${requestId}`, async () => {
    const response = await client.request<Logs>('GET', `/api/v1/functions/${name}/invocations/${requestId}/logs`);
    return response.status === 200 ? response.body : undefined;
  });

function unset(value: string | undefined): value is undefined {
  return value === undefined || value === '';
}

if (unset(brokers) || unset(mongoUrl)) {
  const variable = unset(brokers) ? 'STRATA_KAFKA_BROKERS' : 'STRATA_MONGODB_URL';
  if (required) {
    test(`end-to-end flow on Kafka and MongoDB (${variable} is not set but STRATA_SERVICES_REQUIRED=1)`, (t) => {
      t.fail(`${variable} is not set: run scripts/services.sh start and eval "$(scripts/services.sh env)"`);
    });
  } else {
    console.warn(
      `NOTICE: the end-to-end flow on Kafka and MongoDB is skipped: ${variable} is not set (scripts/services.sh start)`,
    );
    test.skip('a user walks the whole flow on Kafka and MongoDB (set STRATA_KAFKA_BROKERS and STRATA_MONGODB_URL)', () => {});
  }
} else {
  // Topics, groups and the database are this run's own: other runs may share the services, and runners
  // take whatever is on their group's topics.
  const run = randomBytes(6).toString('hex');
  const database = `strata_e2e_${run}`;
  const namespace = `e2e-${run}.`;

  test.before(async (t) => {
    // Configuration only, as `strata start` would have it: the supervised runner process gets the Kafka and
    // MongoDB settings from the platform's configuration and reaches both by itself.
    const strata = await startInvocationPlatform(
      {
        STRATA_KAFKA_BROKERS: brokers,
        STRATA_KAFKA_NAMESPACE: namespace,
        STRATA_MONGODB_URL: withDatabase(mongoUrl, database),
      },
      { runners: 1 },
    );
    t.context = { strata };
  });

  test.after.always(async (t) => {
    await t.context.strata?.stop();
    const mongo = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 10_000 });
    try {
      await mongo.db(database).dropDatabase();
    } finally {
      await mongo.close();
    }
    const admin = new kafkajs.Kafka({
      clientId: `strata-e2e-${run}`,
      brokers: brokers.split(',').map((broker) => broker.trim()),
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const topics = (await admin.listTopics()).filter((topic) => topic.startsWith(namespace));
      if (topics.length > 0) await admin.deleteTopics({ topics });
    } finally {
      await admin.disconnect();
    }
  });

  test('a user walks the whole flow on Kafka and MongoDB: publish, alias, invoke, logs, metrics, runners', async (t) => {
    const { strata } = t.context;

    // Log in.
    const token = await createClient(strata.platform.url).login(ADMIN.username, ADMIN.password);
    const user = createClient(strata.platform.url, token);

    // Create a Node24 function and publish two versions from ZIPs.
    const name = uniqueName('e2e');
    await ok(
      t,
      'create the function',
      user.request('POST', '/api/v1/functions', {
        body: {
          name,
          runtime: 'Node24',
          handler: 'index.handler',
          environment: { GREETING: 'Hello' },
          tags: { suite: 'e2e' },
        },
      }),
      201,
    );
    for (const label of ['one', 'two']) {
      const published = await ok(
        t,
        `publish version ${label}`,
        user.request<{ version: number }>('POST', `/api/v1/functions/${name}/versions`, {
          body: { code: versionCode(label), description: label },
        }),
        201,
      );
      t.is(published.version, label === 'one' ? 1 : 2);
    }

    // An alias splitting traffic between them.
    const alias = await ok(
      t,
      'create the alias',
      user.request<{ routingConfig: Record<string, number> }>('POST', `/api/v1/functions/${name}/aliases`, {
        body: { aliasName: 'live', version: 1, routingConfig: { '1': 50, '2': 50 } },
      }),
      201,
    );
    t.deepEqual(alias.routingConfig, { '1': 50, '2': 50 });

    // Sync invokes, one after another: by the alias (both versions answer), then by version.
    const perVersion = { v1: 0, v2: 0 };
    const ran: InvokeResponse[] = [];
    const invoke = async (body: Record<string, unknown>) => {
      const answer = await ok(
        t,
        `invoke ${JSON.stringify(body)}`,
        user.request<InvokeResponse>('POST', `/api/v1/functions/${name}/invoke`, { body }),
      );
      if (answer.version === 'v1' || answer.version === 'v2') perVersion[answer.version] += 1;
      ran.push(answer);
      return answer;
    };
    const ALIAS_CALLS = 40;
    for (let call = 0; call < ALIAS_CALLS; call += 1) {
      const answer = await invoke({ alias: 'live', payload: JSON.stringify({ name: `caller-${call}` }) });
      t.is(answer.statusCode, 200);
      t.deepEqual(JSON.parse(answer.body), {
        version: answer.version === 'v1' ? 'one' : 'two',
        message: `Hello, caller-${call}`,
      });
    }
    // At 50/50, 40 calls all landing on one version happens with probability 2^-39.
    t.true(perVersion.v1 > 0 && perVersion.v2 > 0, JSON.stringify(perVersion));

    const byVersion = await invoke({ version: 2, payload: { name: 'Ada' } });
    t.like(byVersion, { statusCode: 200, version: 'v2', wasColdStart: false });
    t.deepEqual(JSON.parse(byVersion.body), { version: 'two', message: 'Hello, Ada' });
    const failed = await invoke({ version: 'v1', payload: { fail: true } });
    t.like(failed, { statusCode: 500, version: 'v1', outcome: 'functionError' });
    t.is(ran.filter((answer) => answer.wasColdStart).length, 2, 'one cold start per version');

    // An async invoke: 202, then the record until it has succeeded.
    const accepted = await ok(
      t,
      'invoke-async',
      user.request<{ requestId: string; status: string }>('POST', `/api/v1/functions/${name}/invoke-async`, {
        body: { version: 2, payload: { name: 'Grace' } },
      }),
      202,
    );
    t.is(accepted.status, 'Queued');
    const record = await finalRecord(user, name, accepted.requestId);
    t.like(record, { requestId: accepted.requestId, status: 'Succeeded', invocationType: 'Event', version: 'v2' });
    t.deepEqual(JSON.parse(record.body ?? 'null'), { version: 'two', message: 'Hello, Grace' });
    perVersion.v2 += 1;

    // The logs of a sync and of the async invocation.
    const syncLogs = await logsOf(user, name, byVersion.requestId);
    t.like(syncLogs, {
      requestId: byVersion.requestId,
      functionName: name,
      version: 'v2',
      status: 'Succeeded',
      truncated: false,
    });
    t.deepEqual(
      syncLogs.logs.map(({ level, message }) => [level, message]),
      [['INFO', `two greets Ada in ${byVersion.requestId}`]],
    );
    const asyncLogs = await logsOf(user, name, accepted.requestId);
    t.like(asyncLogs, { requestId: accepted.requestId, version: 'v2', status: 'Succeeded' });
    t.deepEqual(
      asyncLogs.logs.map(({ level, message }) => [level, message]),
      [['INFO', `two greets Grace in ${accepted.requestId}`]],
    );
    for (const line of [...syncLogs.logs, ...asyncLogs.logs]) t.true(isIsoTimestamp(line.timestamp));

    // Metrics: every invocation counted once, per version and in all.
    const total = ALIAS_CALLS + 3;
    const metrics: Metrics = await metricsWhen(user, name, (found) => found.invocations >= total);
    t.like(metrics, { invocations: total, errors: 1, coldStarts: 2, throttles: 0 });
    const ofVersion = async (version: number) =>
      metricsWhen(
        user,
        name,
        (found) => found.invocations >= perVersion[`v${version}` as 'v1' | 'v2'],
        `window=PT1H&version=${version}`,
      );
    const [one, two] = [await ofVersion(1), await ofVersion(2)];
    t.like(one, { invocations: perVersion.v1, errors: 1, coldStarts: 1 });
    t.like(two, { invocations: perVersion.v2, errors: 0, coldStarts: 1 });
    t.is(one.invocations + two.invocations, metrics.invocations);

    // The runner that ran it all, healthy, with counters that agree.
    const [listed] = await awaitHealthyRunners(user, 1);
    t.like(listed, { nodeId: 'runner-1', health: { isHealthy: true } });
    const runner = await eventually('the runner’s counters', async () => {
      const response = await user.request<RunnerDetails>('GET', '/api/v1/runners/runner-1');
      return response.status === 200 && response.body.metrics.totalInvocations >= total ? response.body : undefined;
    });
    t.like(runner, {
      health: { isHealthy: true },
      metrics: { totalInvocations: total, successfulInvocations: total - 1, failedInvocations: 1, coldStarts: 2 },
    });

    // Each version's invocationCount, and the function's totals (written with the metrics, once a second).
    const fn = await eventually('the function’s totals', async () => {
      const response = await user.request<{ totalInvocations: number; lastInvokedAt: string | null }>(
        'GET',
        `/api/v1/functions/${name}`,
      );
      return response.status === 200 && response.body.totalInvocations >= total ? response.body : undefined;
    });
    t.is(fn.totalInvocations, total);
    const versions = await ok(
      t,
      'list versions',
      user.request<{ versions: { version: number; invocationCount: number }[] }>(
        'GET',
        `/api/v1/functions/${name}/versions`,
      ),
    );
    t.deepEqual(
      versions.versions.map(({ version, invocationCount }) => [version, invocationCount]),
      [
        [2, perVersion.v2],
        [1, perVersion.v1],
      ],
    );
    const v1 = await ok(
      t,
      'get v1',
      user.request<{ invocationCount: number }>('GET', `/api/v1/functions/${name}/versions/v1`),
    );
    t.is(v1.invocationCount, perVersion.v1);
    t.true(isIsoTimestamp(fn.lastInvokedAt));
  });
}
