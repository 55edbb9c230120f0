import type { InvocationBus } from '../../../domain/ports.ts';
import { type ConsumerRunner, createConsumerRunner } from './consumer.ts';
import type { BrokerCore, BrokerSubscription } from './core.ts';
import { BusError, type BusLogger } from './errors.ts';

/** The bus as the broker's own process sees it: straight calls into the broker, no socket hop. */
export const createLocalBus = (
  core: BrokerCore,
  options: { readonly closeTimeoutMs: number; readonly logger: BusLogger },
): InvocationBus => {
  const runners = new Set<ConsumerRunner>();
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new BusError('UNAVAILABLE', 'the bus is closed');
  };

  return {
    async ensureTopics(topics) {
      ensureOpen();
      await core.ensureTopics(topics);
    },
    async publish(topic, messages, publishOptions) {
      ensureOpen();
      const stored = core.publish(topic, messages, publishOptions);
      if (publishOptions?.confirm !== false) return stored;
      stored.catch((error: unknown) => options.logger.warn({ topic, error }, 'an unconfirmed publish failed'));
    },
    async consume(consumeOptions, handler) {
      ensureOpen();
      let subscription: BrokerSubscription | undefined;
      const runner = createConsumerRunner({
        topic: consumeOptions.topic,
        handler,
        closeTimeoutMs: options.closeTimeoutMs,
        logger: options.logger,
        transport: {
          pause: () => subscription?.pause(),
          leave: async () => subscription?.close(),
        },
        onClosed: () => runners.delete(runner),
      });
      subscription = await core.subscribe(consumeOptions, {
        deliver: (message, attempt) => {
          const { offset } = message;
          runner.deliver(message, attempt, (how) => subscription?.[how](offset, attempt));
        },
      });
      if (closed) {
        subscription.close();
        throw new BusError('UNAVAILABLE', 'the bus is closed');
      }
      runners.add(runner);
      subscription.resume();
      return runner.consumer;
    },
    async close() {
      closed = true;
      await Promise.all([...runners].map((runner) => runner.consumer.close()));
    },
  };
};
