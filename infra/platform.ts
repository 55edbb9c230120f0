import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type Koa from 'koa';
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
import { createFunctionCommands, type FunctionCommands } from '../commands/functions.ts';
import { createInvocationDispatcher } from '../commands/invocations.ts';
import { createPurger } from '../commands/purger.ts';
import { createUserCommands, type UserCommands } from '../commands/users.ts';
import { type InvocationResult, TOPICS } from '../domain/invocation/messages.ts';
import type { Clock, CodeStore, EventStore, Ids, InvocationBus, ReadStore } from '../domain/ports.ts';
import { errorOf } from '../domain/shared/errors.ts';
import { createInvocationRecorder, INVOCATION_INDEXES, invocationTotals } from '../projections/invocations.ts';
import {
  type CheckpointWatcher,
  createCheckpointWatcher,
  createProjector,
  type Projector,
} from '../projections/projector.ts';
import { READ_MODELS } from '../projections/readModels.ts';
import { RUNNERS_COLLECTION } from '../projections/runners.ts';
import { DECOY_HASH, hashPassword, verifyPassword } from './auth/passwords.ts';
import { loadOrCreateSecret } from './auth/secret.ts';
import { type LocalRecords, startRecorderThread, startRecording } from './recorderThread.ts';
import { createEmbeddedBroker, type EmbeddedBroker } from './bus/embedded/broker.ts';
import { inspectZip } from './codePackage/inspect.ts';
import { type Config, runnerEnvironment } from './config.ts';
import type { Logger } from './logger.ts';
import { busSocketPath } from './paths.ts';
import { checkRoleConfiguration, type Role } from './roles.ts';
import { startRunner } from './runner.ts';
import { openCodeStore, openEventStore, openKafkaBus, openReadStore } from './stores.ts';
import { NODE_FLAGS } from './nodeFlags.ts';
import { childEnvironment, type SupervisedProcess, supervise } from './supervisor.ts';
import { newRequestId, randomIds, systemClock } from './system.ts';
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

/** One node of a split platform (`strata start --role …`). */
export interface StrataNode {
  readonly role: Role;
  /** Where it serves HTTP, for the roles that do. */
  readonly url: string | undefined;
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
const SWEEP_INTERVAL_MS = 10 * 60_000;
const PURGE_INTERVAL_MS = 60_000;
/** How often a node that shares an embedded event log with other processes looks for their events. */
const SHARED_LOG_POLL_MS = 25;

/** What every role but the runner stands on: clock, ids, the stores and the bus. */
interface Core {
  readonly clock: Clock;
  readonly ids: Ids;
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly codeStore: CodeStore & { close?: () => Promise<void> };
  readonly bus: InvocationBus;
  readonly nodeId: string;
  /** A bounded probe of the bus for /health (Kafka's metadata; the embedded broker is this process). */
  checkBus(): Promise<void>;
  /** This node's projector, on the roles that project (`all`, `projector`); not started yet. */
  readonly projector: Projector | undefined;
  /** Commands resolve once their events are in the read models: this node's projector or the shared one. */
  awaitProjection(position: bigint): Promise<void>;
  close(): Promise<void>;
}

const openCore = async (
  role: Role,
  config: Config,
  logger: Logger,
  dependencies: PlatformDependencies,
): Promise<Core> => {
  const clock = dependencies.clock ?? systemClock;
  const ids = dependencies.ids ?? randomIds;
  const nodeId = config.nodeId ?? `${role === 'all' ? 'api' : role}-${hostname()}-${process.pid}`;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const eventStore = await openEventStore(config, logger, role === 'all' ? {} : { pollIntervalMs: SHARED_LOG_POLL_MS });
  const readStore = await openReadStore(config, logger);
  const codeStore = await openCodeStore(config);
  // STRATA_KAFKA_BROKERS switches the bus to Kafka; otherwise the embedded broker lives in this process.
  const kafka = dependencies.bus === undefined ? await openKafkaBus(config, nodeId, logger) : undefined;
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
  const projector =
    role === 'all' || role === 'projector'
      ? createProjector({
          eventStore,
          readStore,
          projections: READ_MODELS,
          onError: (error) => logger.error({ err: error }, 'projection stopped'),
          onOutage: (error, retryInMs) => logger.warn({ err: error, retryInMs }, 'read models wait for the store'),
        })
      : undefined;
  // Nodes that do not project wait for the projector's checkpoint in the shared read store.
  const watcher =
    projector === undefined ? createCheckpointWatcher({ readStore, projections: READ_MODELS }) : undefined;
  const progress: Pick<Projector, 'waitFor'> = projector ?? (watcher as CheckpointWatcher);
  return {
    clock,
    ids,
    eventStore,
    readStore,
    codeStore,
    bus,
    nodeId,
    checkBus: () => kafka?.check() ?? Promise.resolve(),
    projector,
    awaitProjection: (position) => progress.waitFor(position),
    async close() {
      watcher?.stop();
      await (broker ?? bus).close();
      await eventStore.close();
      await readStore.close();
      await codeStore.close?.();
    },
  };
};

/**
 * The projector's work: read models from the log, invocation records and metrics from results, heartbeats.
 * Recording runs on a thread of its own (infra/recorderThread.ts) where the bus is the embedded broker or
 * Kafka named by the configuration; a bus handed in (tests) is recorded from on this thread.
 */
const startProjectionWork = async (
  core: Core,
  config: Config,
  logger: Logger,
  projector: Projector,
  busGiven: boolean,
) => {
  const { readStore, bus } = core;
  await projector.start();
  for (const [collection, fields] of INVOCATION_INDEXES) await readStore.ensureIndex(collection, fields);
  await readStore.ensureIndex(RUNNERS_COLLECTION, ['nodeId']);
  const recording = busGiven
    ? await startRecording(bus, readStore, { nodeId: core.nodeId, retentionMs: config.invocationRetentionMs, logger })
    : await startRecorderThread(config, core.nodeId, logger);
  return {
    localRecords: recording satisfies LocalRecords,
    async close() {
      await recording.close();
      await projector.stop();
    },
  };
};

const commandsOf = (core: Core, config: Config) => ({
  functions: createFunctionCommands({
    eventStore: core.eventStore,
    codeStore: core.codeStore,
    inspectCodePackage: (bytes) => inspectZip(bytes),
    retentionMs: config.functionRetentionMs,
    awaitProjection: core.awaitProjection,
  }),
  users: createUserCommands({
    eventStore: core.eventStore,
    ids: core.ids,
    hashPassword,
    awaitProjection: core.awaitProjection,
  }),
});

/** The scheduler's work: purging deleted functions whose retention ended, expiring invocation records. */
const startScheduledJobs = (core: Core, config: Config, logger: Logger, functions: FunctionCommands) => {
  const now = () => core.clock.now();
  const recorder = createInvocationRecorder({
    readStore: core.readStore,
    nodeId: core.nodeId,
    retentionMs: config.invocationRetentionMs,
  });
  const purger = createPurger({ readStore: core.readStore, functions, now, newId: () => core.ids.next('purge') });
  const purge = () =>
    purger.sweep().then(
      (purged) => purged.length > 0 && logger.info({ purged }, 'purged deleted functions'),
      (error: unknown) => logger.error({ err: error }, 'purge sweep failed'),
    );
  void purge();
  const purgeTimer = setInterval(purge, PURGE_INTERVAL_MS);
  purgeTimer.unref();
  const sweepTimer = setInterval(
    () => void recorder.sweep(now()).catch((error: unknown) => logger.error({ err: error }, 'retention sweep failed')),
    SWEEP_INTERVAL_MS,
  );
  sweepTimer.unref();
  return {
    close() {
      clearInterval(purgeTimer);
      clearInterval(sweepTimer);
    },
  };
};

/** On first start (no user at all), the configured Admin; with a shared projector, once it has caught up. */
const bootstrapAdmin = async (core: Core, config: Config, logger: Logger, users: UserCommands) => {
  const bootId = core.ids.next('boot');
  await core.awaitProjection(await core.eventStore.headPosition());
  const registered = await ensureFirstAdmin(
    core.readStore,
    users,
    { username: config.adminUser, password: config.adminPassword },
    {
      userId: 'system',
      now: core.clock.now().toISOString(),
      traceId: bootId,
      correlationId: bootId,
      causationId: bootId,
    },
  ).catch((error: unknown) => {
    // Another API node registered it first.
    if (errorOf(error)?.code === 'CONFLICT') return false;
    throw error;
  });
  if (!registered) return;
  logger.info({ username: config.adminUser }, 'registered the first Admin');
  if (config.adminPasswordIsDefault) {
    logger.warn(
      { username: config.adminUser },
      'the first Admin has the default password: set STRATA_ADMIN_PASSWORD or change it with PUT /api/v1/users/{username}',
    );
  }
};

/** The HTTP API: every endpoint, or the gateway's invoke endpoints only. */
const startHttpApi = async (
  core: Core,
  config: Config,
  logger: Logger,
  surface: 'full' | 'gateway',
  commands: ReturnType<typeof commandsOf>,
  /** The recording of this process, if it has one: Queued records and sync answers go to it. */
  localRecords?: LocalRecords,
) => {
  const { readStore, bus, nodeId, clock } = core;
  const recorder =
    localRecords ?? createInvocationRecorder({ readStore, nodeId, retentionMs: config.invocationRetentionMs });
  const unrecorded = (error: unknown) =>
    logger.warn({ err: error }, 'the result of a sync invocation could not be recorded');
  // Without a recording here, the answer goes to the results topic for the node that records.
  const recordAnswer = (result: InvocationResult, value: string) => {
    const recorded =
      localRecords?.answered(value) ??
      bus.publish(TOPICS.results, [{ key: result.functionName, value }], { confirm: false });
    recorded.catch(unrecorded);
  };
  const dispatcher = createInvocationDispatcher({
    nodeId,
    bus,
    readStore,
    recorder,
    recordAnswer,
    defaultConcurrencyLimit: config.functionConcurrency,
    replyGraceMs: 10_000,
    now: () => clock.now(),
    newRequestId,
  });
  await dispatcher.start();

  const secret = loadOrCreateSecret(config.dataDir, config.jwtSecret);
  const now = () => clock.now();
  const { functions, users } = commands;
  const invoking = invocationEndpoints({
    readStore,
    dispatcher,
    metricsRetentionMs: config.invocationRetentionMs,
    now,
  });
  const app = createApp({
    endpoints:
      surface === 'gateway'
        ? invoking
        : [
            ...authEndpoints({
              readStore,
              tokens: createTokens(secret, config.jwtTtlSeconds, now),
              verifyPassword,
              decoyHash: DECOY_HASH,
              throttle: createLoginThrottle(),
            }),
            ...userEndpoints({ readStore, users }),
            ...functionEndpoints({
              readStore,
              functions,
              invocationStats: (name) => invocationTotals(readStore, name),
            }),
            ...versionEndpoints({
              readStore,
              functions,
              invocationCount: async (name, version) =>
                (await invocationTotals(readStore, `${name}:${version}`)).totalInvocations,
            }),
            ...aliasEndpoints({ readStore, functions }),
            ...invoking,
            ...runnerEndpoints(readStore, now),
          ],
    jwtSecret: secret,
    authenticate: createAuthenticate(readStore),
    rateLimiter: createRateLimiter(),
    rateLimits: config.rateLimits,
    healthProbes: [
      { name: 'eventStore', check: async () => void (await core.eventStore.headPosition()) },
      { name: 'readStore', check: async () => void (await readStore.getCheckpoint('health')) },
      { name: 'bus', check: () => core.checkBus() },
    ],
    logger,
    now,
  });

  const server = app.listen({ host: config.host, port: config.port });
  server.requestTimeout = 5 * 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host}:${port}`;
  logger.info({ url, dataDir: config.dataDir, surface }, 'Strata API listening');
  return {
    server,
    app,
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await dispatcher.close();
    },
  };
};

/** The whole platform in one process tree (`--role all`): the composition root of the embedded default. */
export const startPlatform = async (
  config: Config,
  logger: Logger,
  dependencies: PlatformDependencies = {},
): Promise<Platform> => {
  const telemetry = startTelemetry('strata-api');
  const core = await openCore('all', config, logger, dependencies);
  const projector = core.projector as Projector;
  const projection = await startProjectionWork(core, config, logger, projector, dependencies.bus !== undefined);
  const commands = commandsOf(core, config);
  await bootstrapAdmin(core, config, logger, commands.users);

  const runnerCount = dependencies.runners ?? 1;
  const inProcessRunner = runnerCount === 'inProcess' ? await startRunner(config, logger, core.bus) : undefined;
  const supervised: SupervisedProcess[] = [];
  for (let index = 1; typeof runnerCount === 'number' && index <= runnerCount; index += 1) {
    supervised.push(
      supervise(
        `runner-${index}`,
        process.execPath,
        [...NODE_FLAGS, STRATA_BIN, 'start', '--role', 'runner'],
        childEnvironment({
          ...runnerEnvironment(config),
          STRATA_RUNNER_ID: `runner-${index}`,
          STRATA_PARENT_PID: String(process.pid),
        }),
        logger,
      ),
    );
  }

  const http = await startHttpApi(core, config, logger, 'full', commands, projection.localRecords);
  const scheduled = startScheduledJobs(core, config, logger, commands.functions);

  return {
    server: http.server,
    app: http.app,
    eventStore: core.eventStore,
    readStore: core.readStore,
    projector,
    bus: core.bus,
    runnerPids: () => supervised.map((child) => child.pid()).filter((pid): pid is number => pid !== undefined),
    url: http.url,
    async close() {
      scheduled.close();
      await http.close();
      await Promise.all(supervised.map((child) => child.stop()));
      await inProcessRunner?.close();
      await projection.close();
      await telemetry.shutdown();
      await core.close();
    },
  };
};

/** One node of a split platform: `strata start --role api|projector|scheduler|gateway|runner`. */
export const startNode = async (role: Role, config: Config, logger: Logger): Promise<StrataNode> => {
  if (role === 'all') {
    const platform = await startPlatform(config, logger);
    return { role, url: platform.url, close: () => platform.close() };
  }
  if (role === 'runner') {
    const runner = await startRunner(config, logger);
    return { role, url: undefined, close: () => runner.close() };
  }
  checkRoleConfiguration(role, config);
  const telemetry = startTelemetry(`strata-${role}`);
  const core = await openCore(role, config, logger, {});
  const closers: Array<() => unknown> = [];
  if (core.projector !== undefined) {
    closers.push((await startProjectionWork(core, config, logger, core.projector, false)).close);
  }
  if (role === 'scheduler')
    closers.push(startScheduledJobs(core, config, logger, commandsOf(core, config).functions).close);
  let url: string | undefined;
  if (role === 'api' || role === 'gateway') {
    const commands = commandsOf(core, config);
    const http = await startHttpApi(core, config, logger, role === 'api' ? 'full' : 'gateway', commands);
    url = http.url;
    closers.push(http.close);
    // Never holds up start-up: the projector may come up after this node.
    if (role === 'api') {
      void bootstrapAdmin(core, config, logger, commands.users).catch((error: unknown) =>
        logger.error({ err: error }, 'could not register the first Admin'),
      );
    }
  }
  logger.info({ role, nodeId: core.nodeId }, 'Strata node started');
  return {
    role,
    url,
    async close() {
      for (const close of closers.reverse()) await close();
      await telemetry.shutdown();
      await core.close();
    },
  };
};
