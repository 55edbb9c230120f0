import { type Config, ConfigError } from './config.ts';

/**
 * What `strata start --role` may run. `all` is the whole platform in one process tree (the embedded
 * default); the others split it so that API and runner nodes scale out behind Kafka and MongoDB.
 */
export const ROLES = ['all', 'api', 'runner', 'projector', 'scheduler', 'gateway'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_SUMMARIES: Readonly<Record<Role, string>> = {
  all: 'everything in one process tree: API, projector, scheduler and supervised runner processes',
  api: 'the REST API and invoke dispatch; read-your-writes through the projector checkpoint',
  runner: 'executes invocations (isolates, runtime containers)',
  projector: 'event log → read models, invocation results → records and metrics, runner heartbeats',
  scheduler: 'time-driven jobs: purge of deleted functions, retention of invocation records',
  gateway: 'only the invoke endpoints (sync, async, status, logs, metrics) and /health',
};

export const isRole = (text: string | undefined): text is Role => ROLES.includes(text as Role);

/**
 * Nodes of a split platform share their state through the production adapters: the bus and the read
 * models cannot be embedded in another process. The event log may stay embedded (SQLite in a data
 * directory shared on one machine) or live in EventStoreDB.
 */
export const checkRoleConfiguration = (role: Role, config: Config): void => {
  if (role === 'all') return;
  const missing = [
    ...(config.kafkaBrokers === undefined ? ['STRATA_KAFKA_BROKERS'] : []),
    ...(config.mongoUrl === undefined ? ['STRATA_MONGODB_URL'] : []),
  ];
  if (role === 'runner' || missing.length === 0) return;
  throw new ConfigError(
    `role '${role}' shares state with the other nodes through Kafka and MongoDB: set ${missing.join(' and ')} (or use --role all)`,
  );
};
