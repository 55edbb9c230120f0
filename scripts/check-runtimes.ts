// What each runtime needs on this machine, one line per runtime: `node scripts/check-runtimes.ts`.
// Each runtime is tried for real (a sandbox started, a function run); exits 1 when any cannot run.
import { strToU8, zipSync } from 'fflate';
import { RUNTIMES, type RuntimeSpec } from '../domain/runtimes.ts';
import { createContainerDriver, describeIsolation } from '../runners/container/driver.ts';
import { createIsolateDriver } from '../runners/isolate/driver.ts';
import { type ContainerSpec, ContainerStartError, type RuntimeDriver } from '../runners/runtime.ts';

const trial: Record<RuntimeSpec['driver'], { handler: string; files: Record<string, string> }> = {
  isolate: { handler: 'index.handler', files: { 'index.js': 'exports.handler = () => "ok";' } },
  container: { handler: 'check.main', files: { 'check.py': 'def main(event, context):\n    return "ok"\n' } },
};

const run = async (driver: RuntimeDriver, runtime: RuntimeSpec): Promise<string | null> => {
  const { handler, files } = trial[runtime.driver];
  const spec: ContainerSpec = {
    functionName: 'runtime-check',
    version: 1,
    runtime: runtime.name,
    handler,
    memorySize: 128,
    timeout: 10,
    environment: {},
    code: zipSync(Object.fromEntries(Object.entries(files).map(([path, text]) => [path, strToU8(text)]))),
  };
  try {
    const container = await driver.createContainer(spec);
    const result = await container.invoke({ requestId: 'check', payload: '{}', deadline: Date.now() + 10_000 });
    container.dispose();
    return result.outcome === 'success' ? null : `a test function failed: ${result.error?.message ?? result.outcome}`;
  } catch (error) {
    return error instanceof ContainerStartError || error instanceof Error ? error.message : String(error);
  }
};

const check = async (runtime: RuntimeSpec): Promise<{ ok: boolean; line: string }> => {
  if (runtime.driver === 'isolate') {
    const driver = createIsolateDriver();
    try {
      const problem = await run(driver, runtime);
      return problem === null
        ? { ok: true, line: `ok — isolated-vm isolates on Node ${process.versions.node}` }
        : { ok: false, line: `unavailable: ${problem}` };
    } finally {
      await driver.close();
    }
  }
  const driver = createContainerDriver({ poolSize: 0, prestart: false });
  try {
    const report = await driver.isolation();
    if (!report.available) return { ok: false, line: describeIsolation(report) };
    const problem = await run(driver, runtime);
    return problem === null
      ? { ok: true, line: `ok — ${describeIsolation(report)}` }
      : { ok: false, line: `unavailable: ${problem}` };
  } finally {
    await driver.close();
  }
};

let failed = false;
for (const runtime of RUNTIMES) {
  const { ok, line } = await check(runtime);
  failed ||= !ok;
  console.log(`${runtime.name}: ${line}`);
}
process.exitCode = failed ? 1 : 0;
