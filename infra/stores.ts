import { join } from 'node:path';
import type { CodeStore, EventStore, ReadStore } from '../domain/ports.ts';
import { INVOCATION_COLLECTIONS } from '../projections/invocations.ts';
import { RUNNERS_COLLECTION } from '../projections/runners.ts';
import { createFileCodeStore } from './codeStore/files/index.ts';
import type { Config } from './config.ts';
import type { KafkaBus } from './bus/kafka/index.ts';
import { createSqliteEventStore } from './eventStore/sqlite/index.ts';
import type { Logger } from './logger.ts';
import { createPartitionedReadStore } from './readStore/partitioned.ts';
import { createSqliteReadStore, moveCollections } from './readStore/sqlite/index.ts';

// The production adapters are loaded only when configured: their clients (mongodb, @eventstore/db-client,
// kafkajs) are ~15 MB of heap and most of the start-up time of a process that runs on embedded defaults.

/**
 * The event log: EventStoreDB where STRATA_EVENTSTORE_URL is set, else SQLite in the data directory
 * (which processes on one machine may share; they look for each other's events every `pollIntervalMs`).
 */
export const openEventStore = async (
  config: Config,
  logger: Logger,
  options: { pollIntervalMs?: number } = {},
): Promise<EventStore> =>
  config.eventStoreUrl === undefined
    ? createSqliteEventStore({
        path: join(config.dataDir, 'events.db'),
        ...options,
        logger: { warn: (message, details) => logger.warn(details ?? {}, message) },
      })
    : await connected(
        (await import('./eventStore/esdb/index.ts')).createEsdbEventStore({
          connectionString: config.eventStoreUrl,
          logger,
        }),
      );

/** Start-up fails here, with one line naming the service, when it cannot be reached. */
const connected = async <T extends { connect(): Promise<void> }>(store: T): Promise<T> => {
  await store.connect();
  return store;
};

/** What invocations write (records, logs, metrics, totals) and runner heartbeats. */
const INVOCATION_DATA: ReadonlySet<string> = new Set([...Object.values(INVOCATION_COLLECTIONS), RUNNERS_COLLECTION]);

/**
 * The read models: MongoDB where STRATA_MONGODB_URL is set, else SQLite in the data directory, in two files:
 * read-models.db for users, functions, versions and aliases, invocations.db for what invocations write, so a
 * process's cache of the first is not dropped by every invocation another process records.
 */
export const openReadStore = async (config: Config, logger: Logger): Promise<ReadStore> => {
  if (config.mongoUrl !== undefined) {
    const { createMongoReadStore } = await import('./readStore/mongo/index.ts');
    return createMongoReadStore({ url: config.mongoUrl, logger });
  }
  const mainPath = join(config.dataDir, 'read-models.db');
  const sidePath = join(config.dataDir, 'invocations.db');
  const moved = moveCollections(mainPath, sidePath, [...INVOCATION_DATA]);
  if (moved > 0) logger.info({ moved }, 'invocation data moved to invocations.db');
  return createPartitionedReadStore(
    createSqliteReadStore({ path: mainPath }),
    createSqliteReadStore({ path: sidePath }),
    INVOCATION_DATA,
  );
};

/** Code packages: GridFS where STRATA_MONGODB_URL is set, else files in the data directory. */
export const openCodeStore = async (config: Config): Promise<CodeStore & { close?: () => Promise<void> }> =>
  config.mongoUrl === undefined
    ? createFileCodeStore({ directory: join(config.dataDir, 'code') })
    : (await import('./codeStore/gridfs/index.ts')).createGridFsCodeStore({ url: config.mongoUrl });

/** The invocation bus on Kafka, for a configuration that names brokers; connected, or start-up fails. */
export const openKafkaBus = async (config: Config, clientId: string, logger: Logger): Promise<KafkaBus | undefined> =>
  config.kafkaBrokers === undefined
    ? undefined
    : connected(
        (await import('./bus/kafka/index.ts')).createKafkaBus({
          brokers: config.kafkaBrokers,
          clientId,
          logger,
          namespace: config.kafkaNamespace,
          partitions: config.kafkaPartitions,
        }),
      );
