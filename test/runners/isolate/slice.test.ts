// The driver runs a call on the runner's own thread first, cut at a short slice; a call that outruns it is run
// again from the start on a new sandbox. What a user can tell: nothing, except the time it took.
import test from 'ava';
import { driverFor, invoke, specOf } from './support.ts';

const busy = (ms: number) => `{ const until = Date.now() + ${ms}; while (Date.now() < until) {} }`;

test('a handler that computes for longer than the slice succeeds, its logs and module state from one run only', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({
      'index.js': `let calls = 0;\nexports.handler = (event) => {\n  calls += 1;\n  console.log('start', event.id);\n  ${busy(60)}\n  return { id: event.id, calls };\n};`,
    }),
  );
  const first = await invoke(container, { id: 1 });
  t.like(first, { outcome: 'success', result: '{"id":1,"calls":1}', disposeContainer: false });
  t.deepEqual(
    first.logs.map((line) => line.message),
    ['start 1'],
  );
  t.true(first.durationMs >= 60);
  // The same container keeps serving, with the state of the run that counted.
  t.like(await invoke(container, { id: 2 }), { outcome: 'success', result: '{"id":2,"calls":2}' });
});

test('code whose top level computes for longer than the slice loads, and logs its start once', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': `console.log('loading');\n${busy(60)}\nexports.handler = () => 'ok';` }),
  );
  const result = await invoke(container);
  t.like(result, { outcome: 'success', result: '"ok"' });
  t.deepEqual(
    result.logs.map((line) => line.message),
    ['loading'],
  );
});

test('a handler that outruns the slice still has its whole timeout', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': `exports.handler = () => { ${busy(800)} return 'done'; };` }, { timeout: 1 }),
  );
  const result = await invoke(container, {}, 1_000);
  t.like(result, { outcome: 'success', result: '"done"' });
});

test('an infinite loop past the slice still times out at the function timeout', async (t) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(
    specOf({ 'index.js': 'exports.handler = () => { while (true) {} };' }, { timeout: 1 }),
  );
  const result = await invoke(container, {}, 1_000);
  t.like(result, { outcome: 'timeout', disposeContainer: true });
  t.true(result.durationMs >= 900);
});
