import test, { type ExecutionContext, type Implementation, type TestFn } from 'ava';
import { strToU8, zipSync } from 'fflate';
import {
  type ContainerDriver,
  type ContainerDriverOptions,
  createContainerDriver,
  describeIsolation,
  type IsolationReport,
} from '../../../runners/container/driver.ts';
import type { Container, ContainerResult, ContainerSpec } from '../../../runners/runtime.ts';

export const zip = (files: Record<string, string>): Uint8Array =>
  zipSync(Object.fromEntries(Object.entries(files).map(([path, text]) => [path, strToU8(text)])));

export const specOf = (files: Record<string, string>, overrides: Partial<ContainerSpec> = {}): ContainerSpec => ({
  functionName: 'greeter',
  version: 3,
  runtime: 'Python311',
  handler: 'handler.main',
  memorySize: 128,
  timeout: 10,
  environment: { GREETING: 'hello', STAGE: 'test' },
  code: zip(files),
  ...overrides,
});

/** Whether this machine can run containers at all (Python 3.11, namespaces), found once per test file. */
export const isolation: IsolationReport = await (async () => {
  const driver = createContainerDriver({ prestart: false, poolSize: 0 });
  try {
    return await driver.isolation();
  } finally {
    await driver.close();
  }
})();

if (!isolation.available) {
  console.warn(`[container tests skipped] this machine cannot run Python311 containers: ${isolation.problem}`);
}

const skipped = Object.assign((title: string, implementation: Implementation<[]>) => test.skip(title, implementation), {
  serial: (title: string, implementation: Implementation<[]>) => test.skip(title, implementation),
}) as unknown as TestFn;

/** `test`, or `test.skip` (announced above) where the machine lacks what containers need. */
export const containerTest: TestFn = isolation.available ? test : skipped;

export const describe = (): string => describeIsolation(isolation);

/** One driver per test file (its pool serves every test in it); closed, with every container, at the end. */
export const fileDriver = (options: ContainerDriverOptions = {}): ContainerDriver => {
  const driver = createContainerDriver({ prestart: isolation.available, ...options });
  test.after.always(() => driver.close());
  return driver;
};

/** Generous by default: tests run side by side, and only a timeout test wants it short. */
export const invoke = (container: Container, event: unknown = {}, timeoutMs = 20_000): Promise<ContainerResult> =>
  container.invoke({ requestId: 'req-1', payload: JSON.stringify(event), deadline: Date.now() + timeoutMs });

/** Re-indents a Python snippet (written at any indentation in a template literal) to 8 spaces. */
const indent = (code: string): string => {
  const lines = code.split('\n').filter((line) => line.trim() !== '');
  const margin = Math.min(...lines.map((line) => line.length - line.trimStart().length));
  return lines.map((line) => `        ${line.slice(margin)}`).join('\n');
};

/** A handler that misbehaves when the event says `{"bad": true}`, and otherwise returns "ok". */
export const misbehaving = (bad: string, prelude = ''): Record<string, string> => ({
  'handler.py': `import os, sys, time, json, logging, socket\n${prelude}\ndef main(event, context):\n    if event.get("bad"):\n${indent(bad)}\n    return "ok"\n`,
});

/**
 * After a bad invocation the platform carries on: the same container answers if it was kept, and a new
 * container of the same version answers on the same driver either way.
 */
export const assertRecovers = async (
  t: ExecutionContext,
  driver: ContainerDriver,
  spec: ContainerSpec,
  container: Container | null,
  result: ContainerResult | null,
): Promise<void> => {
  if (container !== null && result !== null && !result.disposeContainer) {
    t.like(await invoke(container), { outcome: 'success', result: '"ok"' }, 'the same container still answers');
  }
  const next = await driver.createContainer(spec);
  t.like(await invoke(next), { outcome: 'success', result: '"ok"' }, 'a new container answers');
  next.dispose();
};

/** Runs `bad` (handler body code), checks the classified result with `expected`, then checks recovery. */
export const expectBad = async (
  t: ExecutionContext,
  driver: ContainerDriver,
  bad: string,
  expected: Partial<Record<keyof ContainerResult, unknown>>,
  options: { spec?: Partial<ContainerSpec>; timeoutMs?: number; prelude?: string } = {},
): Promise<ContainerResult> => {
  const spec = specOf(misbehaving(bad, options.prelude), options.spec);
  const container = await driver.createContainer(spec);
  const result = await invoke(container, { bad: true }, options.timeoutMs);
  t.like(result, expected);
  await assertRecovers(t, driver, spec, container, result);
  container.dispose();
  return result;
};

/** Runs a handler returning a JSON value and parses it. */
export const probe = async (
  t: ExecutionContext,
  driver: ContainerDriver,
  body: string,
  options: { event?: unknown; spec?: Partial<ContainerSpec>; prelude?: string } = {},
): Promise<unknown> => {
  const spec = specOf(
    {
      'handler.py': `import os, sys, json, socket, errno\n${options.prelude ?? ''}\ndef main(event, context):\n${indent(body)}\n`,
    },
    options.spec,
  );
  const container = await driver.createContainer(spec);
  const result = await invoke(container, options.event ?? {});
  t.is(result.outcome, 'success', JSON.stringify(result.error));
  container.dispose();
  return JSON.parse(result.result ?? 'null');
};
