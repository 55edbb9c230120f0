import kafkajs from 'kafkajs';
import type { Kafka, Message, Producer, RetryOptions, TopicMessages } from 'kafkajs';
import type { BusMessage } from '../../../domain/ports.ts';
import { BusError, type KafkaBusLogger, toBusError } from './errors.ts';

// kafkajs is CommonJS whose exports Node cannot detect statically: named imports fail at run time.
const { CompressionTypes, Partitioners } = kafkajs;

export interface Publisher {
  /**
   * Resolves once the broker acknowledged the messages; rejects with `UNAVAILABLE` when that has not
   * happened by `deadline` (epoch ms). Messages not sent by then are never sent.
   */
  publish(topic: string, messages: readonly BusMessage[], deadline: number): Promise<void>;
  /** Waits for what was handed over, then disconnects. */
  close(): Promise<void>;
}

interface Pending {
  readonly topic: string;
  readonly messages: Message[];
  /** Settles the caller's promise once (a deadline may have settled it already). */
  readonly resolve: () => void;
  readonly reject: (error: BusError) => void;
  /** True once the caller has its answer: a send still running may store the messages, a new one must not. */
  readonly settled: () => boolean;
}

const toKafkaMessage = (message: BusMessage): Message => {
  const { key, value, headers } = message ?? {};
  if (typeof key !== 'string' || typeof value !== 'string') {
    throw new BusError('INVALID_ARGUMENT', 'a message needs a string key and a string value');
  }
  if (headers === undefined || headers === null) return { key, value };
  if (typeof headers !== 'object') throw new BusError('INVALID_ARGUMENT', 'message headers must be an object');
  const copy: Record<string, string> = {};
  for (const name in headers) {
    const header = headers[name];
    if (typeof header !== 'string') throw new BusError('INVALID_ARGUMENT', `header ${name} must be a string`);
    copy[name] = header;
  }
  return { key, value, headers: copy };
};

/**
 * Publishes with `acks: -1` (every in-sync replica) through an idempotent producer, so a publish resolves
 * only once the message is stored and a retry inside kafkajs cannot store it twice. One request is in
 * flight at a time (kafkajs's idempotent producer serialises them per broker anyway); publishes arriving
 * meanwhile go out together in the next request, so an idle bus sends at once and a busy one in batches.
 */
export const createPublisher = (
  kafka: Kafka,
  options: {
    readonly retry: RetryOptions | undefined;
    readonly brokers: string;
    readonly logger: KafkaBusLogger;
    readonly onUnknownTopic: (topic: string) => void;
  },
): Publisher => {
  const { brokers, logger } = options;
  let queue: Pending[] = [];
  let sending: Promise<void> | undefined;
  let producer: Promise<Producer> | undefined;
  let closed = false;

  const connected = (): Promise<Producer> => {
    producer ??= (async () => {
      const created = kafka.producer({
        idempotent: true,
        // The producer of kafkajs 2 partitions keys as the Java client does (murmur2); naming it silences
        // its warning about the change from 1.x.
        createPartitioner: Partitioners.DefaultPartitioner,
        allowAutoTopicCreation: false,
        ...(options.retry === undefined ? {} : { retry: options.retry }),
      });
      await created.connect();
      return created;
    })();
    return producer;
  };

  /**
   * After a failed send the producer is replaced: kafkajs hands the failed batch's sequence numbers out
   * again, and had the broker stored it after all, the next batch of the same size would be taken for a
   * duplicate and dropped while acknowledged.
   */
  const replaceProducer = () => {
    const old = producer;
    producer = undefined;
    void old?.then((client) => client.disconnect()).catch(() => undefined);
  };

  const send = async (batch: readonly Pending[]) => {
    const byTopic = new Map<string, Message[]>();
    for (const pending of batch) {
      const list = byTopic.get(pending.topic);
      if (list) list.push(...pending.messages);
      else byTopic.set(pending.topic, [...pending.messages]);
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const client = await connected();
    await client.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.None });
  };

  const settle = async (all: readonly Pending[]) => {
    const batch = all.filter((pending) => !pending.settled());
    if (batch.length === 0) return;
    try {
      await send(batch);
      for (const pending of batch) pending.resolve();
      return;
    } catch (error) {
      replaceProducer();
      const failure = toBusError(error, `publishing to ${[...new Set(batch.map((p) => p.topic))].join(', ')}`, brokers);
      if (failure.code === 'UNAVAILABLE' || batch.length === 1) {
        if (failure.code === 'UNKNOWN_TOPIC') for (const pending of batch) options.onUnknownTopic(pending.topic);
        if (failure.code === 'UNAVAILABLE') logger.warn({ err: error }, 'publishing to Kafka failed');
        for (const pending of batch) pending.reject(failure);
        return;
      }
    }
    // One message too large, or one topic gone, fails only its own publish.
    for (const pending of batch) await settle([pending]);
  };

  const drain = async () => {
    while (queue.length > 0) {
      const batch = queue;
      queue = [];
      await settle(batch);
    }
    sending = undefined;
  };

  return {
    publish(topic, messages, deadline) {
      if (closed) return Promise.reject(new BusError('UNAVAILABLE', 'the bus is closed'));
      if (!Array.isArray(messages)) {
        return Promise.reject(new BusError('INVALID_ARGUMENT', 'publish takes an array of messages'));
      }
      let converted: Message[];
      try {
        converted = messages.map(toKafkaMessage);
      } catch (error) {
        return Promise.reject(error);
      }
      if (converted.length === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        let done = false;
        const finish = () => {
          done = true;
          clearTimeout(timer);
        };
        const pending: Pending = {
          topic,
          messages: converted,
          resolve: () => {
            if (done) return;
            finish();
            resolve();
          },
          reject: (error) => {
            if (done) return;
            finish();
            reject(error);
          },
          settled: () => done,
        };
        // A broker that hangs, or kafkajs retrying a dead one, must not hold the caller: after the deadline
        // it is told UNAVAILABLE, and the messages leave the queue if they are still in it.
        const timer = setTimeout(
          () => {
            queue = queue.filter((queued) => queued !== pending);
            pending.reject(
              new BusError(
                'UNAVAILABLE',
                `publishing to ${topic} failed: Kafka at ${brokers} did not acknowledge in time`,
              ),
            );
          },
          Math.max(0, deadline - Date.now()),
        );
        queue.push(pending);
        sending ??= drain();
      });
    },

    async close() {
      closed = true;
      await sending;
      const client = await producer?.catch(() => undefined);
      producer = undefined;
      await client?.disconnect();
    },
  };
};
