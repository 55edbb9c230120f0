import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  awaitHealthyRunners,
  deploy,
  finalRecord,
  HELLO,
  handlerCode,
  invoke,
  invokeOk,
  nodeCode,
  startInvocationPlatform,
} from './support.ts';

interface Context {
  readonly strata: TestPlatform;
  /** The runner process's pid when the tests start: a crash would change it. */
  readonly runnerPid: number;
  /** A hello world on the same runner. */
  readonly hello: string;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  const strata = await startInvocationPlatform();
  const [runnerPid] = strata.platform.runnerPids();
  if (runnerPid === undefined) throw new Error('no runner process');
  const hello = uniqueName('hello');
  const created = await strata.admin.request('POST', '/api/v1/functions', {
    body: { name: hello, runtime: 'Node24', handler: 'index.handler' },
  });
  const published = await strata.admin.request('POST', `/api/v1/functions/${hello}/versions`, {
    body: { code: HELLO },
  });
  if (created.status !== 201 || published.status !== 201) throw new Error('could not deploy hello world');
  t.context = { strata, runnerPid, hello };
});

test.after.always(async (t) => {
  await t.context.strata?.stop();
});

interface Case {
  readonly title: string;
  /** The package to publish. */
  readonly code: string;
  /** Function fields (timeout, memorySize, handler). */
  readonly fields?: Record<string, unknown>;
  readonly outcome: 'functionError' | 'timeout' | 'outOfMemory';
  readonly type: string;
  readonly message?: RegExp;
}

const CASES: readonly Case[] = [
  {
    title: 'an infinite loop times out',
    code: handlerCode('while (true) {}'),
    fields: { timeout: 1 },
    outcome: 'timeout',
    type: 'Timeout',
    message: /timed out after/,
  },
  {
    title: 'an infinite loop after an await times out',
    code: handlerCode('await null; while (true) {}'),
    fields: { timeout: 1 },
    outcome: 'timeout',
    type: 'Timeout',
  },
  {
    title: 'allocating past memorySize is out of memory',
    code: handlerCode('const kept = []; for (let i = 0; ; i++) kept.push("x".repeat(65536) + i);'),
    fields: { memorySize: 128, timeout: 60 },
    outcome: 'outOfMemory',
    type: 'OutOfMemory',
    message: /128 MB/,
  },
  {
    title: 'throwing a string is a function error',
    code: handlerCode('throw "boom";'),
    outcome: 'functionError',
    type: 'Error',
    message: /boom/,
  },
  {
    title: 'throwing undefined is a function error',
    code: handlerCode('throw undefined;'),
    outcome: 'functionError',
    type: 'Error',
    message: /undefined/,
  },
  {
    title: 'returning a BigInt is a function error',
    code: handlerCode('return 10n;'),
    outcome: 'functionError',
    type: 'InvalidResult',
    message: /BigInt/,
  },
  {
    title: 'returning a cyclic object is a function error',
    code: handlerCode('const cycle = { name: "loop" }; cycle.self = cycle; return cycle;'),
    outcome: 'functionError',
    type: 'InvalidResult',
    message: /circular/i,
  },
  {
    title: 'returning more than 6 MB is a function error',
    code: handlerCode('return "x".repeat(7 * 1024 * 1024);'),
    outcome: 'functionError',
    type: 'ResultTooLarge',
    message: /6 MB/,
  },
  {
    title: 'a handler name that the file does not export is a function error',
    code: nodeCode('exports.handler = async () => "unused";\n'),
    fields: { handler: 'index.missing' },
    outcome: 'functionError',
    type: 'HandlerNotFound',
  },
  {
    title: 'a syntax error in the package is a function error',
    code: nodeCode('exports.handler = async () => {\n  return 1 +;\n};\n'),
    outcome: 'functionError',
    type: 'SyntaxError',
    message: /index\.js:2/,
  },
  {
    title: 'process.exit() is a function error, not an exit',
    code: handlerCode('process.exit(1);'),
    outcome: 'functionError',
    type: 'TypeError',
    message: /process\.exit is not a function/,
  },
  {
    title: "require('fs') is a function error",
    code: handlerCode('return require("fs").readFileSync("/etc/passwd", "utf8");'),
    outcome: 'functionError',
    type: 'Error',
    message: /Cannot find module 'fs'/,
  },
  {
    title: 'fetch is a function error',
    code: handlerCode('return (await fetch("http://169.254.169.254/latest/meta-data/")).status;'),
    outcome: 'functionError',
    type: 'ReferenceError',
    message: /fetch is not defined/,
  },
  {
    title: "this.constructor.constructor('return process')() reaches nothing of the host",
    code: nodeCode(
      'exports.handler = function () {\n  const p = this.constructor.constructor("return process")();\n  return p.mainModule.require("child_process").execSync("id").toString();\n};\n',
    ),
    outcome: 'functionError',
    type: 'TypeError',
  },
];

/** The runner carries on: the same process, healthy, and a hello world right after runs. */
const assertRunnerHealthy = async (t: ExecutionContext<Context>) => {
  const { strata, runnerPid, hello } = t.context;
  t.like(await invokeOk(t, strata.admin, hello, { payload: { name: 'after' } }), {
    statusCode: 200,
    body: '{"hello":"after"}',
  });
  const runners = await awaitHealthyRunners(strata.admin, 1);
  t.true(
    runners.every((runner) => runner.health.isHealthy),
    JSON.stringify(runners),
  );
  t.deepEqual(strata.platform.runnerPids(), [runnerPid], 'the runner process did not restart');
};

for (const testCase of CASES) {
  test(`${testCase.title}, classified, and the runner stays healthy`, async (t) => {
    const { admin } = t.context.strata;
    const name = uniqueName('hostile');
    await deploy(t, admin, name, testCase.code, testCase.fields);
    const response = await invoke(admin, name);
    t.is(response.status, 200, JSON.stringify(response.body));
    t.is(response.headers.get('x-strata-function-error'), testCase.outcome);
    const { body } = response;
    t.like(body, { statusCode: 500, outcome: testCase.outcome, error: { type: testCase.type } });
    if (testCase.message !== undefined) t.regex(body.error?.message ?? '', testCase.message);
    t.like(JSON.parse(body.body), { errorType: testCase.type });
    t.true(body.billedDuration >= 100 && body.billedDuration % 100 === 0);

    const record = await finalRecord(admin, name, body.requestId);
    t.like(record, {
      status: testCase.outcome === 'timeout' ? 'TimedOut' : 'Failed',
      outcome: testCase.outcome,
      statusCode: 500,
      error: { type: testCase.type },
    });
    await assertRunnerHealthy(t);
  });
}

test('a function that timed out runs again in a fresh sandbox', async (t) => {
  const { admin } = t.context.strata;
  const name = uniqueName('recovers');
  await deploy(t, admin, name, handlerCode('if (event.spin) while (true) {} return "fine";'), { timeout: 1 });
  const spun = await invoke(admin, name, { payload: { spin: true } });
  t.like(spun.body, { statusCode: 500, outcome: 'timeout' });
  const next = await invokeOk(t, admin, name);
  t.like(next, { statusCode: 200, body: '"fine"', wasColdStart: true });
  t.not(next.logStreamName, spun.body.logStreamName, 'the timed-out sandbox was thrown away');
  await assertRunnerHealthy(t);
});
