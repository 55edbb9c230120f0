import {
  MongoClient,
  MongoError,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoSystemError,
  MongoTopologyClosedError,
} from 'mongodb';
import { StoreError } from '../../../domain/ports.ts';
import { ServiceUnreachableError } from '../../serviceErrors.ts';

/** What the MongoDB adapters log: connection losses and recoveries. A pino logger fits. */
export interface MongoLogger {
  warn(details: Record<string, unknown>, message: string): void;
  info(details: Record<string, unknown>, message: string): void;
}

/** The address part of a connection string, without credentials or options: safe to log and to show. */
export const describeUrl = (url: string): string => {
  const match = /^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?([^/?]*)/.exec(url);
  return match === null ? '(invalid MongoDB URL)' : `${match[1]}${match[2]}`;
};

/** The database named in the connection string's path, if any. */
export const databaseOf = (url: string): string | undefined => {
  const name = /^mongodb(?:\+srv)?:\/\/[^/]*\/([^?]*)/.exec(url)?.[1];
  return name === undefined || name === '' ? undefined : decodeURIComponent(name);
};

// Server error codes that mean "this server cannot serve you right now" (shutting down, stepped down).
const unavailableCodes = new Set([6, 7, 89, 91, 189, 10107, 11600, 11602, 13435, 13436]);

// A pool closed or cleared under an operation (MongoPoolClosedError, MongoPoolClearedError) is not
// exported by the driver; its name says it.
const poolErrors = new Set(['MongoPoolClosedError', 'MongoPoolClearedError']);

// Socket errors the driver lets through unwrapped: a command written to a socket the server has just closed
// fails with the bare EPIPE of `Socket.write` (seen when the server is killed under load).
const socketErrorCodes = new Set(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'ETIMEDOUT', 'ENOTCONN']);

const isUnavailable = (error: unknown): boolean =>
  socketErrorCodes.has((error as NodeJS.ErrnoException | null)?.code as string) ||
  error instanceof MongoNetworkError ||
  // Server selection failures and other "no usable server" states.
  error instanceof MongoSystemError ||
  error instanceof MongoTopologyClosedError ||
  error instanceof MongoServerClosedError ||
  error instanceof MongoNotConnectedError ||
  error instanceof MongoOperationTimeoutError ||
  (error instanceof MongoError && poolErrors.has(error.name)) ||
  (error instanceof MongoError && error.hasErrorLabel('RetryableWriteError')) ||
  (error instanceof MongoServerError && typeof error.code === 'number' && unavailableCodes.has(error.code)) ||
  (error instanceof MongoError && error.hasErrorLabel('ResetPool'));

/** Connection-level driver errors become the port's `UNAVAILABLE`; everything else passes unchanged. */
export const translateMongoError = (error: unknown, address: string): unknown =>
  isUnavailable(error)
    ? new StoreError('UNAVAILABLE', `MongoDB unavailable at ${address}: ${(error as Error).message}`, {
        cause: error,
      })
    : error;

export const isDuplicateKeyError = (error: unknown): boolean =>
  error instanceof MongoServerError && (error.code === 11000 || error.code === 11001);

export interface MongoClientSettings {
  readonly url: string;
  readonly serverSelectionTimeoutMs: number;
  /** How long opening a connection (and a heartbeat) may take. */
  readonly connectTimeoutMs: number;
  /** How long an operation waits on an open connection for the server's answer (a hung server). */
  readonly socketTimeoutMs: number;
  readonly logger?: MongoLogger;
}

/**
 * A client that serialises documents the way JSON does as far as BSON allows (`undefined` fields are
 * left out rather than stored as null) and logs once when the server goes away and once when it is back.
 * The driver reconnects by itself; operations in between fail fast with server selection errors.
 */
export const createMongoClient = (settings: MongoClientSettings): MongoClient => {
  const client = new MongoClient(settings.url, {
    appName: 'strata',
    ignoreUndefined: true,
    serverSelectionTimeoutMS: settings.serverSelectionTimeoutMs,
    connectTimeoutMS: settings.connectTimeoutMs,
    socketTimeoutMS: settings.socketTimeoutMs,
  });
  const { logger } = settings;
  if (logger !== undefined) {
    const address = describeUrl(settings.url);
    let reachable = true;
    client.on('serverHeartbeatFailed', (event) => {
      if (!reachable) return;
      reachable = false;
      logger.warn({ address, error: event.failure.message }, 'MongoDB unreachable; retrying in the background');
    });
    client.on('serverHeartbeatSucceeded', () => {
      if (reachable) return;
      reachable = true;
      logger.info({ address }, 'MongoDB reachable again');
    });
  }
  return client;
};

export interface DatabaseOptions {
  readonly url: string;
  /** Database name; default: the URL's, else `strata`. */
  readonly database?: string;
  /** How long an operation waits for a reachable server before failing with `UNAVAILABLE`. Default 5 s. */
  readonly serverSelectionTimeoutMs?: number;
  /**
   * How long an operation waits for the answer of a server it reached (one that hangs rather than refuses)
   * before failing with `UNAVAILABLE`. Default 20 s.
   */
  readonly socketTimeoutMs?: number;
  /** A client to share (its owner closes it); default: a new one. */
  readonly client?: MongoClient;
  readonly logger?: MongoLogger;
}

/** The database an adapter works in, its client (new or shared) and the server's address for messages. */
export const openDatabase = (options: DatabaseOptions) => {
  const ownsClient = options.client === undefined;
  const serverSelectionTimeoutMs = options.serverSelectionTimeoutMs ?? 5_000;
  const client =
    options.client ??
    createMongoClient({
      url: options.url,
      serverSelectionTimeoutMs,
      connectTimeoutMs: Math.min(serverSelectionTimeoutMs, 10_000),
      socketTimeoutMs: options.socketTimeoutMs ?? 20_000,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  const db = client.db(options.database ?? databaseOf(options.url) ?? 'strata');
  /**
   * Connects the client once. The driver connects by itself on the first operation, but when that first
   * connection fails it closes its topology and every later operation fails with "Topology is closed",
   * even once the server is back: only an explicit `connect()` makes a new one. Once connected, the driver
   * rides out outages by itself.
   */
  let connecting: Promise<void> | undefined;
  const connect = (): Promise<void> => {
    connecting ??= client.connect().then(
      () => undefined,
      (error: unknown) => {
        connecting = undefined;
        throw error;
      },
    );
    return connecting;
  };
  /**
   * The first contact: a `ping`, bounded by the server selection timeout. Whatever stops it (no server,
   * no such host, bad credentials) becomes one `ServiceUnreachableError` naming MongoDB and the address.
   */
  const ping = async (): Promise<void> => {
    const started = Date.now();
    try {
      await connect();
      await db.command({ ping: 1 });
    } catch (error) {
      throw new ServiceUnreachableError({
        service: 'MongoDB',
        address: options.url,
        cause: error,
        waitedMs: Date.now() - started,
      });
    }
  };
  return { client, db, ownsClient, address: describeUrl(options.url), connect, ping };
};
