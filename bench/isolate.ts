// The Node24 isolate runtime: cold start, warm invoke and idle heap per isolate. `node bench/isolate.ts`.
import { strToU8, zipSync } from 'fflate';
import { createIsolateDriver } from '../runners/isolate/driver.ts';
import type { Container, ContainerSpec } from '../runners/runtime.ts';
import { summary } from './stats.ts';

const COLD_SAMPLES = 300;
const WARM_SAMPLES = 20_000;
const IDLE_CONTAINERS = 50;
const TARGET_COLD_P50_MS = 5;
const TARGET_WARM_P50_MS = 0.2;
const TARGET_IDLE_HEAP_MB = 4;

const spec = (source: string): ContainerSpec => ({
  functionName: 'bench',
  version: 1,
  runtime: 'Node24',
  handler: 'index.handler',
  memorySize: 128,
  timeout: 10,
  environment: { STAGE: 'bench' },
  code: zipSync({ 'index.js': strToU8(source) }),
});
const syncHello = spec('exports.handler = (event) => ({ hello: event.name });');
const asyncHello = spec('exports.handler = async (event) => ({ hello: event.name });');
const payload = JSON.stringify({ name: 'world' });

const invokeOnce = async (container: Container): Promise<void> => {
  const result = await container.invoke({ requestId: 'bench', payload, deadline: Date.now() + 10_000 });
  if (result.outcome !== 'success') throw new Error(`bench invocation failed: ${JSON.stringify(result)}`);
};

const driver = createIsolateDriver();
try {
  // Warms the host's JIT and the driver's per-code cache, which a runner has after its first container.
  for (let i = 0; i < 20; i++) (await driver.createContainer(syncHello)).dispose();

  const cold: number[] = [];
  const coldReported: number[] = [];
  for (let i = 0; i < COLD_SAMPLES; i++) {
    const started = performance.now();
    const container = await driver.createContainer(syncHello);
    await invokeOnce(container);
    cold.push(performance.now() - started);
    coldReported.push(container.coldStartMs);
    container.dispose();
  }

  const warm = async (container: Container): Promise<number[]> => {
    const samples: number[] = [];
    for (let i = 0; i < 1_000; i++) await invokeOnce(container);
    for (let i = 0; i < WARM_SAMPLES; i++) {
      const started = performance.now();
      await invokeOnce(container);
      samples.push(performance.now() - started);
    }
    return samples;
  };
  const syncContainer = await driver.createContainer(syncHello);
  const warmSync = await warm(syncContainer);
  const asyncContainer = await driver.createContainer(asyncHello);
  const warmAsync = await warm(asyncContainer);
  syncContainer.dispose();
  asyncContainer.dispose();

  const idle: Container[] = [];
  for (let i = 0; i < IDLE_CONTAINERS; i++) {
    const container = await driver.createContainer(syncHello);
    await invokeOnce(container);
    idle.push(container);
  }
  const idleHeapMb = idle.reduce((sum, container) => sum + container.memoryUsage(), 0) / idle.length / 2 ** 20;
  for (const container of idle) container.dispose();

  const rows = {
    'cold start + first invoke (ms)': { ...summary(cold), target: `p50 < ${TARGET_COLD_P50_MS}` },
    'coldStartMs reported (ms)': { ...summary(coldReported), target: '' },
    'warm invoke, sync handler (ms)': { ...summary(warmSync), target: `p50 < ${TARGET_WARM_P50_MS}` },
    'warm invoke, async handler (ms)': { ...summary(warmAsync), target: `p50 < ${TARGET_WARM_P50_MS}` },
  };
  console.table(rows);
  console.log(
    `heap per idle isolate after ${IDLE_CONTAINERS} containers: ${idleHeapMb.toFixed(2)} MB (target < ${TARGET_IDLE_HEAP_MB} MB)`,
  );
} finally {
  await driver.close();
}
