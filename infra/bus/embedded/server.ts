import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { BrokerCore, BrokerSubscription } from './core.ts';
import { BusError, type BusLogger, isBusError } from './errors.ts';
import { type BrokerFrame, type ClientFrame, createFrameWriter, createLineSplitter } from './protocol.ts';

export interface BrokerServer {
  close(): Promise<void>;
}

/** Serves the broker to the platform's other processes over a Unix domain socket. */
export const serveBroker = async (
  core: BrokerCore,
  options: { readonly socketPath: string; readonly logger: BusLogger },
): Promise<BrokerServer> => {
  const { socketPath, logger } = options;
  await removeStaleSocket(socketPath);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    serveConnection(core, socket, logger);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // Only processes of the same user may publish or consume.
  chmodSync(socketPath, 0o600);
  server.on('error', (error) => logger.warn({ error }, 'the bus socket failed'));

  let closing: Promise<void> | undefined;
  return {
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
};

// A socket file left by a broker that died is removed; one that a live broker answers on is an error.
const removeStaleSocket = async (socketPath: string) => {
  mkdirSync(dirname(socketPath), { recursive: true });
  const live = await new Promise<boolean>((resolve) => {
    const probe = createConnection(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new BusError('UNAVAILABLE', `another broker is listening on ${socketPath}`);
  rmSync(socketPath, { force: true });
};

const serveConnection = (core: BrokerCore, socket: Socket, logger: BusLogger) => {
  socket.setEncoding('utf8');
  const writer = createFrameWriter((data) => {
    if (socket.writable) socket.write(data);
  });
  const send = (frame: BrokerFrame) => writer.send(frame);
  const subscriptions = new Map<number, BrokerSubscription>();
  let clientId = 'unknown';
  let open = true;

  const answer = (id: number, work: Promise<unknown>, then?: () => void) =>
    work.then(
      () => {
        send({ t: 'res', id });
        then?.();
      },
      (error: unknown) => {
        const { code, message } = isBusError(error)
          ? error
          : new BusError('UNAVAILABLE', error instanceof Error ? error.message : String(error));
        send({ t: 'res', id, error: { code, message } });
      },
    );

  const subscribe = async (c: number, frame: Extract<ClientFrame, { t: 'sub' }>) => {
    if (typeof frame.options !== 'object' || frame.options === null) {
      throw new BusError('INVALID_ARGUMENT', 'consume needs options');
    }
    if (subscriptions.has(c)) throw new BusError('INVALID_ARGUMENT', `consumer ${c} exists already`);
    const subscription = await core.subscribe(frame.options, {
      deliver: (message, attempt) =>
        send({
          t: 'msg',
          c,
          o: message.offset,
          n: attempt,
          k: message.key,
          v: message.value,
          h: message.headers,
          ts: message.timestamp,
        }),
    });
    if (!open) {
      subscription.close();
      return;
    }
    subscriptions.set(c, subscription);
  };

  const handle = (frame: ClientFrame) => {
    switch (frame.t) {
      case 'ack':
      case 'retry':
      case 'release':
        subscriptions.get(frame.c)?.[frame.t](frame.o, frame.n);
        return;
      case 'pause':
        subscriptions.get(frame.c)?.pause();
        return;
      case 'pub':
        if (frame.id === 0) {
          core.publish(frame.topic, frame.messages, { confirm: false }).catch((error: unknown) => {
            logger.warn({ clientId, topic: frame.topic, error }, 'an unconfirmed publish failed');
          });
        } else answer(frame.id, core.publish(frame.topic, frame.messages));
        return;
      case 'ensure':
        answer(frame.id, core.ensureTopics(frame.topics));
        return;
      case 'sub':
        // The reply goes out before the first delivery.
        answer(frame.id, subscribe(frame.c, frame), () => subscriptions.get(frame.c)?.resume());
        return;
      case 'unsub':
        subscriptions.get(frame.c)?.close();
        subscriptions.delete(frame.c);
        send({ t: 'res', id: frame.id });
        return;
      case 'hello':
        clientId = String(frame.clientId);
        return;
      default: {
        const unknown: never = frame;
        throw new Error(`unknown frame ${JSON.stringify(unknown)}`);
      }
    }
  };

  socket.on(
    'data',
    createLineSplitter((line) => {
      if (!open) return;
      try {
        handle(JSON.parse(line) as ClientFrame);
      } catch (error) {
        logger.warn({ clientId, error }, 'a bus client sent a frame the broker cannot read; disconnecting it');
        socket.destroy();
      }
    }),
  );
  socket.on('error', (error) => {
    if ((error as NodeJS.ErrnoException).code !== 'EPIPE' && (error as NodeJS.ErrnoException).code !== 'ECONNRESET') {
      logger.warn({ clientId, error }, 'a bus connection failed');
    }
  });
  socket.once('close', () => {
    open = false;
    // Whatever the client's consumers held goes back to their groups, for other consumers to take.
    for (const subscription of subscriptions.values()) subscription.close();
    subscriptions.clear();
  });
};
