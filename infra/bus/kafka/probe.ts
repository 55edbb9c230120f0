import { setTimeout as sleep } from 'node:timers/promises';
import kafkajs from 'kafkajs';
import type { ISocketFactory } from 'kafkajs';
import { failureReason, ServiceUnreachableError, withTimeout } from '../../serviceErrors.ts';
import { BusError } from './errors.ts';

// kafkajs is CommonJS whose exports Node cannot detect statically: named imports fail at run time.
const { Kafka, logLevel } = kafkajs;

export interface ClusterProbe {
  /**
   * Asks the cluster for its metadata until it answers, for at most `timeoutMs`; then rejects with one
   * `ServiceUnreachableError` naming Kafka, the brokers and the last reason.
   */
  reach(timeoutMs: number): Promise<void>;
  /** One metadata request within `timeoutMs`, else `BusError` `UNAVAILABLE` saying why. */
  check(timeoutMs: number): Promise<void>;
}

/**
 * Whether the cluster answers, asked on connections of its own without kafkajs's retries (which would
 * take their own time): the bus's clients keep their retry settings for real work.
 */
export const createClusterProbe = (settings: {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly connectionTimeoutMs: number;
  readonly socketFactory: ISocketFactory;
}): ClusterProbe => {
  const brokers = settings.brokers.join(',');

  const attempt = async (timeoutMs: number): Promise<void> => {
    const bounded = Math.max(1, Math.floor(timeoutMs));
    const kafka = new Kafka({
      clientId: `${settings.clientId}-probe`,
      brokers: [...settings.brokers],
      connectionTimeout: Math.min(settings.connectionTimeoutMs, bounded),
      requestTimeout: bounded,
      retry: { retries: 0 },
      socketFactory: settings.socketFactory,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin({ retry: { retries: 0 } });
    const work = (async () => {
      await admin.connect();
      await admin.describeCluster();
    })();
    try {
      await withTimeout(work, bounded, () => new Error(`no answer: timed out after ${bounded} ms`));
    } finally {
      // A broker that hangs keeps `work` pending until kafkajs's own timeouts end it.
      void work.catch(() => undefined).finally(() => admin.disconnect().catch(() => undefined));
    }
  };

  return {
    async reach(timeoutMs) {
      const started = Date.now();
      const deadline = started + timeoutMs;
      let lastError: unknown;
      for (let delay = 100; ; delay = Math.min(1_000, delay * 2)) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        try {
          await attempt(left);
          return;
        } catch (error) {
          lastError = error;
        }
        const pause = Math.min(delay, deadline - Date.now());
        if (pause > 0) await sleep(pause);
      }
      throw new ServiceUnreachableError({
        service: 'Kafka',
        address: brokers,
        cause: lastError,
        waitedMs: Date.now() - started,
      });
    },

    async check(timeoutMs) {
      try {
        await attempt(timeoutMs);
      } catch (error) {
        throw new BusError('UNAVAILABLE', `Kafka at ${brokers} does not answer (${failureReason(error, timeoutMs)})`, {
          cause: error,
        });
      }
    },
  };
};
