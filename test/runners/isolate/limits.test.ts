import test from 'ava';
import { ContainerStartError } from '../../../runners/runtime.ts';
import { driverFor, expectBad, invoke, specOf } from './support.ts';

const timeout = { outcome: 'timeout', fault: 'function', error: { type: 'Timeout' }, disposeContainer: true };
const oneSecond = { timeoutMs: 1_000 };

test('an infinite loop times out and the container is disposed', async (t) => {
  const result = await expectBad(t, 'while (true) {}', timeout, oneSecond);
  t.regex(result.error?.message ?? '', /timed out after 1\.\d\d seconds/);
  t.true(result.durationMs >= 900);
});

test('an infinite loop after an await times out', async (t) => {
  await expectBad(t, 'await null; while (true) {}', timeout, oneSecond);
});

test('an infinite loop after a timer times out', async (t) => {
  await expectBad(t, 'await new Promise((resolve) => setTimeout(resolve, 10)); while (true) {}', timeout, oneSecond);
});

test('a promise that never settles times out', async (t) => {
  await expectBad(t, 'await new Promise(() => {});', timeout, oneSecond);
});

test('a timer that keeps rescheduling itself times out', async (t) => {
  await expectBad(
    t,
    'await new Promise(() => { const again = () => setTimeout(again, 1); again(); });',
    timeout,
    oneSecond,
  );
});

test('blocking on Atomics.wait times out', async (t) => {
  await expectBad(t, 'Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000);', timeout, oneSecond);
});

test('an invocation shorter than the function timeout ends at its deadline', async (t) => {
  const result = await expectBad(t, 'while (true) {}', timeout, { spec: { timeout: 30 }, timeoutMs: 300 });
  t.true(result.durationMs < 5_000);
});

test('the logs written before a timeout are kept', async (t) => {
  const result = await expectBad(t, 'console.log("about to spin"); await null; while (true) {}', timeout, oneSecond);
  t.deepEqual(
    result.logs.map((line) => line.message),
    ['about to spin'],
  );
});

test('allocating past the memory limit is out of memory and the container is disposed', async (t) => {
  const result = await expectBad(
    t,
    'const kept = []; for (let i = 0; ; i++) kept.push("x".repeat(65536) + i);',
    { outcome: 'outOfMemory', fault: 'function', error: { type: 'OutOfMemory' }, disposeContainer: true },
    { spec: { memorySize: 128, timeout: 30 }, timeoutMs: 30_000 },
  );
  t.is(result.memoryUsedMb, 128);
});

test('an infinite loop while the module loads cannot start', async (t) => {
  const driver = driverFor(t);
  const error = await t.throwsAsync(driver.createContainer(specOf({ 'index.js': 'while (true) {}' }, { timeout: 1 })), {
    instanceOf: ContainerStartError,
  });
  t.like(error, { outcome: 'functionError', type: 'Timeout' });
  const healthy = await driver.createContainer(specOf({ 'index.js': 'exports.handler = () => "ok";' }));
  t.like(await invoke(healthy), { outcome: 'success' });
});
