// The Python311 container runtime at the driver level: warm invoke, cold start from the pre-started pool
// and with the pool empty. `node bench/python.ts [coldSamples] [warmSamples]`.
import { availableParallelism, loadavg } from 'node:os';
import { strToU8, zipSync } from 'fflate';
import { type ContainerDriver, createContainerDriver, describeIsolation } from '../runners/container/driver.ts';
import type { Container, ContainerSpec } from '../runners/runtime.ts';
import { summary } from './stats.ts';

const COLD_SAMPLES = Number(process.argv[2] ?? 100);
const WARM_SAMPLES = Number(process.argv[3] ?? 5_000);
const TARGET_COLD_POOL_P50_MS = 15;
const TARGET_COLD_EMPTY_P50_MS = 80;
const TARGET_WARM_P50_MS = 2;

const spec: ContainerSpec = {
  functionName: 'bench',
  version: 1,
  runtime: 'Python311',
  handler: 'handler.process_image',
  memorySize: 128,
  timeout: 10,
  environment: { STAGE: 'bench' },
  code: zipSync({
    'handler.py': strToU8('def process_image(event, context):\n    return {"hello": event["name"]}\n'),
  }),
};
const payload = JSON.stringify({ name: 'world' });

const invokeOnce = async (container: Container): Promise<void> => {
  const result = await container.invoke({ requestId: 'bench', payload, deadline: Date.now() + 10_000 });
  if (result.outcome !== 'success') throw new Error(`bench invocation failed: ${JSON.stringify(result)}`);
};

/** Cold starts: `coldStartMs` as reported, and create + first invoke as a caller sees it. */
const coldStarts = async (driver: ContainerDriver, fromPool: boolean) => {
  const reported: number[] = [];
  const total: number[] = [];
  for (let i = 0; i < COLD_SAMPLES; i++) {
    // Cold starts are occasional: each one finds the pool refilled since the last (as a runner would).
    if (fromPool) await driver.poolFilled();
    const started = performance.now();
    const container = await driver.createContainer(spec);
    await invokeOnce(container);
    total.push(performance.now() - started);
    reported.push(container.coldStartMs);
    container.dispose();
  }
  return { reported, total };
};

const load = () => loadavg()[0]?.toFixed(2) ?? '?';
const loadBefore = load();

const pooled = createContainerDriver({ poolSize: 2 });
const empty = createContainerDriver({ poolSize: 0 });
try {
  const report = await pooled.isolation();
  if (!report.available) {
    console.error(`Python311 containers cannot run here: ${report.problem}`);
    process.exit(1);
  }
  console.log(`isolation: ${describeIsolation(report)}`);

  // Warm: one container, concurrency 1.
  await pooled.poolFilled();
  const container = await pooled.createContainer(spec);
  for (let i = 0; i < 500; i++) await invokeOnce(container);
  const warm: number[] = [];
  const warmStarted = performance.now();
  for (let i = 0; i < WARM_SAMPLES; i++) {
    const started = performance.now();
    await invokeOnce(container);
    warm.push(performance.now() - started);
  }
  const requestsPerSecond = WARM_SAMPLES / ((performance.now() - warmStarted) / 1000);
  container.dispose();

  const fromPool = await coldStarts(pooled, true);
  const withoutPool = await coldStarts(empty, false);

  console.table({
    'warm invoke, concurrency 1 (ms)': { ...summary(warm), target: `p50 < ${TARGET_WARM_P50_MS}` },
    'cold start from the pool, coldStartMs (ms)': {
      ...summary(fromPool.reported),
      target: `p50 < ${TARGET_COLD_POOL_P50_MS}`,
    },
    'cold start from the pool + first invoke (ms)': { ...summary(fromPool.total), target: '' },
    'cold start, pool empty, coldStartMs (ms)': {
      ...summary(withoutPool.reported),
      target: `p50 < ${TARGET_COLD_EMPTY_P50_MS}`,
    },
    'cold start, pool empty + first invoke (ms)': { ...summary(withoutPool.total), target: '' },
  });
  console.log(`warm throughput at concurrency 1: ${requestsPerSecond.toFixed(0)} req/s`);
  console.log(
    `${availableParallelism()} CPUs; load average ${loadBefore} before, ${load()} after (other work on the machine skews these figures)`,
  );
} finally {
  await pooled.close();
  await empty.close();
}
