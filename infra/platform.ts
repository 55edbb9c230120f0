import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type Koa from 'koa';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createApp } from '../api/app.ts';
import { createAuthenticate, createTokens } from '../api/auth.ts';
import { createRateLimiter } from '../api/middleware/rateLimit.ts';
import { aliasEndpoints } from '../api/routes/aliases.ts';
import { authEndpoints, createLoginThrottle } from '../api/routes/auth.ts';
import { functionEndpoints } from '../api/routes/functions.ts';
import { invocationEndpoints } from '../api/routes/invocations.ts';
import { runnerEndpoints } from '../api/routes/runners.ts';
import { userEndpoints } from '../api/routes/users.ts';
import { versionEndpoints } from '../api/routes/versions.ts';
import { ensureFirstAdmin } from '../commands/bootstrap.ts';
import { createFunctionCommands } from '../commands/functions.ts';
import { createInvocationDispatcher } from '../commands/invocations.ts';
import { createPurger } from '../commands/purger.ts';
import { createUserCommands } from '../commands/users.ts';
import { type InvocationResult, type RunnerHeartbeat, TOPICS } from '../domain/invocation/messages.ts';
import type { Clock, Consumer, EventStore, Ids, InvocationBus, ReadStore } from '../domain/ports.ts';
import { createInvocationRecorder, INVOCATION_INDEXES, invocationTotals } from '../projections/invocations.ts';
import { RUNNERS_COLLECTION, recordHeartbeat } from '../projections/runners.ts';
import { createProjector, type Projector } from '../projections/projector.ts';
import { READ_MODELS } from '../projections/readModels.ts';
import { DECOY_HASH, hashPassword, verifyPassword } from './auth/passwords.ts';
import { loadOrCreateSecret } from './auth/secret.ts';
import { inspectZip } from './codePackage/inspect.ts';
import { type Config, runnerEnvironment } from './config.ts';
import { createSqliteEventStore } from './eventStore/sqlite/index.ts';
import type { Logger } from './logger.ts';
import { createEmbeddedBroker, type EmbeddedBroker } from './bus/embedded/broker.ts';
import { createKafkaBus } from './bus/kafka/index.ts';
import { busSocketPath } from './paths.ts';
import { openCodeStore, openReadStore } from './stores.ts';
import { startRunner } from './runner.ts';
import { childEnvironment, type SupervisedProcess, supervise } from './supervisor.ts';
import { randomIds, systemClock } from './system.ts';
import { startTelemetry } from './telemetry/index.ts';

export interface Platform {
  readonly server: Server;
  /** The Koa app the server runs (its routers are what the API answers). */
  readonly app: Koa;
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly projector: Projector;
  readonly bus: InvocationBus;
  /** Pids of the runner processes this platform supervises (embedded mode). */
  runnerPids(): number[];
  /** The address the API listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  close(): Promise<void>;
}

export interface PlatformDependencies {
  readonly clock?: Clock;
  readonly ids?: Ids;
  /**
   * Runner processes to supervise (default 1). 0 starts none; 'inProcess' runs one inside this process
   * (tests of the API that do not exercise process isolation).
   */
  readonly runners?: number | 'inProcess';
  /**
   * The invocation bus (a Kafka one, say) in place of the embedded broker, which is then not started; the
   * platform closes it. Supervised runner processes reach only the embedded broker: use 0 or 'inProcess'.
   */
  readonly bus?: InvocationBus;
}

const STRATA_BIN = fileURLToPath(new URL('../bin/strata.ts', import.meta.url));
const FLUSH_INTERVAL_MS = 1_000;
const SWEEP_INTERVAL_MS = 10 * 60_000;

const PURGE_INTERVAL_MS = 60_000;

/** The composition root: builds every adapter from configuration and wires the layers together. */
export const startPlatform = async (
  config: Config,
  logger: Logger,
  dependencies: PlatformDependencies = {},
): Promise<Platform> => {
  const telemetry = startTelemetry('strata-api');
  const clock = dependencies.clock ?? systemClock;
  const ids = dependencies.ids ?? randomIds;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const eventStore = createSqliteEventStore({ path: join(config.dataDir, 'events.db') });
  const readStore = await openReadStore(config, logger);
  const codeStore = openCodeStore(config);
  const projector = createProjector({
    eventStore,
    readStore,
    projections: READ_MODELS,
    onError: (error) => logger.error({ err: error }, 'projection stopped'),
  });
  await projector.start();

  const awaitProjection = (position: bigint) => projector.waitFor(position);
  const functions = createFunctionCommands({
    eventStore,
    codeStore,
    inspectCodePackage: (bytes) => inspectZip(bytes),
    retentionMs: config.functionRetentionMs,
    awaitProjection,
  });
  const users = createUserCommands({ eventStore, ids, hashPassword, awaitProjection });

  const bootId = ids.next('boot');
  const systemMetadata = () => ({
    userId: 'system',
    now: clock.now().toISOString(),
    traceId: bootId,
    correlationId: bootId,
    causationId: bootId,
  });
  if (
    await ensureFirstAdmin(
      readStore,
      users,
      { username: config.adminUser, password: config.adminPassword },
      systemMetadata(),
    )
  ) {
    logger.info({ username: config.adminUser }, 'registered the first Admin');
    if (config.adminPasswordIsDefault) {
      logger.warn(
        { username: config.adminUser },
        'the first Admin has the default password: set STRATA_ADMIN_PASSWORD or change it with PUT /api/v1/users/{username}',
      );
    }
  }

  const nodeId = `api-${hostname()}-${process.pid}`;
  // STRATA_KAFKA_BROKERS switches the bus to Kafka; otherwise the embedded broker lives in this process.
  const kafka =
    dependencies.bus === undefined && config.kafkaBrokers !== undefined
      ? createKafkaBus({ brokers: config.kafkaBrokers, clientId: nodeId, logger })
      : undefined;
  const external = dependencies.bus ?? kafka;
  const broker =
    external === undefined
      ? await createEmbeddedBroker({
          path: join(config.dataDir, 'bus.db'),
          socketPath: busSocketPath(config.dataDir),
          logger,
        })
      : undefined;
  const bus = external ?? (broker as EmbeddedBroker).bus;
  for (const [collection, fields] of INVOCATION_INDEXES) await readStore.ensureIndex(collection, fields);
  await readStore.ensureIndex(RUNNERS_COLLECTION, ['nodeId']);
  const recorder = createInvocationRecorder({ readStore, nodeId, retentionMs: config.invocationRetentionMs });
  const dispatcher = createInvocationDispatcher({
    nodeId,
    bus,
    readStore,
    recorder,
    defaultConcurrencyLimit: config.functionConcurrency,
    replyGraceMs: 10_000,
    now: () => clock.now(),
    newRequestId: () => ids.next('req'),
  });
  await dispatcher.start();
  await bus.ensureTopics([{ name: TOPICS.heartbeats, ephemeral: true }]);
  const consumers: Consumer[] = [
    await bus.consume({ topic: TOPICS.results, group: 'strata-records', concurrency: 1 }, async (message) => {
      await recorder.record(JSON.parse(message.value) as InvocationResult);
    }),
    await bus.consume(
      { topic: TOPICS.heartbeats, group: `strata-runners-view-${nodeId}`, from: 'latest' },
      async (message) => {
        await recordHeartbeat(readStore, JSON.parse(message.value) as RunnerHeartbeat);
      },
    ),
  ];
  const flushTimer = setInterval(
    () => void recorder.flush().catch((error: unknown) => logger.error({ err: error }, 'metrics flush failed')),
    FLUSH_INTERVAL_MS,
  );
  const sweepTimer = setInterval(
    () =>
      void recorder
        .sweep(clock.now())
        .catch((error: unknown) => logger.error({ err: error }, 'retention sweep failed')),
    SWEEP_INTERVAL_MS,
  );
  sweepTimer.unref();

  const runnerCount = dependencies.runners ?? 1;
  const inProcessRunner = runnerCount === 'inProcess' ? await startRunner(config, logger, bus) : undefined;
  const supervised: SupervisedProcess[] = [];
  for (let index = 1; typeof runnerCount === 'number' && index <= runnerCount; index += 1) {
    supervised.push(
      supervise(
        `runner-${index}`,
        process.execPath,
        [STRATA_BIN, 'start', '--role', 'runner'],
        childEnvironment({
          ...runnerEnvironment(config),
          STRATA_RUNNER_ID: `runner-${index}`,
          STRATA_PARENT_PID: String(process.pid),
        }),
        logger,
      ),
    );
  }

  const secret = loadOrCreateSecret(config.dataDir, config.jwtSecret);
  const now = () => clock.now();
  const app = createApp({
    endpoints: [
      ...authEndpoints({
        readStore,
        tokens: createTokens(secret, config.jwtTtlSeconds, now),
        verifyPassword,
        decoyHash: DECOY_HASH,
        throttle: createLoginThrottle(),
      }),
      ...userEndpoints({ readStore, users }),
      ...functionEndpoints({ readStore, functions, invocationStats: (name) => invocationTotals(readStore, name) }),
      ...versionEndpoints({
        readStore,
        functions,
        invocationCount: async (name, version) =>
          (await invocationTotals(readStore, `${name}:${version}`)).totalInvocations,
      }),
      ...aliasEndpoints({ readStore, functions }),
      ...invocationEndpoints({ readStore, dispatcher, metricsRetentionMs: config.invocationRetentionMs, now }),
      ...runnerEndpoints(readStore, now),
    ],
    jwtSecret: secret,
    authenticate: createAuthenticate(readStore),
    rateLimiter: createRateLimiter(),
    rateLimits: config.rateLimits,
    healthProbes: [
      { name: 'eventStore', check: async () => void (await eventStore.headPosition()) },
      { name: 'readStore', check: async () => void (await readStore.getCheckpoint('health')) },
    ],
    logger,
    now,
  });

  const purger = createPurger({ readStore, functions, now, newId: () => ids.next('purge') });
  const sweep = () =>
    purger.sweep().then(
      (purged) => purged.length > 0 && logger.info({ purged }, 'purged deleted functions'),
      (error: unknown) => logger.error({ err: error }, 'purge sweep failed'),
    );
  void sweep();
  const purgeTimer = setInterval(sweep, PURGE_INTERVAL_MS);
  purgeTimer.unref();

  const server = app.listen({ host: config.host, port: config.port });
  server.requestTimeout = 5 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  logger.info({ url: `http://${host}:${port}`, dataDir: config.dataDir }, 'Strata API listening');

  return {
    server,
    app,
    eventStore,
    readStore,
    projector,
    bus,
    runnerPids: () => supervised.map((child) => child.pid()).filter((pid): pid is number => pid !== undefined),
    url: `http://${host}:${port}`,
    async close() {
      clearInterval(purgeTimer);
      clearInterval(flushTimer);
      clearInterval(sweepTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await Promise.all(supervised.map((child) => child.stop()));
      await inProcessRunner?.close();
      for (const consumer of consumers) await consumer.close();
      await dispatcher.close();
      await recorder.flush();
      await (broker ?? bus).close();
      await telemetry.shutdown();
      await projector.stop();
      await eventStore.close();
      await readStore.close();
      await codeStore.close?.();
    },
  };
};
