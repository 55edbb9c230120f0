import test, { type ExecutionContext } from 'ava';
import { LOG_BYTES_PER_INVOCATION } from '../../../runners/runtime.ts';
import { driverFor, invoke, specOf } from './support.ts';

const logsOf = async (t: ExecutionContext, body: string) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': `exports.handler = async () => {\n${body}\n};` }),
  );
  return { container, result: await invoke(container) };
};

test('console methods are captured as lines with levels and timestamps', async (t) => {
  const { result } = await logsOf(
    t,
    'console.log("log"); console.info("info"); console.warn("warn"); console.error("error"); console.debug("debug");',
  );
  t.is(result.outcome, 'success');
  t.deepEqual(
    result.logs.map((line) => [line.level, line.message]),
    [
      ['INFO', 'log'],
      ['INFO', 'info'],
      ['WARN', 'warn'],
      ['ERROR', 'error'],
      ['DEBUG', 'debug'],
    ],
  );
  for (const line of result.logs) t.regex(line.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.false(result.logsTruncated);
});

test('console arguments are formatted like util.format', async (t) => {
  const { result } = await logsOf(
    t,
    [
      'console.log("%s is %d years", "Ada", 36, "extra");',
      'console.log({ a: 1, b: "two", c: [1, 2, { d: null }], e: undefined });',
      'console.log("many", 1, true, null, undefined, 2n, Symbol("s"));',
      'const cyclic = { name: "loop" }; cyclic.self = cyclic; console.log(cyclic);',
      'console.log(new Map([["k", 1]]), new Set([1]), () => 1, function named() {});',
      'console.log("%j and %o", { j: 1 }, [1]);',
      'console.log("100%");',
    ].join('\n'),
  );
  t.deepEqual(
    result.logs.map((line) => line.message),
    [
      'Ada is 36 years extra',
      "{ a: 1, b: 'two', c: [ 1, 2, { d: null } ], e: undefined }",
      'many 1 true null undefined 2n Symbol(s)',
      "{ name: 'loop', self: [Circular] }",
      "Map(1) { 'k' => 1 } Set(1) { 1 } [Function (anonymous)] [Function: named]",
      '{"j":1} and [ 1 ]',
      '100%',
    ],
  );
});

test('logging an error shows its stack', async (t) => {
  const { result } = await logsOf(t, 'console.error(new Error("shown"));');
  t.regex(result.logs[0]?.message ?? '', /^Error: shown\n\s+at .*index\.js/);
});

test('logs are per invocation', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': 'let n = 0;\nexports.handler = () => { console.log("call %d", ++n); };' }),
  );
  t.deepEqual(
    (await invoke(container)).logs.map((line) => line.message),
    ['call 1'],
  );
  t.deepEqual(
    (await invoke(container)).logs.map((line) => line.message),
    ['call 2'],
  );
});

test('lines logged while the module loads come with the first invocation', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': 'console.log("loading");\nexports.handler = () => { console.log("running"); };' }),
  );
  t.deepEqual(
    (await invoke(container)).logs.map((line) => line.message),
    ['loading', 'running'],
  );
  t.deepEqual(
    (await invoke(container)).logs.map((line) => line.message),
    ['running'],
  );
});

test('logs beyond the cap are dropped and marked, and the invocation still succeeds', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({
      'index.js': [
        'exports.handler = (event) => {',
        '  const line = "x".repeat(1024 * 1024);',
        '  for (let i = 0; i < (event.big ? 10 : 1); i++) console.log(event.big ? line : "small");',
        '  return "done";',
        '};',
      ].join('\n'),
    }),
  );
  const result = await invoke(container, { big: true });
  t.like(result, { outcome: 'success', result: '"done"', logsTruncated: true });
  const kept = result.logs.slice(0, -1).reduce((sum, line) => sum + Buffer.byteLength(line.message), 0);
  t.true(kept <= LOG_BYTES_PER_INVOCATION);
  t.true(kept > LOG_BYTES_PER_INVOCATION / 2);
  t.regex(result.logs.at(-1)?.message ?? '', /logs truncated/);
  const next = await invoke(container);
  t.like(next, { outcome: 'success', logsTruncated: false });
  t.deepEqual(
    next.logs.map((line) => line.message),
    ['small'],
  );
});

test('many small lines are capped too', async (t) => {
  const { result } = await logsOf(t, 'for (let i = 0; i < 100000; i++) console.log("line %d", i);');
  t.like(result, { outcome: 'success', logsTruncated: true });
  const kept = result.logs.slice(0, -1).reduce((sum, line) => sum + Buffer.byteLength(line.message), 0);
  t.true(kept <= LOG_BYTES_PER_INVOCATION);
  t.is(result.logs[0]?.message, 'line 0');
});
