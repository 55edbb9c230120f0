// The embedded bus on the sync-invoke path: the API process (which hosts the broker) publishes a request
// to an ephemeral topic, a runner process consumes it over the socket and publishes the reply to the API
// node's ephemeral reply topic, which the API consumes in-process. Also: the durable publish rate.
// `node bench/bus.ts`; the runner side is this file again, started with `--echo <socketPath>`.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { InvocationBus } from '../domain/ports.ts';
import { connectEmbeddedBus, createEmbeddedBroker } from '../infra/bus/embedded/broker.ts';

const REQUESTS = 'bench.invocations.sync';
const REPLIES = 'bench.replies.api-1';
const DURABLE = 'bench.invocations';
const silent = { warn() {}, info() {} };

export interface RoundTrips {
  readonly path: string;
  readonly concurrency: number;
  readonly roundTrips: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly perSecond: number;
}

export interface PublishRate {
  readonly path: string;
  readonly concurrency: number;
  readonly publishes: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

const percentile = (sorted: readonly number[], fraction: number) =>
  Number((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? 0).toFixed(3));

const runWorkers = async (count: number, concurrency: number, one: () => Promise<void>) => {
  const latencies: number[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      next += 1;
      const started = performance.now();
      await one();
      latencies.push(performance.now() - started);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { seconds, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) };
};

/** Request → runner → reply, `count` times from `concurrency` callers. */
const measureRoundTrips = async (
  api: InvocationBus,
  path: string,
  options: { count: number; concurrency: number },
): Promise<RoundTrips> => {
  const waiting = new Map<string, () => void>();
  const replies = await api.consume(
    { topic: REPLIES, group: 'api-1', concurrency: 1024, from: 'latest' },
    async (m) => {
      waiting.get(m.key)?.();
      waiting.delete(m.key);
    },
  );
  const payload = JSON.stringify({ functionName: 'resize', version: 3, event: { width: 640, height: 480 } });
  const roundTrip = () => {
    const requestId = randomUUID();
    const replied = new Promise<void>((resolve) => waiting.set(requestId, resolve));
    return api
      .publish(REQUESTS, [{ key: requestId, value: payload, headers: { replyTo: REPLIES } }])
      .then(() => replied);
  };
  await runWorkers(Math.min(2_000, options.count), options.concurrency, roundTrip);
  const { seconds, p50Ms, p99Ms } = await runWorkers(options.count, options.concurrency, roundTrip);
  await replies.close();
  return { path, ...options, roundTrips: options.count, p50Ms, p99Ms, perSecond: Math.round(options.count / seconds) };
};

const measurePublishRate = async (
  bus: InvocationBus,
  path: string,
  options: { publishes: number; concurrency: number },
): Promise<PublishRate> => {
  const value = JSON.stringify({ functionName: 'resize', version: 3, event: { width: 640, height: 480 } });
  let index = 0;
  const { seconds, p50Ms, p99Ms } = await runWorkers(options.publishes, options.concurrency, () =>
    bus.publish(DURABLE, [{ key: `k-${index++}`, value }]),
  );
  return { path, ...options, perSecond: Math.round(options.publishes / seconds), p50Ms, p99Ms };
};

const echo = async (socketPath: string) => {
  const bus = await connectEmbeddedBus({ socketPath, clientId: 'bench-runner', logger: silent });
  await bus.ensureTopics([{ name: REQUESTS, ephemeral: true }]);
  await bus.consume({ topic: REQUESTS, group: 'runners', concurrency: 64 }, async (message) => {
    const replyTo = message.headers?.replyTo;
    if (replyTo) await bus.publish(replyTo, [{ key: message.key, value: '{"statusCode":200,"body":"ok"}' }]);
  });
  process.stdout.write('ready\n');
};

const main = async () => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-bench-bus-'));
  const socketPath = join(directory, 'bus.sock');
  const broker = await createEmbeddedBroker({ path: join(directory, 'bus.db'), socketPath, logger: silent });
  const runner = spawn(process.execPath, [fileURLToPath(import.meta.url), '--echo', socketPath], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    await broker.bus.ensureTopics([
      { name: REQUESTS, ephemeral: true },
      { name: REPLIES, ephemeral: true },
      { name: DURABLE },
    ]);
    for await (const line of createInterface({ input: runner.stdout })) if (line === 'ready') break;

    const roundTrips: RoundTrips[] = [];
    const viaRunner = 'API → runner process → API';
    roundTrips.push(await measureRoundTrips(broker.bus, viaRunner, { count: 20_000, concurrency: 1 }));
    roundTrips.push(await measureRoundTrips(broker.bus, viaRunner, { count: 200_000, concurrency: 64 }));
    console.table(roundTrips);

    const rates: PublishRate[] = [];
    rates.push(await measurePublishRate(broker.bus, 'in the broker process', { publishes: 2_000, concurrency: 1 }));
    rates.push(await measurePublishRate(broker.bus, 'in the broker process', { publishes: 100_000, concurrency: 64 }));
    const client = await connectEmbeddedBus({ socketPath, clientId: 'bench-publisher', logger: silent });
    rates.push(await measurePublishRate(client, 'over the socket', { publishes: 2_000, concurrency: 1 }));
    rates.push(await measurePublishRate(client, 'over the socket', { publishes: 100_000, concurrency: 64 }));
    await client.close();
    console.table(rates);
  } finally {
    runner.kill('SIGKILL');
    await broker.close();
    await rm(directory, { recursive: true, force: true });
  }
};

if (import.meta.main) {
  const [mode, socketPath] = process.argv.slice(2);
  if (mode === '--echo' && socketPath) await echo(socketPath);
  else await main();
}
