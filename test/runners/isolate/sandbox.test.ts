import test, { type ExecutionContext } from 'ava';
import { ContainerStartError } from '../../../runners/runtime.ts';
import { driverFor, expectBad, invoke, specOf } from './support.ts';

const run = async (t: ExecutionContext, files: Record<string, string>) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf(files));
  const result = await invoke(container);
  t.like(await invoke(container), { outcome: result.disposeContainer ? 'platformError' : result.outcome });
  return result;
};
const probe = (expression: string) => ({ 'index.js': `exports.handler = () => (${expression});` });

const builtins = [
  'Object',
  'Function',
  'Array',
  'Number',
  'parseFloat',
  'parseInt',
  'Infinity',
  'NaN',
  'undefined',
  'Boolean',
  'String',
  'Symbol',
  'Date',
  'Promise',
  'RegExp',
  'Error',
  'AggregateError',
  'EvalError',
  'RangeError',
  'ReferenceError',
  'SyntaxError',
  'TypeError',
  'URIError',
  'globalThis',
  'JSON',
  'Math',
  'Intl',
  'ArrayBuffer',
  'Atomics',
  'Uint8Array',
  'Int8Array',
  'Uint16Array',
  'Int16Array',
  'Uint32Array',
  'Int32Array',
  'BigUint64Array',
  'BigInt64Array',
  'Uint8ClampedArray',
  'Float32Array',
  'Float64Array',
  'Float16Array',
  'DataView',
  'Map',
  'BigInt',
  'Set',
  'Iterator',
  'WeakMap',
  'WeakSet',
  'Proxy',
  'Reflect',
  'FinalizationRegistry',
  'WeakRef',
  'decodeURI',
  'decodeURIComponent',
  'encodeURI',
  'encodeURIComponent',
  'escape',
  'unescape',
  'eval',
  'isFinite',
  'isNaN',
  'SuppressedError',
  'DisposableStack',
  'AsyncDisposableStack',
  'SharedArrayBuffer',
  'WebAssembly',
];

test('the guest global holds the language built-ins and the runtime’s globals, nothing else', async (t) => {
  const result = await run(
    t,
    probe(
      `Object.getOwnPropertyNames(globalThis).filter((name) => !${JSON.stringify(builtins)}.includes(name)).sort()`,
    ),
  );
  t.deepEqual(JSON.parse(result.result ?? ''), [
    'clearImmediate',
    'clearInterval',
    'clearTimeout',
    'console',
    'global',
    'process',
    'queueMicrotask',
    'setImmediate',
    'setInterval',
    'setTimeout',
  ]);
});

test('process holds the environment and nothing that reaches the host', async (t) => {
  const result = await run(
    t,
    probe(
      '[Object.keys(process).sort(), typeof process.exit, typeof process.binding, typeof process.versions, typeof process.mainModule]',
    ),
  );
  t.is(result.result, '[["env","nextTick"],"undefined","undefined","undefined","undefined"]');
});

test('process.exit() is a function error, not an exit', async (t) => {
  const result = await expectBad(t, 'process.exit(1);', { outcome: 'functionError', error: { type: 'TypeError' } });
  t.regex(result.error?.message ?? '', /process\.exit is not a function/);
});

test('process.binding() is a function error', async (t) => {
  await expectBad(t, 'process.binding("fs");', { outcome: 'functionError', error: { type: 'TypeError' } });
});

for (const name of ['fs', 'child_process', 'node:fs', 'http', 'worker_threads']) {
  test(`require('${name}') fails in the guest with Cannot find module`, async (t) => {
    const result = await expectBad(t, `require(${JSON.stringify(name)});`, {
      outcome: 'functionError',
      error: { type: 'Error' },
    });
    t.regex(result.error?.message ?? '', new RegExp(`^Cannot find module '${name}'`));
  });
}

test('require cannot leave the package', async (t) => {
  const result = await expectBad(t, 'require("../../etc/passwd");', { outcome: 'functionError' });
  t.regex(result.error?.message ?? '', /Cannot find module/);
});

test('the loader ES modules use for CommonJS only loads the package’s files', async (t) => {
  const result = await expectBad(t, 'globalThis[Symbol.for("strata.require")]("fs");', { outcome: 'functionError' });
  t.regex(result.error?.message ?? '', /Cannot find module 'fs'/);
});

test('import("fs") in an ES module rejects in the guest', async (t) => {
  const result = await expectBad(
    t,
    'await import("fs");',
    { outcome: 'functionError', error: { type: 'Error' } },
    { esm: true },
  );
  t.regex(result.error?.message ?? '', /Not supported/);
});

test('a static import of a Node built-in cannot start', async (t) => {
  const driver = driverFor(t);
  const error = await t.throwsAsync(
    driver.createContainer(
      specOf({ 'index.mjs': 'import { readFileSync } from "node:fs";\nexport const handler = () => readFileSync;' }),
    ),
    { instanceOf: ContainerStartError },
  );
  t.like(error, { outcome: 'functionError', type: 'ImportModuleError' });
  t.regex(error?.message ?? '', /Cannot find module 'node:fs'/);
});

test('fetch does not exist', async (t) => {
  const result = await expectBad(t, 'await fetch("http://169.254.169.254/");', {
    outcome: 'functionError',
    error: { type: 'ReferenceError' },
  });
  t.regex(result.error?.message ?? '', /fetch is not defined/);
});

test('the Function constructor reached from the global yields the guest’s process only', async (t) => {
  const result = await run(
    t,
    probe(
      '(() => { const p = globalThis.constructor.constructor("return process")(); return [Object.keys(p).sort(), p.env.GREETING, typeof p.exit]; })()',
    ),
  );
  t.is(result.result, '[["env","nextTick"],"hello","undefined"]');
});

test('constructors of console functions lead back to the guest global, without require or host objects', async (t) => {
  const result = await run(
    t,
    probe(
      '(() => { const g = console.log.constructor("return this")(); return [g === globalThis, typeof g.require, typeof g.module, typeof g.Buffer, typeof g.ivm, typeof g.__strataBootstrap]; })()',
    ),
  );
  t.is(result.result, '[true,"undefined","undefined","undefined","undefined","undefined"]');
});

test('the context object’s functions lead back to the guest global only', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({
      'index.js':
        'exports.handler = (event, context) => { const g = context.getRemainingTimeInMillis.constructor("return this")(); return [g === globalThis, typeof g.process.binding, Object.getPrototypeOf(context) === Object.prototype]; };',
    }),
  );
  t.like(await invoke(container), { outcome: 'success', result: '[true,"undefined",true]' });
});

test('stack frames do not hand out the runtime’s functions', async (t) => {
  const result = await run(
    t,
    probe(
      '(() => { Error.prepareStackTrace = (error, frames) => frames.map((frame) => [frame.getFileName(), typeof frame.getFunction()]); const stack = new Error().stack; delete Error.prepareStackTrace; return stack; })()',
    ),
  );
  const frames: [string, string][] = JSON.parse(result.result ?? '[]');
  const runtimeFrames = frames.filter(([file]) => file === 'strata:runtime');
  t.true(runtimeFrames.length > 0);
  t.deepEqual(new Set(runtimeFrames.map(([, type]) => type)), new Set(['undefined']));
});

test('overwriting JSON and console in the guest does not break the result or the logs', async (t) => {
  const result = await run(t, {
    'index.js':
      'exports.handler = () => { console.log("before"); JSON.stringify = () => "forged"; Array.prototype.push = () => 0; return { real: true }; };',
  });
  t.like(result, { outcome: 'success', result: '{"real":true}' });
  t.deepEqual(
    result.logs.map((line) => line.message),
    ['before'],
  );
});

test('Math.random differs between containers of the same version', async (t) => {
  const driver = driverFor(t);
  const spec = specOf(probe('Math.random()'));
  const values = new Set<string | undefined>();
  for (let i = 0; i < 3; i++) values.add((await invoke(await driver.createContainer(spec))).result);
  t.is(values.size, 3);
});
