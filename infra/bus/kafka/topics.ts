import type { Admin, ITopicConfig, Kafka } from 'kafkajs';
import type { TopicSpec } from '../../../domain/ports.ts';
import { BusError, type KafkaBusLogger, kafkaErrorTypes, toBusError } from './errors.ts';

export interface TopicSettings {
  /** Partitions of a topic whose spec names none. */
  readonly partitions: number;
  /** Replicas of each partition; undefined: three, or fewer when the cluster has fewer brokers. */
  readonly replicationFactor: number | undefined;
  /** How long ephemeral topics keep their messages. */
  readonly ephemeralRetentionMs: number;
  /** Largest message a topic accepts (results of sync invocations may be 6 MB of JSON). */
  readonly maxMessageBytes: number;
  /** How long ensureTopics waits for the partitions of new topics to have leaders. */
  readonly leaderTimeoutMs: number;
}

export interface PartitionOffsets {
  readonly partition: number;
  /** Offset of the oldest message still kept. */
  readonly low: number;
  /** Offset the next message published to the partition will get. */
  readonly high: number;
}

export interface CommittedOffset {
  readonly partition: number;
  /** -1 when the group has never committed on this partition. */
  readonly offset: number;
  readonly metadata: string | null;
}

/** The bus's administrative side: one lazily connected admin client, and which topics are known to exist. */
export interface TopicAdmin {
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Resolves if the topic exists; rejects with `UNKNOWN_TOPIC` otherwise. */
  requireTopic(topic: string): Promise<void>;
  /** Forgets that a topic exists (a send found it gone). */
  forget(topic: string): void;
  partitionsOf(topics: readonly string[]): Promise<Map<string, number[]>>;
  offsetsOf(topic: string): Promise<PartitionOffsets[]>;
  committedOffsets(group: string, topic: string): Promise<CommittedOffset[]>;
  close(): Promise<void>;
}

// Kafka's own rule for topic names.
const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const validTopicName = (name: unknown): name is string =>
  typeof name === 'string' && TOPIC_NAME.test(name) && name !== '.' && name !== '..';

export const createTopicAdmin = (
  kafka: Kafka,
  settings: TopicSettings,
  context: { readonly brokers: string; readonly logger: KafkaBusLogger },
): TopicAdmin => {
  const { brokers, logger } = context;
  const known = new Set<string>();
  let admin: Admin | undefined;
  let connecting: Promise<Admin> | undefined;
  let replicas: number | undefined = settings.replicationFactor;

  const connected = (): Promise<Admin> => {
    if (admin) return Promise.resolve(admin);
    connecting ??= (async () => {
      const client = kafka.admin();
      try {
        await client.connect();
      } catch (error) {
        connecting = undefined;
        throw toBusError(error, 'connecting to Kafka', brokers);
      }
      admin = client;
      return client;
    })();
    return connecting;
  };

  const call = async <T>(what: string, work: (client: Admin) => Promise<T>): Promise<T> => {
    const client = await connected();
    try {
      return await work(client);
    } catch (error) {
      throw toBusError(error, what, brokers);
    }
  };

  const replicationFactor = async (client: Admin): Promise<number> => {
    if (replicas === undefined) {
      const { brokers: nodes } = await client.describeCluster();
      replicas = Math.max(1, Math.min(3, nodes.length));
    }
    return replicas;
  };

  /** Polls until every partition of the topics has a leader: a KRaft broker may not know a topic it just created. */
  const awaitLeaders = async (client: Admin, topics: ReadonlyMap<string, number>) => {
    const deadline = Date.now() + settings.leaderTimeoutMs;
    let delay = 10;
    for (;;) {
      let lastError: unknown;
      try {
        const { topics: found } = await client.fetchTopicMetadata({ topics: [...topics.keys()] });
        const ready = [...topics].every(([name, partitions]) => {
          const metadata = found.find((topic) => topic.name === name);
          return (
            metadata !== undefined &&
            metadata.partitions.length >= partitions &&
            metadata.partitions.every((partition) => partition.leader >= 0)
          );
        });
        if (ready) return;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() > deadline) {
        throw new BusError('UNAVAILABLE', `the partitions of ${[...topics.keys()].join(', ')} got no leader in time`, {
          cause: lastError,
        });
      }
      await sleep(delay);
      delay = Math.min(200, delay * 2);
    }
  };

  const topicConfig = (spec: TopicSpec, factor: number): ITopicConfig => {
    const configEntries = [
      // A message's timestamp is when the broker accepted it, whoever produced it.
      { name: 'message.timestamp.type', value: 'LogAppendTime' },
      { name: 'max.message.bytes', value: String(settings.maxMessageBytes) },
    ];
    // Kafka keeps no topic in memory only: an ephemeral topic is an ordinary one whose messages expire soon.
    if (spec.ephemeral === true)
      configEntries.push({ name: 'retention.ms', value: String(settings.ephemeralRetentionMs) });
    return {
      topic: spec.name,
      numPartitions: spec.partitions ?? settings.partitions,
      replicationFactor: factor,
      configEntries,
    };
  };

  const listTopics = async (client: Admin) => new Set(await client.listTopics());

  return {
    async ensureTopics(specs) {
      if (!Array.isArray(specs)) throw new BusError('INVALID_ARGUMENT', 'ensureTopics takes an array of topics');
      const wanted = new Map<string, TopicSpec>();
      for (const spec of specs) {
        const name = (spec as TopicSpec | undefined)?.name;
        if (!validTopicName(name)) {
          throw new BusError('INVALID_ARGUMENT', `${JSON.stringify(name)} is not a valid topic name`);
        }
        const { partitions } = spec;
        if (partitions !== undefined && !(Number.isSafeInteger(partitions) && partitions >= 1)) {
          throw new BusError('INVALID_ARGUMENT', `partitions must be a positive integer, not ${String(partitions)}`);
        }
        if (!wanted.has(name)) wanted.set(name, spec);
      }
      const unknown = [...wanted.values()].filter((spec) => !known.has(spec.name));
      if (unknown.length === 0) return;
      await call('declaring topics', async (client) => {
        const existing = await listTopics(client);
        const missing = unknown.filter((spec) => !existing.has(spec.name));
        for (const spec of unknown) {
          if (existing.has(spec.name)) known.add(spec.name);
        }
        if (missing.length === 0) return;
        const factor = await replicationFactor(client);
        try {
          // waitForLeaders: true only retries LEADER_NOT_AVAILABLE, while a KRaft broker may answer
          // UNKNOWN_TOPIC_OR_PARTITION for a moment after creating a topic (tulios/kafkajs#1563).
          await client.createTopics({
            topics: missing.map((spec) => topicConfig(spec, factor)),
            waitForLeaders: false,
          });
        } catch (error) {
          // Another client created some of them first: fine, they exist.
          const types = kafkaErrorTypes(error);
          if (types.length === 0 || !types.every((type) => type === 'TOPIC_ALREADY_EXISTS')) throw error;
        }
        await awaitLeaders(client, new Map(missing.map((spec) => [spec.name, spec.partitions ?? settings.partitions])));
        for (const spec of missing) known.add(spec.name);
        logger.info({ topics: missing.map((spec) => spec.name) }, 'created Kafka topics');
      });
    },

    async requireTopic(topic) {
      if (known.has(topic)) return;
      if (!validTopicName(topic)) throw new BusError('UNKNOWN_TOPIC', `there is no topic ${JSON.stringify(topic)}`);
      const existing = await call('looking up a topic', listTopics);
      if (!existing.has(topic)) throw new BusError('UNKNOWN_TOPIC', `there is no topic ${JSON.stringify(topic)}`);
      known.add(topic);
    },

    forget(topic) {
      known.delete(topic);
    },

    partitionsOf(topics) {
      return call('reading topic metadata', async (client) => {
        const { topics: found } = await client.fetchTopicMetadata({ topics: [...topics] });
        return new Map(
          found.map((topic) => [
            topic.name,
            topic.partitions.map((partition) => partition.partitionId).sort((a, b) => a - b),
          ]),
        );
      });
    },

    offsetsOf(topic) {
      return call('reading topic offsets', async (client) =>
        (await client.fetchTopicOffsets(topic)).map((entry) => ({
          partition: entry.partition,
          low: Number(entry.low),
          high: Number(entry.high),
        })),
      );
    },

    committedOffsets(group, topic) {
      return call('reading committed offsets', async (client) => {
        const [found] = await client.fetchOffsets({ groupId: group, topics: [topic] });
        return (found?.partitions ?? []).map((entry) => ({
          partition: entry.partition,
          offset: Number(entry.offset),
          metadata: entry.metadata,
        }));
      });
    },

    async close() {
      const client = admin ?? (await connecting?.catch(() => undefined));
      admin = undefined;
      connecting = undefined;
      await client?.disconnect();
    },
  };
};
