import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import anyTest, { type TestFn } from 'ava';
import { type InvocationRequest, type InvocationResult, TOPICS } from '../../domain/invocation/messages.ts';
import { createKafkaBus } from '../../infra/bus/kafka/index.ts';
import { uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import { deploy, eventually, finalRecord, HELLO, invokeOk, startInvocationPlatform } from './support.ts';

// The Kafka that scripts/services.sh runs (.ci/run starts it and exports the variable).
const brokers = process.env.STRATA_KAFKA_BROKERS;
// STRATA_SERVICES_REQUIRED=1 (set by .ci/run) turns a missing variable into a failure instead of a skip.
const required = process.env.STRATA_SERVICES_REQUIRED === '1';

interface Context {
  readonly strata: TestPlatform;
}

// The platform's topics and groups get a prefix of their own: other test files, or another run, may have a
// Strata on the same broker, and runners of one group take whatever is on its topics.
const namespace = `test-${randomUUID().slice(0, 8)}.`;
const onCluster = (topic: string) => `${namespace}${topic}`;

const test = anyTest as TestFn<Context>;

/** Runs kcat (Debian's package), a client that shares no code with Strata; resolves to its output. */
const kcat = (args: readonly string[], input?: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn('kcat', ['-b', brokers ?? '', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`kcat exited with ${code}: ${err}`))));
    child.stdin.end(input ?? '');
  });

/** Produces `key<TAB>value` lines, as a producer outside Strata would. */
const produce = (topic: string, records: ReadonlyArray<readonly [string, string]>) =>
  kcat(['-P', '-t', topic, '-K', '\t'], records.map(([key, value]) => `${key}\t${value}\n`).join(''));

interface KcatRecord {
  readonly key: string | null;
  readonly payload: string | null;
  /** Alternating names and values. */
  readonly headers?: readonly string[];
}

/** Reads a whole topic from its beginning (kcat -J: one JSON object per message). */
const readTopic = async (topic: string): Promise<KcatRecord[]> =>
  (await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-J', '-q']))
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as KcatRecord);

const headerOf = (record: KcatRecord, name: string): string | undefined => {
  const headers = record.headers ?? [];
  for (let index = 0; index + 1 < headers.length; index += 2) if (headers[index] === name) return headers[index + 1];
  return undefined;
};

interface DeadLetter {
  readonly reason: string;
  readonly topic: string;
  readonly original: string;
}

if (brokers === undefined || brokers === '') {
  if (required) {
    test('invoking from Kafka directly (STRATA_KAFKA_BROKERS is not set but STRATA_SERVICES_REQUIRED=1)', (t) => {
      t.fail('STRATA_KAFKA_BROKERS is not set: run scripts/services.sh start and eval "$(scripts/services.sh env)"');
    });
  } else {
    console.warn(
      'NOTICE: invoking from Kafka directly is not tested: STRATA_KAFKA_BROKERS is not set (scripts/services.sh start)',
    );
    test.skip('a message produced to the invocations topic with kcat runs the function (set STRATA_KAFKA_BROKERS)', () => {});
  }
} else {
  test.before(async (t) => {
    const bus = createKafkaBus({
      brokers: brokers.split(',').map((broker) => broker.trim()),
      clientId: `strata-test-${process.pid}`,
      namespace,
      logger: { warn() {}, info() {} },
      retry: { initialRetryTime: 50, maxRetryTime: 1_000, retries: 5 },
      redelivery: { initialMs: 5, maxMs: 50 },
      consumer: { heartbeatIntervalMs: 100, sessionTimeoutMs: 6_000, maxWaitTimeMs: 20 },
    });
    // The runner runs in this process, on the platform's bus: the API and the runner talk only through Kafka.
    t.context = { strata: await startInvocationPlatform({}, { runners: 'inProcess', bus }) };
  });

  test.after.always(async (t) => {
    await t.context.strata?.stop();
  });

  test('a message produced to the invocations topic with kcat runs the function', async (t) => {
    const { admin } = t.context.strata;
    const name = uniqueName('from-kafka');
    await deploy(t, admin, name, HELLO);
    const requestId = `kcat-${randomUUID()}`;
    const request: InvocationRequest = { schemaVersion: 1, requestId, functionName: name, payload: { name: 'kcat' } };
    await produce(onCluster(TOPICS.invocations), [[name, JSON.stringify(request)]]);

    const result = await eventually('the result on the results topic', async () => {
      const found = (await readTopic(onCluster(TOPICS.results)))
        .map((record) => JSON.parse(record.payload ?? 'null') as InvocationResult | null)
        .find((candidate) => candidate?.requestId === requestId);
      return found ?? undefined;
    });
    t.like(result, {
      functionName: name,
      outcome: 'success',
      invocationType: 'Event',
      version: 1,
      deadLettered: false,
    });
    t.deepEqual(JSON.parse(result.result ?? 'null'), { statusCode: 200, body: JSON.stringify({ hello: 'kcat' }) });

    const record = await finalRecord(admin, name, requestId);
    t.like(record, { requestId, functionName: name, status: 'Succeeded', invocationType: 'Event', version: 'v1' });
  });

  test('messages that are not valid invocation requests go to the dead-letter topic with the reason', async (t) => {
    const marker = randomUUID();
    const badJson = `{"schemaVersion":1,"functionName":"hello","marker":"${marker}"`;
    const badRequest = JSON.stringify({ schemaVersion: 1, functionName: 'hello', marker });
    const wrongVersion = JSON.stringify({ schemaVersion: 2, functionName: 'hello', requestId: `v2-${marker}` });
    await produce(onCluster(TOPICS.invocations), [
      ['bad-json', badJson],
      ['bad-request', badRequest],
      ['wrong-version', wrongVersion],
    ]);

    const letters = await eventually('the three dead letters', async () => {
      const found = (await readTopic(onCluster(TOPICS.deadLetters)))
        .map((record) => ({ record, letter: JSON.parse(record.payload ?? 'null') as DeadLetter }))
        .filter(({ letter }) => letter.original.includes(marker));
      return found.length >= 3 ? found : undefined;
    });
    const of = (original: string) => letters.find(({ letter }) => letter.original === original);
    const json = of(badJson);
    t.regex(json?.letter.reason ?? '', /^Invalid JSON/);
    t.is(json?.letter.topic, TOPICS.invocations);
    t.is(json?.record.key, 'bad-json');
    t.regex(json?.record ? (headerOf(json.record, 'strata-dead-letter-reason') ?? '') : '', /^Invalid JSON/);
    t.regex(of(badRequest)?.letter.reason ?? '', /^Invalid invocation request: .*additional properties/);
    t.regex(of(wrongVersion)?.letter.reason ?? '', /^Invalid invocation request: \/schemaVersion/);
  });

  test('a sync invoke through the API goes through Kafka to the runner and back', async (t) => {
    const { admin } = t.context.strata;
    const name = uniqueName('sync-kafka');
    await deploy(t, admin, name, HELLO);
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, index) => invokeOk(t, admin, name, { payload: { name: `caller-${index}` } })),
    );
    t.deepEqual(
      answers.map((answer) => answer.body),
      answers.map((_, index) => JSON.stringify({ hello: `caller-${index}` })),
    );
    const record = await finalRecord(admin, name, answers[0]?.requestId ?? '');
    t.is(record.status, 'Succeeded');
  });
}
