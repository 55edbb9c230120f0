import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { createApp } from '../api/app.ts';
import { createAuthenticate, createTokens } from '../api/auth.ts';
import { createRateLimiter } from '../api/middleware/rateLimit.ts';
import { aliasEndpoints } from '../api/routes/aliases.ts';
import { authEndpoints, createLoginThrottle } from '../api/routes/auth.ts';
import { functionEndpoints } from '../api/routes/functions.ts';
import { userEndpoints } from '../api/routes/users.ts';
import { versionEndpoints } from '../api/routes/versions.ts';
import { ensureFirstAdmin } from '../commands/bootstrap.ts';
import { createFunctionCommands } from '../commands/functions.ts';
import { createPurger } from '../commands/purger.ts';
import { createUserCommands } from '../commands/users.ts';
import type { Clock, CodeStore, EventStore, Ids, ReadStore } from '../domain/ports.ts';
import { createProjector, type Projector } from '../projections/projector.ts';
import { READ_MODELS } from '../projections/readModels.ts';
import { DECOY_HASH, hashPassword, verifyPassword } from './auth/passwords.ts';
import { loadOrCreateSecret } from './auth/secret.ts';
import { inspectZip } from './codePackage/inspect.ts';
import { createFileCodeStore } from './codeStore/files/index.ts';
import type { Config } from './config.ts';
import { createSqliteEventStore } from './eventStore/sqlite/index.ts';
import type { Logger } from './logger.ts';
import { createSqliteReadStore } from './readStore/sqlite/index.ts';
import { randomIds, systemClock } from './system.ts';

export interface Platform {
  readonly server: Server;
  readonly eventStore: EventStore;
  readonly readStore: ReadStore;
  readonly projector: Projector;
  /** The address the API listens on, e.g. http://127.0.0.1:8080. */
  readonly url: string;
  close(): Promise<void>;
}

export interface PlatformDependencies {
  readonly clock?: Clock;
  readonly ids?: Ids;
}

const PURGE_INTERVAL_MS = 60_000;

/** The composition root: builds every adapter from configuration and wires the layers together. */
export const startPlatform = async (
  config: Config,
  logger: Logger,
  dependencies: PlatformDependencies = {},
): Promise<Platform> => {
  const clock = dependencies.clock ?? systemClock;
  const ids = dependencies.ids ?? randomIds;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const eventStore = createSqliteEventStore({ path: join(config.dataDir, 'events.db') });
  const readStore = createSqliteReadStore({ path: join(config.dataDir, 'read-models.db') });
  const codeStore: CodeStore = createFileCodeStore({ directory: join(config.dataDir, 'code') });
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
      ...functionEndpoints({ readStore, functions }),
      ...versionEndpoints({ readStore, functions }),
      ...aliasEndpoints({ readStore, functions }),
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
    eventStore,
    readStore,
    projector,
    url: `http://${host}:${port}`,
    async close() {
      clearInterval(purgeTimer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await projector.stop();
      await eventStore.close();
      await readStore.close();
    },
  };
};
