import test, { type ExecutionContext } from 'ava';
import { driverFor, invoke, specOf } from './support.ts';

const run = async (t: ExecutionContext, files: Record<string, string>, event: unknown = {}) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf(files));
  return invoke(container, event);
};

test('a CommonJS hello world returns its result as JSON', async (t) => {
  const result = await run(t, { 'index.js': 'exports.handler = (event) => ({ hello: event.name });' }, { name: 'Ada' });
  t.like(result, { outcome: 'success', fault: 'none', result: '{"hello":"Ada"}', disposeContainer: false });
  t.true(result.durationMs >= 0);
  t.true(result.memoryUsedMb >= 1);
});

test('module.exports = { handler } works', async (t) => {
  const result = await run(t, { 'index.js': 'module.exports = { handler: () => 42 };' });
  t.like(result, { outcome: 'success', result: '42' });
});

test('an ES module hello world (.mjs) returns its result', async (t) => {
  const result = await run(
    t,
    { 'index.mjs': 'export const handler = (event) => "hello " + event.name;' },
    { name: 'Bo' },
  );
  t.like(result, { outcome: 'success', result: '"hello Bo"' });
});

test('a .js file is an ES module when package.json says "type": "module"', async (t) => {
  const result = await run(t, {
    'package.json': '{ "type": "module" }',
    'index.js': 'import { double } from "./lib.js";\nexport async function handler() { return double(21); }',
    'lib.js': 'export const double = (n) => n * 2;',
  });
  t.like(result, { outcome: 'success', result: '42' });
});

test('a .js file with ES module syntax and no package type is loaded as an ES module', async (t) => {
  const result = await run(t, { 'index.js': 'export const handler = () => "detected";' });
  t.like(result, { outcome: 'success', result: '"detected"' });
});

test('handlers in a subfolder are found from file.export', async (t) => {
  const driver = driverFor(t);
  const files = { 'src/app.js': 'exports.main = () => "main";' };
  const container = await driver.createContainer(specOf(files, { handler: 'src/app.main' }));
  t.like(await invoke(container), { outcome: 'success', result: '"main"' });
});

test('require loads a sibling file, JSON and a directory index', async (t) => {
  const result = await run(t, {
    'index.js': [
      'const lib = require("./lib");',
      'const data = require("./data.json");',
      'const dir = require("./dir");',
      'exports.handler = () => [lib.name, data.count, dir.name, require("./lib.js") === lib];',
    ].join('\n'),
    'lib.js': 'module.exports = { name: "lib" };',
    'data.json': '{ "count": 2 }',
    'dir/index.js': 'exports.name = "dir";',
  });
  t.like(result, { outcome: 'success', result: '["lib",2,"dir",true]' });
});

test('require finds packages in node_modules through package.json main and exports', async (t) => {
  const result = await run(t, {
    'index.js':
      'exports.handler = () => [require("left-pad")(5), require("@acme/util").name, require("@acme/util/extra")];',
    'node_modules/left-pad/package.json': '{ "main": "lib/pad.js" }',
    'node_modules/left-pad/lib/pad.js': 'module.exports = (n) => String(n).padStart(3, "0");',
    'node_modules/@acme/util/package.json':
      '{ "exports": { ".": { "import": "./esm.mjs", "require": "./cjs.js" }, "./extra": "./extra.js" } }',
    'node_modules/@acme/util/cjs.js': 'exports.name = "util-cjs";',
    'node_modules/@acme/util/esm.mjs': 'export const name = "util-esm";',
    'node_modules/@acme/util/extra.js': 'module.exports = "extra";',
  });
  t.like(result, { outcome: 'success', result: '["005","util-cjs","extra"]' });
});

test('ES modules import JSON, CommonJS files and packages', async (t) => {
  const result = await run(t, {
    'index.mjs': [
      'import config from "./config.json" with { type: "json" };',
      'import legacy from "./legacy.cjs";',
      'import { name } from "@acme/util";',
      'export const handler = () => [config.region, legacy.answer, name];',
    ].join('\n'),
    'config.json': '{ "region": "eu" }',
    'legacy.cjs': 'module.exports = { answer: 42 };',
    'node_modules/@acme/util/package.json': '{ "exports": { "import": "./esm.mjs", "require": "./cjs.js" } }',
    'node_modules/@acme/util/esm.mjs': 'export const name = "util-esm";',
    'node_modules/@acme/util/cjs.js': 'exports.name = "util-cjs";',
  });
  t.like(result, { outcome: 'success', result: '["eu",42,"util-esm"]' });
});

test('a top-level await that waits on a timer completes before the first invocation', async (t) => {
  const result = await run(t, {
    'index.mjs':
      'const value = await new Promise((resolve) => setTimeout(() => resolve(7), 20));\nexport const handler = () => value;',
  });
  t.like(result, { outcome: 'success', result: '7' });
});

test('the environment is visible as a frozen process.env', async (t) => {
  const result = await run(t, {
    'index.js':
      'exports.handler = () => { process.env.GREETING = "changed"; return [process.env.GREETING, process.env.STAGE, Object.isFrozen(process.env)]; };',
  });
  t.like(result, { outcome: 'success', result: '["hello","test",true]' });
});

test('the context carries the request id, function name, version, memory and remaining time', async (t) => {
  const result = await run(t, {
    'index.js':
      'exports.handler = (event, context) => ({ ...context, remaining: context.getRemainingTimeInMillis() > 0 && context.getRemainingTimeInMillis() <= 10000 });',
  });
  t.is(result.outcome, 'success');
  t.deepEqual(JSON.parse(result.result ?? ''), {
    requestId: 'req-1',
    functionName: 'greeter',
    functionVersion: '3',
    memoryLimitInMB: 128,
    remaining: true,
  });
});

test('an async handler may await timers, intervals and microtasks', async (t) => {
  const result = await run(t, {
    'index.js': [
      'exports.handler = async () => {',
      '  const order = [];',
      '  const cancelled = setTimeout(() => order.push("cancelled"), 5);',
      '  clearTimeout(cancelled);',
      '  await new Promise((resolve) => setTimeout(resolve, 30));',
      '  order.push("timeout");',
      '  await new Promise((resolve) => { let n = 0; const id = setInterval(() => { if (++n === 3) { clearInterval(id); resolve(); } }, 5); });',
      '  order.push("interval");',
      '  await new Promise((resolve) => setImmediate(resolve));',
      '  queueMicrotask(() => order.push("microtask"));',
      '  await null;',
      '  return order;',
      '};',
    ].join('\n'),
  });
  t.like(result, { outcome: 'success', result: '["timeout","interval","microtask"]' });
});

test('returning a promise from a non-async handler works', async (t) => {
  const result = await run(t, { 'index.js': 'exports.handler = () => Promise.resolve({ later: true });' });
  t.like(result, { outcome: 'success', result: '{"later":true}' });
});

test('a container keeps module state between warm invocations', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': 'let count = 0;\nexports.handler = () => ++count;' }),
  );
  t.like(await invoke(container), { result: '1' });
  t.like(await invoke(container), { result: '2' });
  t.true(container.coldStartMs > 0);
  t.true(container.memoryUsage() > 0);
});

test('an event that is not JSON is the caller’s fault', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => "ok";' }));
  const result = await container.invoke({ requestId: 'r', payload: '{nope', deadline: Date.now() + 1000 });
  t.like(result, { outcome: 'functionError', fault: 'caller', error: { type: 'InvalidPayload' } });
  t.like(await invoke(container), { outcome: 'success', result: '"ok"' });
});

test('two containers of the same version run invocations at the same time', async (t) => {
  const driver = driverFor(t);
  const spec = specOf({
    'index.js': [
      'let calls = 0;',
      'exports.handler = async (event) => {',
      '  const until = Date.now() + 50;',
      '  while (Date.now() < until) {}',
      '  await new Promise((resolve) => setTimeout(resolve, 20));',
      '  return { id: event.id, calls: ++calls };',
      '};',
    ].join('\n'),
  });
  const [first, second] = await Promise.all([driver.createContainer(spec), driver.createContainer(spec)]);
  const results = await Promise.all([invoke(first, { id: 1 }), invoke(second, { id: 2 })]);
  t.deepEqual(
    results.map((result) => [result.outcome, result.result]),
    [
      ['success', '{"id":1,"calls":1}'],
      ['success', '{"id":2,"calls":1}'],
    ],
  );
});

test('a container refuses a second invocation while one is running', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': 'exports.handler = () => new Promise((resolve) => setTimeout(() => resolve("ok"), 30));' }),
  );
  const [first, second] = await Promise.all([invoke(container), invoke(container)]);
  t.like(first, { outcome: 'success', result: '"ok"' });
  t.like(second, {
    outcome: 'platformError',
    fault: 'platform',
    error: { type: 'ContainerBusy' },
    disposeContainer: false,
  });
});

test('an invocation whose deadline has passed times out without running', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => "ok";' }));
  const result = await container.invoke({ requestId: 'r', payload: '{}', deadline: Date.now() - 1 });
  t.like(result, { outcome: 'timeout', durationMs: 0, disposeContainer: false });
  t.like(await invoke(container), { outcome: 'success' });
});

test('a disposed container answers with a platform error', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => "ok";' }));
  container.dispose();
  t.like(await invoke(container), { outcome: 'platformError', error: { type: 'ContainerDisposed' } });
  t.is(container.memoryUsage(), 0);
});
