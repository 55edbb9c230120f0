import test, { type ExecutionContext } from 'ava';
import { type ContainerSpec, ContainerStartError } from '../../../runners/runtime.ts';
import { driverFor, expectBad, invoke, specOf } from './support.ts';

const functionError = (type: string) => ({
  outcome: 'functionError',
  fault: 'function',
  error: { type },
  disposeContainer: false,
});

test('a thrown Error is a function error carrying its name, message and stack', async (t) => {
  const result = await expectBad(t, 'throw new TypeError("bad input");', functionError('TypeError'));
  t.is(result.error?.message, 'bad input');
  t.regex(result.error?.stack ?? '', /TypeError: bad input\n\s+at .*\/var\/task\/index\.js:2/);
  t.notRegex(result.error?.stack ?? '', /strata:runtime/);
});

test('a rejected promise is a function error', async (t) => {
  const result = await expectBad(t, 'await null; throw new RangeError("late");', functionError('RangeError'));
  t.is(result.error?.message, 'late');
});

test('an ES module handler’s error is a function error', async (t) => {
  const result = await expectBad(t, 'throw new Error("from esm");', functionError('Error'), { esm: true });
  t.regex(result.error?.stack ?? '', /file:\/\/\/var\/task\/index\.mjs:2/);
});

for (const [thrown, described] of [
  ['"boom"', /'boom'/],
  ['42', /42/],
  ['{ code: 7 }', /\{ code: 7 \}/],
  ['null', /null/],
  ['undefined', /undefined/],
] as const) {
  test(`throwing ${thrown} is a function error of type Error that describes the value`, async (t) => {
    const result = await expectBad(t, `throw ${thrown};`, functionError('Error'));
    t.regex(result.error?.message ?? '', /not an Error/);
    t.regex(result.error?.message ?? '', described);
  });
}

test('returning undefined gives null', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => {};' }));
  t.like(await invoke(container), { outcome: 'success', result: 'null' });
});

for (const [returned, reason] of [
  ['1n', /BigInt/],
  ['() => 1', /no JSON form/],
  ['Symbol("s")', /no JSON form/],
  ['(() => { const a = {}; a.self = a; return a; })()', /circular/i],
] as const) {
  test(`returning ${returned} is an InvalidResult function error`, async (t) => {
    const result = await expectBad(t, `return ${returned};`, functionError('InvalidResult'));
    t.regex(result.error?.message ?? '', reason);
  });
}

const startError = async (t: ExecutionContext, spec: ContainerSpec, type: string): Promise<ContainerStartError> => {
  const driver = driverFor(t);
  const error = await t.throwsAsync(driver.createContainer(spec), { instanceOf: ContainerStartError });
  t.like(error, { outcome: 'functionError', type });
  const healthy = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => "ok";' }));
  t.like(await invoke(healthy), { outcome: 'success', result: '"ok"' });
  return error as ContainerStartError;
};

test('a handler name that is not exported cannot start', async (t) => {
  const error = await startError(t, specOf({ 'index.js': 'exports.other = () => 1;' }), 'HandlerNotFound');
  t.regex(error.message, /handler in \/var\/task\/index\.js is not exported/);
});

test('an export that is not a function cannot start', async (t) => {
  const error = await startError(t, specOf({ 'index.mjs': 'export const handler = 42;' }), 'HandlerNotFound');
  t.regex(error.message, /is 42, not a function/);
});

test('a missing handler file cannot start', async (t) => {
  const error = await startError(t, specOf({ 'main.js': 'exports.handler = () => 1;' }), 'HandlerNotFound');
  t.regex(error.message, /index\.js/);
});

test('a malformed handler string cannot start', async (t) => {
  await startError(t, specOf({ 'index.js': 'exports.handler = () => 1;' }, { handler: 'index' }), 'HandlerNotFound');
});

test('a syntax error in the handler file cannot start, and says where', async (t) => {
  const error = await startError(
    t,
    specOf({ 'index.js': 'exports.handler = () => {\n  return 1 +;\n};' }),
    'SyntaxError',
  );
  t.regex(error.message, /\/var\/task\/index\.js:2/);
});

test('a syntax error in an ES module cannot start, and says where', async (t) => {
  const error = await startError(
    t,
    specOf({ 'index.mjs': 'export const handler = () => {\n  return 1 +;\n};' }),
    'SyntaxError',
  );
  t.regex(error.message, /index\.mjs:2/);
});

test('a syntax error in a module the handler requires at load cannot start', async (t) => {
  const files = {
    'index.js': 'const lib = require("./lib");\nexports.handler = () => lib;',
    'lib.js': 'module.exports = {;',
  };
  const error = await startError(t, specOf(files), 'SyntaxError');
  t.regex(error.message, /\/var\/task\/lib\.js:1/);
});

test('a syntax error in a module required during an invocation is a function error', async (t) => {
  const driver = driverFor(t);
  const files = {
    'index.js': 'exports.handler = (event) => (event.bad ? require("./broken") : "ok");',
    'broken.js': 'module.exports = {;',
  };
  const container = await driver.createContainer(specOf(files));
  const result = await invoke(container, { bad: true });
  t.like(result, functionError('SyntaxError'));
  t.regex(result.error?.message ?? '', /\/var\/task\/broken\.js/);
  t.like(await invoke(container), { outcome: 'success', result: '"ok"' });
});

test('an error thrown while the module loads cannot start', async (t) => {
  const error = await startError(t, specOf({ 'index.mjs': 'throw new RangeError("no config");' }), 'RangeError');
  t.is(error.message, 'no config');
});

test('a package that is not a ZIP cannot start', async (t) => {
  await startError(t, { ...specOf({}), code: new TextEncoder().encode('not a zip') }, 'InvalidPackage');
});
