import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { RUNNER_GROUP, TOPICS } from '../domain/invocation/messages.ts';
import type { Consumer, InvocationBus } from '../domain/ports.ts';
import { createContainerDriver } from '../runners/container/driver.ts';
import { createHeartbeats } from '../runners/heartbeat.ts';
import { createInvoker } from '../runners/invoker.ts';
import { createIsolateDriver } from '../runners/isolate/driver.ts';
import { createPool } from '../runners/pool.ts';
import { connectEmbeddedBus } from './bus/embedded/client.ts';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { openCodeStore, openKafkaBus, openReadStore } from './stores.ts';
import { busSocketPath } from './paths.ts';
import { startTelemetry } from './telemetry/index.ts';

export interface Runner {
  readonly nodeId: string;
  close(): Promise<void>;
}

/** The runner role's composition root: bus consumer, warm pool, runtimes, heartbeats. */
export const startRunner = async (config: Config, logger: Logger, bus?: InvocationBus): Promise<Runner> => {
  const telemetry = startTelemetry('strata-runner');
  const nodeId = config.runner.nodeId ?? `runner-${hostname()}-${randomBytes(3).toString('hex')}`;
  const connected =
    bus ??
    (await openKafkaBus(config, nodeId, logger)) ??
    (await connectEmbeddedBus({ socketPath: busSocketPath(config.dataDir), clientId: nodeId, logger }));
  const readStore = await openReadStore(config, logger);
  const codeStore = await openCodeStore(config);
  const drivers = {
    isolate: createIsolateDriver(),
    container: createContainerDriver({
      workDir: join(config.dataDir, 'containers'),
      poolSize: config.runner.pythonPool,
    }),
  };
  const pool = createPool({ maxContainers: config.runner.maxContainers, idleTtlMs: config.runner.idleTtlMs });
  const invoker = createInvoker({
    nodeId,
    bus: connected,
    readStore,
    codeStore,
    drivers,
    pool,
    retryBaseDelayMs: config.retryBaseDelayMs,
    maxEventAgeMs: config.maxEventAgeMs,
    logger,
  });

  await connected.ensureTopics([
    { name: TOPICS.invocations },
    { name: TOPICS.syncInvocations, ephemeral: true },
    { name: TOPICS.results },
    { name: TOPICS.deadLetters },
    { name: TOPICS.heartbeats, ephemeral: true },
  ]);
  const consumers: Consumer[] = [];
  for (const topic of [TOPICS.syncInvocations, TOPICS.invocations]) {
    consumers.push(
      await connected.consume({ topic, group: RUNNER_GROUP, concurrency: config.runner.concurrency }, (message) =>
        invoker.handle(message),
      ),
    );
  }

  const heartbeat = createHeartbeats({
    nodeId,
    port: null,
    startedAt: new Date().toISOString(),
    intervalMs: config.runner.heartbeatIntervalMs,
    maxContainers: config.runner.maxContainers,
    pool: () => pool.stats(),
    counters: invoker.counters,
    inFlight: invoker.inFlight,
  });
  const beat = () =>
    connected
      .publish(TOPICS.heartbeats, [{ key: nodeId, value: JSON.stringify(heartbeat(new Date())) }])
      .catch((error: unknown) => logger.warn({ err: error }, 'heartbeat not sent'));
  void beat();
  const timer = setInterval(beat, config.runner.heartbeatIntervalMs);
  logger.info({ nodeId, maxContainers: config.runner.maxContainers }, 'runner started');

  return {
    nodeId,
    async close() {
      clearInterval(timer);
      for (const consumer of consumers) await consumer.close();
      await invoker.drain();
      pool.close();
      for (const driver of Object.values(drivers)) await driver.close();
      if (bus === undefined) await connected.close();
      await readStore.close();
      await codeStore.close?.();
      await telemetry.shutdown();
    },
  };
};
