import { connect, isIP } from 'node:net';
import tls from 'node:tls';
import type { ISocketFactory, RetryOptions } from 'kafkajs';
import kafkajs from 'kafkajs';
import type { Consumer, InvocationBus } from '../../../domain/ports.ts';
import { withTimeout } from '../../serviceErrors.ts';
import { type ConsumerSettings, startConsumer } from './consumer.ts';
import { BusError, type KafkaBusLogger, kafkaErrorTypes, kafkaLogCreator } from './errors.ts';
import { createClusterProbe } from './probe.ts';
import { createPublisher } from './publisher.ts';
import { fixKafkaRequestQueue } from './requestQueueFix.ts';
import { createTopicAdmin, validTopicName } from './topics.ts';

// kafkajs is CommonJS whose exports Node cannot detect statically: named imports fail at run time.
const { Kafka, logLevel } = kafkajs;

export { BusError, isBusError, type KafkaBusLogger } from './errors.ts';

export interface KafkaBusOptions {
  /** `host:port` of one or more brokers; the rest of the cluster is discovered from them. */
  readonly brokers: readonly string[];
  /** Names this process to the brokers (their logs, quotas). */
  readonly clientId: string;
  /**
   * Put before every topic and group name on the cluster (`acme.` makes `strata.invocations`
   * `acme.strata.invocations`), so that several installations, or test runs, can share one cluster.
   * Delivered messages carry the topic name without it. Default none.
   */
  readonly namespace?: string;
  /** Partitions of the topics this bus creates when their spec names none. Default 4. */
  readonly partitions?: number;
  /** Replicas of each partition of created topics. Default 3, or the number of brokers if fewer. */
  readonly replicationFactor?: number;
  /** How long ephemeral topics keep messages (Kafka cannot keep a topic in memory only). Default 1 h. */
  readonly ephemeralRetentionMs?: number;
  /** Largest message created topics accept. Default 16 MiB (sync results may be 6 MB of JSON). */
  readonly maxMessageBytes?: number;
  /** Default `console`. */
  readonly logger?: KafkaBusLogger;
  /**
   * kafkajs's retry settings (exponential backoff with jitter) for connecting, metadata, publishing and
   * commits; once they are used up a call fails as `UNAVAILABLE`. Default: kafkajs's (5 retries from 300 ms).
   * Tests want much faster ones.
   */
  readonly retry?: RetryOptions;
  /** Default 3 000. */
  readonly connectionTimeoutMs?: number;
  /** Default 30 000. */
  readonly requestTimeoutMs?: number;
  /**
   * How long the bus's first contact with the cluster (`connect`, or else its first call) may take: a
   * cluster that has not answered a metadata request by then fails it with one `ServiceUnreachableError`
   * naming Kafka and the brokers, so that a process cannot start against a missing Kafka. Default 5 000.
   */
  readonly reachTimeoutMs?: number;
  /**
   * How long a publish may wait for the brokers' acknowledgement (kafkajs retrying a broker that is down,
   * or one that hangs) before it fails with `UNAVAILABLE`. Messages not yet sent by then are never sent.
   * Default 10 000.
   */
  readonly publishTimeoutMs?: number;
  /** How long `check` waits for the cluster's answer. Default 2 000. */
  readonly checkTimeoutMs?: number;
  /** Delay before a message whose handler failed is delivered again: initialMs × 2^(attempt−1), at most maxMs. Defaults 100 and 10 000. */
  readonly redelivery?: { readonly initialMs?: number; readonly maxMs?: number };
  /** Consumer group settings; see ConsumerSettings. */
  readonly consumer?: Partial<Omit<ConsumerSettings, 'redeliveryInitialMs' | 'redeliveryMaxMs'>>;
}

/**
 * kafkajs's own sockets, but with Nagle's algorithm off: a small request written while another is
 * unacknowledged (a commit beside a heartbeat) would otherwise wait for the broker's delayed ACK, up to
 * 40 ms on Linux.
 */
const noDelaySockets: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : connect({ host, port }, onConnect);
  socket.setKeepAlive(true, 60_000);
  socket.setNoDelay(true);
  return socket;
};

/**
 * A new cluster creates its offsets topic on the first group's request and has no group coordinator for
 * a few seconds; kafkajs fails that as not worth retrying, while it only needs patience.
 */
const coordinatorMissing = (error: unknown): boolean => {
  const types = kafkaErrorTypes(error);
  if (types.some((type) => COORDINATOR_ERRORS.has(type))) return true;
  for (let cause = error; typeof cause === 'object' && cause !== null; cause = (cause as Error).cause) {
    if ((cause as Error).name === 'KafkaJSGroupCoordinatorNotFound') return true;
  }
  return false;
};

const COORDINATOR_ERRORS: ReadonlySet<string> = new Set([
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
  'GROUP_LOAD_IN_PROGRESS',
]);

const CONSUMER_DEFAULTS: Omit<ConsumerSettings, 'redeliveryInitialMs' | 'redeliveryMaxMs'> = {
  sessionTimeoutMs: 10_000,
  rebalanceTimeoutMs: 30_000,
  // A member learns of a rebalance at its next heartbeat, and the group waits for the last one to.
  heartbeatIntervalMs: 1_000,
  maxWaitTimeMs: 100,
  maxBytesPerPartition: 1024 * 1024,
  closeTimeoutMs: 30_000,
  startTimeoutMs: 60_000,
  maxQueuedPerPartition: 512,
  maxUncommittedPerPartition: 10_000,
  commitIntervalMs: 50,
};

/** The InvocationBus on Kafka, and what a composition root may ask of it beyond the port. */
export interface KafkaBus extends InvocationBus {
  /**
   * Reaches the cluster (a metadata request) within `reachTimeoutMs`, else rejects with one
   * `ServiceUnreachableError` naming Kafka and the brokers. Every call does this first until it succeeded once.
   */
  connect(): Promise<void>;
  /** A health probe: resolves when the cluster answers within `checkTimeoutMs`, else `BusError` `UNAVAILABLE`. */
  check(): Promise<void>;
}

/**
 * The InvocationBus on Apache Kafka (kafkajs). Topics are created by `ensureTopics` (brokers should not
 * create topics by themselves), a port group is a Kafka consumer group, and delivery is at least once:
 * a message's offset is committed once its handler resolved. Messages of one key go to one partition;
 * with `concurrency` 1 a consumer handles them in order. See consumer.ts for how handlers run and
 * progress.ts for what a group remembers across rebalances and restarts.
 *
 * Outages: until the cluster first answered, calls fail after `reachTimeoutMs` with `ServiceUnreachableError`
 * (start-up stops with one line). After that, a publish the brokers did not acknowledge within
 * `publishTimeoutMs` fails with `UNAVAILABLE`, and consumers that lose the cluster start again with backoff
 * and rejoin their groups when it is back (see consumer.ts); what was not committed is delivered again.
 */
export const createKafkaBus = (options: KafkaBusOptions): KafkaBus => {
  fixKafkaRequestQueue();
  const { clientId, logger = console, namespace = '' } = options;
  const brokers = [...options.brokers];
  const brokersText = brokers.join(',');
  const partitions = options.partitions ?? 4;
  if (brokers.length === 0) throw new BusError('INVALID_ARGUMENT', 'the Kafka bus needs at least one broker');
  if (namespace !== '' && !validTopicName(namespace)) {
    throw new BusError('INVALID_ARGUMENT', `${JSON.stringify(namespace)} cannot start a Kafka topic name`);
  }
  if (!Number.isSafeInteger(partitions) || partitions < 1) {
    throw new BusError('INVALID_ARGUMENT', `partitions must be a positive integer, not ${partitions}`);
  }
  const kafka = new Kafka({
    clientId,
    brokers,
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    socketFactory: noDelaySockets,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(logger, logLevel),
    ...(options.retry === undefined ? {} : { retry: options.retry }),
  });
  const admin = createTopicAdmin(
    kafka,
    {
      partitions,
      replicationFactor: options.replicationFactor,
      ephemeralRetentionMs: options.ephemeralRetentionMs ?? 60 * 60_000,
      maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
      leaderTimeoutMs: 30_000,
    },
    { brokers: brokersText, logger },
  );
  const publisher = createPublisher(kafka, {
    retry: options.retry,
    brokers: brokersText,
    logger,
    onUnknownTopic: (topic) => admin.forget(topic),
  });
  const settings: ConsumerSettings = {
    ...CONSUMER_DEFAULTS,
    ...options.consumer,
    redeliveryInitialMs: options.redelivery?.initialMs ?? 100,
    redeliveryMaxMs: options.redelivery?.maxMs ?? 10_000,
  };
  const consumers = new Set<Consumer>();
  let closed = false;
  let closing: Promise<void> | undefined;
  const publishTimeoutMs = options.publishTimeoutMs ?? 10_000;
  const probe = createClusterProbe({
    brokers,
    clientId,
    connectionTimeoutMs: options.connectionTimeoutMs ?? 3_000,
    socketFactory: noDelaySockets,
  });
  let reached: Promise<void> | undefined;
  /** The first contact, bounded; once it succeeded, outages are the clients' business (retries, restarts). */
  const reach = (): Promise<void> => {
    reached ??= probe.reach(options.reachTimeoutMs ?? 5_000).catch((error: unknown) => {
      reached = undefined;
      throw error;
    });
    return reached;
  };

  // Not a name at all stays invalid on the cluster too.
  const onCluster = (topic: unknown): string =>
    typeof topic === 'string' && topic !== '' ? `${namespace}${topic}` : '';

  const ensureOpen = () => {
    if (closed) throw new BusError('UNAVAILABLE', 'the bus is closed');
  };

  return {
    async connect() {
      ensureOpen();
      await reach();
    },

    async check() {
      ensureOpen();
      await probe.check(options.checkTimeoutMs ?? 2_000);
    },

    async ensureTopics(topics) {
      ensureOpen();
      if (!Array.isArray(topics)) throw new BusError('INVALID_ARGUMENT', 'ensureTopics takes an array of topics');
      await reach();
      await admin.ensureTopics(topics.map((spec) => ({ ...spec, name: onCluster(spec?.name) })));
    },

    async publish(topic, messages) {
      ensureOpen();
      const deadline = Date.now() + publishTimeoutMs;
      await reach();
      const name = onCluster(topic);
      await withTimeout(
        admin.requireTopic(name),
        deadline - Date.now(),
        () =>
          new BusError('UNAVAILABLE', `publishing to ${name} failed: Kafka at ${brokersText} did not answer in time`),
      );
      await publisher.publish(name, messages, deadline);
    },

    async consume(consumeOptions, handler) {
      ensureOpen();
      const { topic, group, concurrency = 1, from = 'earliest' } = consumeOptions ?? {};
      if (typeof group !== 'string' || group === '') {
        throw new BusError('INVALID_ARGUMENT', 'a consumer needs a group name');
      }
      if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
        throw new BusError('INVALID_ARGUMENT', `concurrency must be a positive integer, not ${concurrency}`);
      }
      if (from !== 'earliest' && from !== 'latest') {
        throw new BusError('INVALID_ARGUMENT', `from must be 'earliest' or 'latest', not ${String(from)}`);
      }
      if (typeof handler !== 'function') throw new BusError('INVALID_ARGUMENT', 'consume needs a handler');
      const name = onCluster(topic);
      if (!validTopicName(name)) throw new BusError('UNKNOWN_TOPIC', `there is no topic ${JSON.stringify(topic)}`);
      await reach();
      await admin.requireTopic(name);
      const deadline = Date.now() + settings.startTimeoutMs;
      let started: Consumer;
      for (let attempt = 1; ; attempt += 1) {
        try {
          started = await startConsumer(
            { kafka, admin, retry: options.retry, brokers: brokersText, logger, settings },
            { topic: name, deliveredAs: topic, group: `${namespace}${group}`, concurrency, from },
            handler,
          );
          break;
        } catch (error) {
          if (closed || Date.now() > deadline || !coordinatorMissing(error)) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 50 * 2 ** attempt)));
        }
      }
      const consumer: Consumer = {
        async close() {
          await started.close();
          consumers.delete(consumer);
        },
      };
      consumers.add(consumer);
      if (closed) {
        await consumer.close();
        throw new BusError('UNAVAILABLE', 'the bus is closed');
      }
      return consumer;
    },

    close() {
      closed = true;
      closing ??= (async () => {
        await Promise.all([...consumers].map((consumer) => consumer.close()));
        await publisher.close();
        await admin.close();
      })();
      return closing;
    },
  };
};
