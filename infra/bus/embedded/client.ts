import { createConnection, type Socket } from 'node:net';
import type { ConsumeOptions, InvocationBus, TopicSpec } from '../../../domain/ports.ts';
import { type ConsumerRunner, createConsumerRunner } from './consumer.ts';
import { BusError, type BusLogger } from './errors.ts';
import {
  type BrokerFrame,
  type ClientRequest,
  createFrameWriter,
  createLineSplitter,
  type FrameWriter,
} from './protocol.ts';

export interface EmbeddedBusClientOptions {
  /** The broker's Unix domain socket. */
  readonly socketPath: string;
  /** Names this process in the broker's logs. */
  readonly clientId: string;
  /** Default `console`. */
  readonly logger?: BusLogger;
  /** Delay before reconnecting: initialDelayMs × 2^tries with jitter, at most maxDelayMs. Defaults 50 and 2 000. */
  readonly reconnect?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /**
   * How long calls wait for an unreachable broker before they fail as `UNAVAILABLE` (the first connection
   * too). Default 30 000.
   */
  readonly unavailableTimeoutMs?: number;
  /** How long closing a consumer waits for running handlers before handing their messages back. Default 30 000. */
  readonly closeTimeoutMs?: number;
}

interface Connection {
  readonly socket: Socket;
  readonly writer: FrameWriter;
}

interface PendingRequest {
  readonly frame: ClientRequest;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  /** Settles as done when the connection drops instead of being sent again (the broker forgot it anyway). */
  readonly doneOnDisconnect: boolean;
}

interface ConsumerState {
  readonly c: number;
  readonly options: ConsumeOptions;
  readonly runner: ConsumerRunner;
  subscribed: boolean;
}

/**
 * The bus for the platform's other processes (runners, projectors): requests over the broker's socket,
 * deliveries pushed back on it. When the broker goes away the client reconnects with backoff, declares
 * its topics again, re-subscribes its consumers and sends again what had no answer (so a publish may be
 * stored twice: delivery is at least once anyway).
 */
export const connectEmbeddedBus = async (options: EmbeddedBusClientOptions): Promise<InvocationBus> => {
  const { socketPath, clientId, logger = console, unavailableTimeoutMs = 30_000, closeTimeoutMs = 30_000 } = options;
  const initialDelayMs = options.reconnect?.initialDelayMs ?? 50;
  const maxDelayMs = options.reconnect?.maxDelayMs ?? 2_000;

  const pending = new Map<number, PendingRequest>();
  /** Every unanswered call, for close() to wait on. */
  const calls = new Set<Promise<void>>();
  const declared = new Map<string, TopicSpec>();
  const consumers = new Map<number, ConsumerState>();
  let connection: Connection | undefined;
  let nextId = 1;
  let nextConsumer = 1;
  let tries = 0;
  let unreachable = false;
  let everConnected = false;
  let stopped = false;
  let closing: Promise<void> | undefined;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let unavailableTimer: NodeJS.Timeout | undefined;
  let connected: { resolve: () => void; reject: (error: Error) => void } | undefined;

  const send = (request: PendingRequest) => connection?.writer.send(request.frame);

  const request = (build: (id: number) => ClientRequest, doneOnDisconnect = false) => {
    if (stopped) return Promise.reject(new BusError('UNAVAILABLE', 'the bus client is closed'));
    if (unreachable)
      return Promise.reject(new BusError('UNAVAILABLE', `the bus broker at ${socketPath} is unreachable`));
    const frame = build(nextId++);
    const call = new Promise<void>((resolve, reject) => {
      const entry = { frame, resolve, reject, doneOnDisconnect };
      pending.set(frame.id, entry);
      send(entry);
    });
    calls.add(call);
    const forget = () => calls.delete(call);
    call.then(forget, forget);
    return call;
  };

  const ensureOpen = () => {
    if (closing || stopped) throw new BusError('UNAVAILABLE', 'the bus client is closed');
  };

  const onFrame = (current: Connection, frame: BrokerFrame) => {
    if (frame.t === 'res') {
      const entry = pending.get(frame.id);
      if (!entry) return;
      pending.delete(frame.id);
      if (frame.error) entry.reject(new BusError(frame.error.code, frame.error.message));
      else entry.resolve();
      return;
    }
    const state = consumers.get(frame.c);
    if (!state) return;
    const { c, o, n } = frame;
    state.runner.deliver(
      { offset: o, key: frame.k, value: frame.v, headers: frame.h, timestamp: frame.ts },
      n,
      (how) => {
        // Settling on a newer connection would touch a delivery the broker has handed to someone else.
        if (connection === current) current.writer.send({ t: how, c, o, n });
      },
    );
  };

  const subscribeAgain = (state: ConsumerState, current: Connection) => {
    if (connection !== current || !consumers.has(state.c)) return;
    request((id) => ({ t: 'sub', id, c: state.c, options: state.options }), true).catch((error: unknown) => {
      if (connection !== current || !consumers.has(state.c)) return;
      // The process that declares the topic may not have reconnected yet.
      logger.warn(
        { clientId, topic: state.options.topic, error },
        'a bus consumer could not subscribe again; retrying',
      );
      setTimeout(() => subscribeAgain(state, current), maxDelayMs).unref();
    });
  };

  const onConnected = (socket: Socket): Connection => {
    const current: Connection = {
      socket,
      writer: createFrameWriter((data) => {
        if (socket.writable) socket.write(data);
      }),
    };
    const unanswered = [...pending.values()];
    connection = current;
    tries = 0;
    unreachable = false;
    clearTimeout(unavailableTimer);
    unavailableTimer = undefined;
    if (everConnected) logger.info({ clientId, socketPath }, 'reconnected to the bus broker');
    everConnected = true;
    current.writer.send({ t: 'hello', clientId });
    if (declared.size > 0) {
      request((id) => ({ t: 'ensure', id, topics: [...declared.values()] }), true).catch((error: unknown) =>
        logger.warn({ clientId, error }, 'could not declare the bus topics again'),
      );
    }
    for (const state of consumers.values()) if (state.subscribed) subscribeAgain(state, current);
    for (const entry of unanswered) send(entry);
    connected?.resolve();
    connected = undefined;
    return current;
  };

  const onDisconnected = (socket: Socket) => {
    if (connection?.socket === socket) {
      connection = undefined;
      for (const [id, entry] of pending) {
        if (entry.doneOnDisconnect) {
          pending.delete(id);
          entry.resolve();
        }
      }
      for (const state of consumers.values()) state.runner.takenBack();
      if (!stopped) logger.warn({ clientId, socketPath }, 'lost the connection to the bus broker; reconnecting');
    }
    if (stopped) return;
    unavailableTimer ??= setTimeout(giveUp, unavailableTimeoutMs);
    const delay = Math.min(maxDelayMs, initialDelayMs * 2 ** tries) * (0.5 + Math.random() / 2);
    tries += 1;
    reconnectTimer = setTimeout(connect, delay);
  };

  const giveUp = () => {
    unavailableTimer = undefined;
    unreachable = true;
    const error = new BusError('UNAVAILABLE', `the bus broker at ${socketPath} could not be reached`);
    for (const entry of pending.values()) entry.reject(error);
    pending.clear();
    if (connected) {
      stopped = true;
      clearTimeout(reconnectTimer);
      connected.reject(error);
    }
  };

  const connect = () => {
    reconnectTimer = undefined;
    if (stopped) return;
    const socket = createConnection(socketPath);
    socket.setEncoding('utf8');
    let current: Connection | undefined;
    socket.once('connect', () => {
      current = onConnected(socket);
    });
    socket.on(
      'data',
      createLineSplitter((line) => {
        if (current === undefined || connection !== current) return;
        try {
          onFrame(current, JSON.parse(line) as BrokerFrame);
        } catch (error) {
          logger.warn({ clientId, error }, 'the bus broker sent a frame this client cannot read; reconnecting');
          socket.destroy();
        }
      }),
    );
    socket.on('error', () => {
      // 'close' follows and reconnects.
    });
    socket.once('close', () => onDisconnected(socket));
  };

  await new Promise<void>((resolve, reject) => {
    connected = { resolve, reject };
    unavailableTimer = setTimeout(giveUp, unavailableTimeoutMs);
    connect();
  });

  const close = async () => {
    await Promise.all([...consumers.values()].map(({ runner }) => runner.consumer.close()));
    await Promise.allSettled(calls);
    stopped = true;
    clearTimeout(reconnectTimer);
    clearTimeout(unavailableTimer);
    const last = connection;
    if (last) {
      last.writer.flush();
      await new Promise<void>((resolve) => {
        last.socket.once('close', () => resolve());
        last.socket.end();
      });
    }
  };

  return {
    async ensureTopics(topics) {
      ensureOpen();
      await request((id) => ({ t: 'ensure', id, topics }));
      for (const topic of topics) if (!declared.has(topic.name)) declared.set(topic.name, { ...topic });
    },
    async publish(topic, messages, publishOptions) {
      ensureOpen();
      if (publishOptions?.confirm !== false) {
        await request((id) => ({ t: 'pub', id, topic, messages }));
        return;
      }
      // Id 0: the broker answers nothing and logs a failure itself.
      if (connection === undefined || unreachable || stopped) {
        throw new BusError('UNAVAILABLE', `the bus broker at ${socketPath} is not connected`);
      }
      connection.writer.send({ t: 'pub', id: 0, topic, messages });
    },
    async consume(consumeOptions, handler) {
      ensureOpen();
      const c = nextConsumer++;
      const runner = createConsumerRunner({
        topic: consumeOptions.topic,
        handler,
        closeTimeoutMs,
        logger,
        transport: {
          pause: () => connection?.writer.send({ t: 'pause', c }),
          leave: async () => {
            consumers.delete(c);
            if (connection) await request((id) => ({ t: 'unsub', id, c }), true).catch(() => {});
          },
        },
      });
      const state: ConsumerState = { c, options: { ...consumeOptions }, runner, subscribed: false };
      consumers.set(c, state);
      try {
        await request((id) => ({ t: 'sub', id, c, options: state.options }));
      } catch (error) {
        consumers.delete(c);
        throw error;
      }
      state.subscribed = true;
      return runner.consumer;
    },
    close() {
      closing ??= close();
      return closing;
    },
  };
};
