import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { createContainerDriver } from '../../../runners/container/driver.ts';
import { ContainerStartError } from '../../../runners/runtime.ts';
import test from 'ava';
import { assertRecovers, containerTest, expectBad, fileDriver, invoke, misbehaving, specOf } from './support.ts';

const driver = fileDriver();
const healthy = specOf(misbehaving('pass'));

/** Code that cannot load: the container is refused with a classified function error, and the driver carries on. */
const expectLoadFailure = async (
  t: ExecutionContext,
  files: Record<string, string>,
  type: string,
  message: RegExp,
  handler = 'handler.main',
): Promise<ContainerStartError> => {
  const error = await t.throwsAsync(driver.createContainer(specOf(files, { handler })), {
    instanceOf: ContainerStartError,
  });
  t.like(error, { outcome: 'functionError', type });
  t.regex(error?.message ?? '', message);
  await assertRecovers(t, driver, healthy, null, null);
  return error as ContainerStartError;
};

containerTest('an import error is ImportModuleError', async (t) => {
  await expectLoadFailure(
    t,
    { 'handler.py': 'import not_bundled_anywhere\ndef main(event, context):\n    return 1\n' },
    'ImportModuleError',
    /Unable to import module 'handler': No module named 'not_bundled_anywhere'/,
  );
});

containerTest('a package that is not a ZIP is InvalidPackage', async (t) => {
  const error = await t.throwsAsync(driver.createContainer({ ...healthy, code: new Uint8Array([80, 75, 1, 2, 3]) }), {
    instanceOf: ContainerStartError,
  });
  t.like(error, { outcome: 'functionError', type: 'InvalidPackage' });
  await assertRecovers(t, driver, healthy, null, null);
});

containerTest('a missing handler module is ImportModuleError', async (t) => {
  await expectLoadFailure(t, { 'other.py': '' }, 'ImportModuleError', /No module named 'handler'/);
});

containerTest('a syntax error names the file and line', async (t) => {
  await expectLoadFailure(
    t,
    { 'handler.py': 'def main(event, context):\n    return 1\n\ndef broken(:\n    pass\n' },
    'SyntaxError',
    /Syntax error in module 'handler': .*\(handler\.py, line 4\)/,
  );
});

containerTest('a syntax error in an imported module is a SyntaxError too', async (t) => {
  await expectLoadFailure(
    t,
    { 'handler.py': 'import helper\ndef main(event, context):\n    return 1\n', 'helper.py': 'x = = 1\n' },
    'SyntaxError',
    /helper\.py, line 1/,
  );
});

containerTest('a function missing from the module is HandlerNotFound', async (t) => {
  await expectLoadFailure(
    t,
    { 'handler.py': 'def other(event, context):\n    return 1\n' },
    'HandlerNotFound',
    /Handler 'main' missing on module 'handler'/,
  );
});

containerTest('a handler that is not callable is HandlerNotFound', async (t) => {
  await expectLoadFailure(t, { 'handler.py': 'main = 42\n' }, 'HandlerNotFound', /is not a function/);
});

containerTest("an exception in the module's top level is that exception", async (t) => {
  await expectLoadFailure(
    t,
    { 'handler.py': 'raise RuntimeError("config missing")\n' },
    'RuntimeError',
    /config missing/,
  );
});

containerTest('sys.exit() while the module loads is a function error', async (t) => {
  await expectLoadFailure(t, { 'handler.py': 'import sys\nsys.exit(2)\n' }, 'SystemExit', /sys\.exit\(2\)/);
});

containerTest('an exception is a function error with its type, message and stack; the container is kept', async (t) => {
  const result = await expectBad(
    t,
    driver,
    `
    def inner():
        raise ValueError("bad input: 42")
    inner()
    `,
    { outcome: 'functionError', fault: 'function', error: { type: 'ValueError', message: 'bad input: 42' } },
  );
  t.false(result.disposeContainer);
  const stack = result.error?.stack ?? '';
  t.regex(stack, /^Traceback \(most recent call last\):/);
  t.regex(stack, /File "\/var\/task\/handler\.py", line \d+, in main/);
  t.regex(stack, /in inner/);
  t.regex(stack, /ValueError: bad input: 42$/);
  t.notRegex(stack, /bootstrap\.py/, 'the bootstrap stays out of the stack');
});

containerTest('sys.exit() is a function error and the bootstrap survives it', async (t) => {
  const result = await expectBad(t, driver, 'sys.exit(3)', {
    outcome: 'functionError',
    fault: 'function',
    error: { type: 'SystemExit', message: 'the function called sys.exit(3)' },
    disposeContainer: false,
  });
  t.truthy(result);
});

containerTest('raise SystemExit / KeyboardInterrupt are function errors', async (t) => {
  await expectBad(t, driver, 'raise KeyboardInterrupt()', {
    outcome: 'functionError',
    error: { type: 'KeyboardInterrupt' },
    disposeContainer: false,
  });
});

containerTest('os._exit() ends the container: a function error, and the container is disposed', async (t) => {
  const result = await expectBad(t, driver, 'os._exit(7)', {
    outcome: 'functionError',
    fault: 'function',
    error: { type: 'Runtime.ExitError' },
    disposeContainer: true,
  });
  t.regex(result.error?.message ?? '', /exit code 7/);
  t.like(await invoke(await driver.createContainer(healthy)), { outcome: 'success' });
});

containerTest('killing its own process is a function error', async (t) => {
  const result = await expectBad(t, driver, 'import signal\nos.kill(os.getpid(), signal.SIGKILL)', {
    outcome: 'functionError',
    error: { type: 'Runtime.ExitError' },
    disposeContainer: true,
  });
  t.regex(result.error?.message ?? '', /killed by signal 9/);
});

containerTest('writing garbage on the runtime channel is a function error, never a runner crash', async (t) => {
  await expectBad(t, driver, 'os.write(3, b"\\xff\\xff\\xff\\xffgarbage")\ntime.sleep(5)', {
    outcome: 'functionError',
    error: { type: 'Runtime.ProtocolError' },
    disposeContainer: true,
  });
});

for (const [name, value, detail] of [
  ['a set', '{1, 2, 3}', /set is not JSON serializable/],
  ['an object', 'object()', /object is not JSON serializable/],
  ['bytes', 'b"raw"', /bytes is not JSON serializable/],
  ['NaN', 'float("nan")', /not JSON compliant/],
  ['a cycle', '(lambda l: (l.append(l), l)[1])([])', /Circular reference/],
] as const) {
  containerTest(`returning ${name} is InvalidResult`, async (t) => {
    const result = await expectBad(t, driver, `return ${value}`, {
      outcome: 'functionError',
      fault: 'function',
      error: { type: 'InvalidResult' },
      disposeContainer: false,
    });
    t.regex(result.error?.message ?? '', detail);
  });
}

containerTest('an event that is not JSON is the caller’s fault', async (t) => {
  const container = await driver.createContainer(healthy);
  const result = await container.invoke({ requestId: 'r', payload: '{not json', deadline: Date.now() + 10_000 });
  t.like(result, {
    outcome: 'functionError',
    fault: 'caller',
    error: { type: 'InvalidEvent' },
    disposeContainer: false,
  });
  t.like(await invoke(container), { outcome: 'success', result: '"ok"' });
  container.dispose();
});

containerTest('an invocation that is already past its deadline times out without running', async (t) => {
  const container = await driver.createContainer(healthy);
  const result = await container.invoke({ requestId: 'r', payload: '{}', deadline: Date.now() - 1 });
  t.like(result, { outcome: 'timeout', disposeContainer: false });
  t.like(await invoke(container), { outcome: 'success' });
  container.dispose();
});

containerTest('a disposed container answers with a platform error, not a hang', async (t) => {
  const container = await driver.createContainer(healthy);
  container.dispose();
  t.like(await invoke(container), { outcome: 'platformError', error: { type: 'ContainerDisposed' } });
});

// These need no sandbox: they check that a runtime which cannot start says so, at once.
test('a missing interpreter is a platform error naming what is missing', async (t) => {
  const missing = createContainerDriver({ python: '/nonexistent/python3.11', poolSize: 0 });
  t.teardown(() => missing.close());
  const error = await t.throwsAsync(missing.createContainer(healthy), { instanceOf: ContainerStartError });
  t.like(error, { outcome: 'platformError', type: 'RuntimeUnavailable' });
  t.regex(
    error?.message ?? '',
    /Python311 cannot start on this runner: STRATA_PYTHON=\/nonexistent\/python3\.11 is not an executable file/,
  );
  t.false((await missing.isolation()).available);
});

test('an interpreter of the wrong version is refused', async (t) => {
  const wrong = createContainerDriver({ python: process.execPath, poolSize: 0 });
  t.teardown(() => wrong.close());
  const error = await t.throwsAsync(wrong.createContainer(healthy), { instanceOf: ContainerStartError });
  t.like(error, { outcome: 'platformError', type: 'RuntimeUnavailable' });
  t.regex(error?.message ?? '', /does not run|needs 3\.11/);
});

test('a missing unshare is a platform error naming what is missing', async (t) => {
  const missing = createContainerDriver({ unshare: '/nonexistent/unshare', poolSize: 0 });
  t.teardown(() => missing.close());
  const error = await t.throwsAsync(missing.createContainer(healthy), { instanceOf: ContainerStartError });
  t.like(error, { outcome: 'platformError', type: 'RuntimeUnavailable' });
  t.regex(error?.message ?? '', /`unshare` at \/nonexistent\/unshare is not an executable file/);
});

test('namespaces that cannot be created are a platform error quoting unshare, not a hang', async (t) => {
  const directory = mkdtempSync(join(tmpdir(), 'strata-fake-unshare-'));
  t.teardown(() => rmSync(directory, { recursive: true, force: true }));
  const fake = join(directory, 'unshare');
  writeFileSync(fake, '#!/bin/sh\necho "unshare: unshare failed: Operation not permitted" >&2\nexit 1\n', {
    mode: 0o755,
  });
  const denied = createContainerDriver({ unshare: fake, poolSize: 0 });
  t.teardown(() => denied.close());
  const error = await t.throwsAsync(denied.createContainer(healthy), { instanceOf: ContainerStartError });
  t.like(error, { outcome: 'platformError', type: 'RuntimeUnavailable' });
  t.regex(error?.message ?? '', /cannot create the container's namespaces: .*unshare failed: Operation not permitted/);
});
