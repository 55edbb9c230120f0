import type { Consumer, DeliveredMessage } from '../../../domain/ports.ts';
import type { StoredMessage } from './durableLog.ts';
import type { BusLogger } from './errors.ts';
import type { Settlement } from './protocol.ts';

/** How a consumer reaches its group, in this process or over the socket. */
export interface ConsumerTransport {
  /** No new deliveries, please. */
  pause(): void;
  /** Leaves the group; whatever the consumer still holds goes back to it. */
  leave(): Promise<void>;
}

export interface ConsumerRunner {
  /** Runs the handler on a delivery; `settle` reports how it ended. */
  deliver(message: StoredMessage, attempt: number, settle: (how: Settlement) => void): void;
  /** The group took back everything delivered so far (the connection to the broker dropped). */
  takenBack(): void;
  readonly consumer: Consumer;
}

export interface ConsumerRunnerOptions {
  readonly topic: string;
  readonly handler: (message: DeliveredMessage) => Promise<void>;
  readonly transport: ConsumerTransport;
  /** How long closing waits for running handlers before handing their messages back. */
  readonly closeTimeoutMs: number;
  readonly logger: BusLogger;
  readonly onClosed?: () => void;
}

interface Running {
  readonly controller: AbortController;
  done: Promise<void>;
}

/** The handler side of a consumer, the same in the broker's process and in its clients. */
export const createConsumerRunner = (options: ConsumerRunnerOptions): ConsumerRunner => {
  const { topic, handler, transport, closeTimeoutMs, logger, onClosed } = options;
  const running = new Set<Running>();
  let closing: Promise<void> | undefined;

  const deliver = (message: StoredMessage, attempt: number, settle: (how: Settlement) => void) => {
    if (closing) {
      settle('release');
      return;
    }
    const controller = new AbortController();
    const delivered: DeliveredMessage = {
      topic,
      partition: 0,
      offset: String(message.offset),
      key: message.key,
      value: message.value,
      headers: message.headers,
      timestamp: message.timestamp,
      deliveryAttempt: attempt,
      signal: controller.signal,
    };
    const entry: Running = { controller, done: Promise.resolve() };
    entry.done = Promise.resolve()
      .then(() => handler(delivered))
      .then(
        () => settle('ack'),
        (error: unknown) => {
          // A handler giving up because the consumer is closing hands the message on at once.
          if (closing) settle('release');
          else {
            if (!controller.signal.aborted) {
              logger.warn(
                { topic, offset: delivered.offset, attempt, error },
                'a bus handler failed; the message will be redelivered',
              );
            }
            settle('retry');
          }
        },
      )
      .finally(() => running.delete(entry));
    running.add(entry);
  };

  const close = async () => {
    transport.pause();
    const stopping = new Error('the consumer is closing');
    for (const { controller } of running) controller.abort(stopping);
    if (running.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...running].map(({ done }) => done)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, closeTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
    }
    await transport.leave();
    onClosed?.();
  };

  return {
    deliver,
    takenBack() {
      const takenBack = new Error('the message was taken back: the connection to the bus dropped');
      for (const { controller } of running) controller.abort(takenBack);
    },
    consumer: {
      close() {
        closing ??= close();
        return closing;
      },
    },
  };
};
