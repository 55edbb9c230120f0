import { resolve } from 'node:path';
import { durationMs } from '../domain/shared/duration.ts';

/** Everything Strata reads from its environment, parsed once at start-up. */
export interface Config {
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  readonly adminUser: string;
  readonly adminPassword: string;
  readonly adminPasswordIsDefault: boolean;
  /** Signing secret for JWTs; when absent one is generated and kept in the data directory. */
  readonly jwtSecret: string | undefined;
  readonly jwtTtlSeconds: number;
  /** Per-endpoint limits per minute overriding the defaults; `false` turns rate limiting off. */
  readonly rateLimits: Readonly<Record<string, number>> | false;
  /** How long a deleted function's name stays reserved before it is purged. */
  readonly functionRetentionMs: number;
  readonly logLevel: string;
  /**
   * This node's name on the bus (an API node's reply topic and group, a runner's id); default one made
   * of the role, host name and pid. A fixed one lets a restarted node reuse its reply topic.
   */
  readonly nodeId: string | undefined;
  /** Runner: containers alive at once (busy and idle), invocations worked on at once, idle lifetime. */
  readonly runner: {
    readonly nodeId: string | undefined;
    readonly maxContainers: number;
    readonly concurrency: number;
    readonly idleTtlMs: number;
    readonly heartbeatIntervalMs: number;
    /** Pre-started generic Python containers kept ready (0: every container starts on demand). */
    readonly pythonPool: number;
  };
  /** Async invocations: first retry delay (doubling), oldest event ever run. */
  readonly retryBaseDelayMs: number;
  readonly maxEventAgeMs: number;
  /** Sync invocations of one function running at once through one API node, unless the function says otherwise. */
  readonly functionConcurrency: number;
  /** How long invocation records, logs and metric buckets are kept. */
  readonly invocationRetentionMs: number;
  readonly eventStoreUrl: string | undefined;
  readonly mongoUrl: string | undefined;
  readonly kafkaBrokers: readonly string[] | undefined;
  /** Put before every Strata topic and consumer group name, so installations can share a Kafka cluster. */
  readonly kafkaNamespace: string;
  /** Partitions of the topics Strata creates (the most runners one topic can keep busy). */
  readonly kafkaPartitions: number;
}

export const DEFAULT_ADMIN_USER = 'admin@example.com';
export const DEFAULT_ADMIN_PASSWORD = 'Admin123!';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const integer = (env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number => {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got '${text}'`);
  }
  return value;
};

const duration = (env: NodeJS.ProcessEnv, name: string, fallback: string): number => {
  const text = env[name] || fallback;
  const ms = durationMs(text);
  if (ms === undefined)
    throw new ConfigError(`${name} must be an ISO-8601 duration such as P7D or PT1H, got '${text}'`);
  return ms;
};

const rateLimits = (text: string | undefined): Config['rateLimits'] => {
  if (text === undefined || text === '') return {};
  if (text === 'off') return false;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new ConfigError(`STRATA_RATE_LIMITS must be 'off' or a JSON object like {"POST /api/v1/functions": 100}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('STRATA_RATE_LIMITS must be a JSON object of endpoint → requests per minute');
  }
  for (const [endpoint, limit] of Object.entries(parsed)) {
    if (!Number.isInteger(limit) || (limit as number) < 1) {
      throw new ConfigError(`STRATA_RATE_LIMITS: the limit of '${endpoint}' must be a positive whole number`);
    }
  }
  return parsed as Record<string, number>;
};

export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  const adminPassword = env.STRATA_ADMIN_PASSWORD || DEFAULT_ADMIN_PASSWORD;
  const maxContainers = integer(env, 'STRATA_RUNNER_MAX_CONTAINERS', 64, 1, 10_000);
  return {
    host: env.HOST || '0.0.0.0',
    port: integer(env, 'PORT', 8080, 0, 65_535),
    dataDir: resolve(env.STRATA_DATA_DIR || '.strata'),
    adminUser: env.STRATA_ADMIN_USER || DEFAULT_ADMIN_USER,
    adminPassword,
    adminPasswordIsDefault: !env.STRATA_ADMIN_PASSWORD,
    jwtSecret: env.STRATA_JWT_SECRET || undefined,
    jwtTtlSeconds: integer(env, 'STRATA_JWT_TTL_SECONDS', 3_600, 60, 31_536_000),
    rateLimits: rateLimits(env.STRATA_RATE_LIMITS),
    functionRetentionMs: duration(env, 'STRATA_FUNCTION_RETENTION', 'P7D'),
    logLevel: env.STRATA_LOG_LEVEL || 'info',
    nodeId: nodeName(env, 'STRATA_NODE_ID'),
    runner: {
      nodeId: nodeName(env, 'STRATA_RUNNER_ID') ?? nodeName(env, 'STRATA_NODE_ID'),
      maxContainers,
      concurrency: integer(env, 'STRATA_RUNNER_CONCURRENCY', maxContainers, 1, 10_000),
      idleTtlMs: duration(env, 'STRATA_RUNNER_IDLE_TTL', 'PT10M'),
      heartbeatIntervalMs: duration(env, 'STRATA_HEARTBEAT_INTERVAL', 'PT2S'),
      pythonPool: integer(env, 'STRATA_PYTHON_POOL', 2, 0, 64),
    },
    retryBaseDelayMs: duration(env, 'STRATA_RETRY_BASE_DELAY', 'PT1S'),
    maxEventAgeMs: duration(env, 'STRATA_MAX_EVENT_AGE', 'PT6H'),
    functionConcurrency: integer(env, 'STRATA_FUNCTION_CONCURRENCY', 100, 1, 100_000),
    invocationRetentionMs: duration(env, 'STRATA_INVOCATION_RETENTION', 'P7D'),
    eventStoreUrl: env.STRATA_EVENTSTORE_URL || undefined,
    mongoUrl: env.STRATA_MONGODB_URL || undefined,
    kafkaBrokers: env.STRATA_KAFKA_BROKERS
      ? env.STRATA_KAFKA_BROKERS.split(',').map((broker) => broker.trim())
      : undefined,
    kafkaNamespace: kafkaNamespace(env.STRATA_KAFKA_NAMESPACE),
    kafkaPartitions: integer(env, 'STRATA_KAFKA_PARTITIONS', 4, 1, 10_000),
  };
};

const nodeName = (env: NodeJS.ProcessEnv, name: string): string | undefined => {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(text)) {
    throw new ConfigError(`${name} may hold letters, digits, '.', '_' and '-' only (at most 100), got '${text}'`);
  }
  return text;
};

const kafkaNamespace = (text: string | undefined): string => {
  if (text === undefined || text === '') return '';
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(text)) {
    throw new ConfigError(`STRATA_KAFKA_NAMESPACE may hold letters, digits, '.', '_' and '-' only, got '${text}'`);
  }
  return text;
};

/**
 * The variables that hand this configuration's runner settings to a runner child process, which reads
 * its configuration from its environment (the platform's may not come from `process.env`).
 */
export const runnerEnvironment = (config: Config): Record<string, string> => {
  const seconds = (ms: number) => `PT${ms / 1000}S`;
  return {
    STRATA_DATA_DIR: config.dataDir,
    STRATA_LOG_LEVEL: config.logLevel,
    STRATA_RUNNER_MAX_CONTAINERS: String(config.runner.maxContainers),
    STRATA_RUNNER_CONCURRENCY: String(config.runner.concurrency),
    STRATA_RUNNER_IDLE_TTL: seconds(config.runner.idleTtlMs),
    STRATA_HEARTBEAT_INTERVAL: seconds(config.runner.heartbeatIntervalMs),
    STRATA_PYTHON_POOL: String(config.runner.pythonPool),
    ...(config.kafkaBrokers === undefined
      ? {}
      : {
          STRATA_KAFKA_BROKERS: config.kafkaBrokers.join(','),
          STRATA_KAFKA_NAMESPACE: config.kafkaNamespace,
          STRATA_KAFKA_PARTITIONS: String(config.kafkaPartitions),
        }),
    ...(config.mongoUrl === undefined ? {} : { STRATA_MONGODB_URL: config.mongoUrl }),
    STRATA_RETRY_BASE_DELAY: seconds(config.retryBaseDelayMs),
    STRATA_MAX_EVENT_AGE: seconds(config.maxEventAgeMs),
  };
};
