import type { InvocationBus } from '../../../domain/ports.ts';
import { createBrokerCore } from './core.ts';
import { openDurableLog } from './durableLog.ts';
import type { BusLogger } from './errors.ts';
import { createLocalBus } from './local.ts';
import { serveBroker } from './server.ts';

export { connectEmbeddedBus, type EmbeddedBusClientOptions } from './client.ts';
export { BusError, type BusErrorCode, type BusLogger, isBusError } from './errors.ts';

export interface EmbeddedBrokerOptions {
  /** The sqlite file holding durable topics, messages and group positions; parent directories are created. */
  readonly path: string;
  /** The Unix domain socket other processes connect to; a stale one left by a dead broker is replaced. */
  readonly socketPath: string;
  /** Default `console`. */
  readonly logger?: BusLogger;
  /** Delay before a message whose handler failed is delivered again: initialMs × 2^(attempt−1), at most maxMs. Defaults 100 and 10 000. */
  readonly retryBackoff?: { readonly initialMs?: number; readonly maxMs?: number };
  /** How long closing a consumer waits for running handlers before handing their messages back. Default 30 000. */
  readonly closeTimeoutMs?: number;
  /**
   * How long the handled positions of durable groups may wait before they are written (a crash in that
   * window means those messages are delivered again). Default 100.
   */
  readonly commitIntervalMs?: number;
  /** Durable messages kept in memory per topic for quick delivery; groups further behind read the file. Default 10 000. */
  readonly memoryWindow?: number;
  /** Undelivered messages an ephemeral topic keeps before it drops the oldest. Default 100 000. */
  readonly maxEphemeralBacklog?: number;
}

export interface EmbeddedBroker {
  /** The bus for the broker's own process: no socket hop. */
  readonly bus: InvocationBus;
  readonly socketPath: string;
  /** Closes the socket (clients reconnect to the next broker), the local bus, then the file. */
  close(): Promise<void>;
}

/**
 * The embedded InvocationBus: a broker in the platform's main process, with durable topics in sqlite (a
 * publish resolves after its group commit) and ephemeral ones in memory, served to the platform's other
 * processes over a Unix domain socket (see `connectEmbeddedBus`). One partition per topic.
 */
export const createEmbeddedBroker = async (options: EmbeddedBrokerOptions): Promise<EmbeddedBroker> => {
  const { path, socketPath, logger = console, closeTimeoutMs = 30_000 } = options;
  const log = await openDurableLog(path);
  const core = createBrokerCore({
    log,
    logger,
    retryInitialMs: options.retryBackoff?.initialMs ?? 100,
    retryMaxMs: options.retryBackoff?.maxMs ?? 10_000,
    commitIntervalMs: options.commitIntervalMs ?? 100,
    memoryWindow: options.memoryWindow ?? 10_000,
    maxEphemeralBacklog: options.maxEphemeralBacklog ?? 100_000,
  });
  let server: Awaited<ReturnType<typeof serveBroker>>;
  try {
    server = await serveBroker(core, { socketPath, logger });
  } catch (error) {
    await core.close();
    throw error;
  }
  const bus = createLocalBus(core, { closeTimeoutMs, logger });
  let closing: Promise<void> | undefined;
  return {
    bus,
    socketPath,
    close() {
      closing ??= (async () => {
        await server.close();
        await bus.close();
        await core.close();
      })();
      return closing;
    },
  };
};
