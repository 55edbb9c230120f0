import type { ExecutionContext } from 'ava';
import { strToU8, zipSync } from 'fflate';
import { createIsolateDriver } from '../../../runners/isolate/driver.ts';
import type { Container, ContainerResult, ContainerSpec, RuntimeDriver } from '../../../runners/runtime.ts';

export const zip = (files: Record<string, string>): Uint8Array =>
  zipSync(Object.fromEntries(Object.entries(files).map(([path, text]) => [path, strToU8(text)])));

export const specOf = (files: Record<string, string>, overrides: Partial<ContainerSpec> = {}): ContainerSpec => ({
  functionName: 'greeter',
  version: 3,
  runtime: 'Node24',
  handler: 'index.handler',
  memorySize: 128,
  timeout: 10,
  environment: { GREETING: 'hello', STAGE: 'test' },
  code: zip(files),
  ...overrides,
});

/** A driver closed when the test ends. */
export const driverFor = (t: ExecutionContext): RuntimeDriver => {
  const driver = createIsolateDriver();
  t.teardown(() => driver.close());
  return driver;
};

/** Generous by default: tests run side by side with others that spin the CPU, and only a timeout test wants it short. */
export const invoke = (container: Container, event: unknown = {}, timeoutMs = 10_000): Promise<ContainerResult> =>
  container.invoke({ requestId: 'req-1', payload: JSON.stringify(event), deadline: Date.now() + timeoutMs });

/** A handler that misbehaves when the event says `{ bad: true }`, and otherwise returns 'ok'. */
export const misbehaving = (bad: string, options: { esm?: boolean } = {}): Record<string, string> =>
  options.esm
    ? { 'index.mjs': `export async function handler(event) {\n if (event.bad) { ${bad} }\n return 'ok';\n}` }
    : { 'index.js': `exports.handler = async (event) => {\n if (event.bad) { ${bad} }\n return 'ok';\n};` };

export const runBad = async (t: ExecutionContext, spec: ContainerSpec, timeoutMs?: number) => {
  const driver = driverFor(t);
  const container = await driver.createContainer(spec);
  const result = await invoke(container, { bad: true }, timeoutMs);
  return { driver, container, result };
};

/**
 * After a bad invocation the platform carries on: the same container answers if it was kept, and a new
 * container of the same version answers on the same driver either way.
 */
export const assertRecovers = async (
  t: ExecutionContext,
  driver: RuntimeDriver,
  spec: ContainerSpec,
  container: Container,
  result: ContainerResult,
): Promise<void> => {
  if (!result.disposeContainer) t.like(await invoke(container), { outcome: 'success', result: '"ok"' });
  const next = await driver.createContainer(spec);
  t.like(await invoke(next), { outcome: 'success', result: '"ok"' });
  next.dispose();
};

/** Runs `bad` (handler body code), checks the classified result with `expected`, then checks recovery. */
export const expectBad = async (
  t: ExecutionContext,
  bad: string,
  expected: Partial<Record<keyof ContainerResult, unknown>>,
  options: { esm?: boolean; spec?: Partial<ContainerSpec>; timeoutMs?: number } = {},
): Promise<ContainerResult> => {
  const spec = specOf(misbehaving(bad, options), options.spec);
  const { driver, container, result } = await runBad(t, spec, options.timeoutMs);
  t.like(result, expected);
  await assertRecovers(t, driver, spec, container, result);
  return result;
};
