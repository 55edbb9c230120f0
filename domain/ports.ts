/**
 * Ports: the narrow interfaces through which the domain, the command handlers, the projections and the
 * API reach the outside world. Adapters live in infra/, one folder per port; every adapter of a port
 * passes the same contract suite in test/contracts/.
 */

/** Metadata carried by every event. */
export interface EventMetadata {
  /** Id of the user who caused the change ("system" for the platform itself). */
  readonly userId: string;
  /** ISO-8601 time of the decision, taken from the command (never from a clock inside domain/). */
  readonly occurredAt: string;
  readonly traceId: string;
  readonly correlationId: string;
  readonly causationId: string;
}

/** An event about to be appended. `data` must be JSON-serialisable. */
export interface NewEvent {
  readonly type: string;
  readonly schemaVersion: number;
  readonly data: unknown;
  readonly metadata: EventMetadata;
}

/** An event as stored: its stream, its revision in the stream (0-based) and its position in the log. */
export interface RecordedEvent extends NewEvent {
  readonly streamId: string;
  /** 0-based revision of the event in its stream. */
  readonly revision: number;
  /** Global position in the log; strictly increasing, gaps allowed. */
  readonly position: bigint;
  /** ISO-8601 time the store recorded the event. */
  readonly recordedAt: string;
}

/**
 * What the appender expects of the stream: that it does not exist yet, nothing at all, or that its last
 * event has exactly this 0-based revision.
 */
export type ExpectedRevision = 'noStream' | 'any' | number;

export interface AppendResult {
  /** Revision of the last event appended. */
  readonly nextExpectedRevision: number;
  /** Global position of the last event appended. */
  readonly position: bigint;
}

export interface ReadAllOptions {
  /** Exclusive: events strictly after this position. Omit to start at the beginning. */
  readonly after?: bigint;
  readonly maxCount?: number;
}

export interface Subscription {
  /** Stops delivery; resolves when no handler call is running any more. */
  close(): Promise<void>;
}

export interface SubscribeToAllOptions {
  /** Exclusive start position; omit to start at the beginning of the log. */
  readonly after?: bigint;
  /** Only events whose stream id starts with one of these prefixes are delivered. */
  readonly streamPrefixes?: readonly string[];
  /** Called when the subscription fails for good (the handler threw, or the store went away). */
  readonly onError?: (error: Error) => void;
}

/**
 * The event log. One stream per aggregate; appends are atomic per call and durable before they resolve.
 * A wrong expected revision rejects with a `StoreError` of code `WRONG_EXPECTED_REVISION`.
 */
export interface EventStore {
  append(streamId: string, events: readonly NewEvent[], expected: ExpectedRevision): Promise<AppendResult>;
  /** The whole stream in revision order; an empty array when the stream does not exist. */
  readStream(streamId: string): Promise<RecordedEvent[]>;
  /** Events of every stream in position order. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /** Delivers past events (catch-up), then live ones, one at a time and in order. */
  subscribeToAll(
    handler: (event: RecordedEvent) => Promise<void> | void,
    options?: SubscribeToAllOptions,
  ): Subscription;
  /** Position of the last event in the log, or -1n when the log is empty. */
  headPosition(): Promise<bigint>;
  close(): Promise<void>;
}

/** Errors raised by adapters, recognised by `code`. */
export type StoreErrorCode = 'WRONG_EXPECTED_REVISION' | 'UNAVAILABLE';

export class StoreError extends Error {
  readonly code: StoreErrorCode;
  constructor(code: StoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreError';
    this.code = code;
  }
}

export const isStoreError = (error: unknown, code?: StoreErrorCode): error is StoreError =>
  typeof error === 'object' &&
  error !== null &&
  (error as { name?: unknown }).name === 'StoreError' &&
  (code === undefined || (error as { code?: unknown }).code === code);

/** A JSON document of a read model. */
export type Document = Record<string, unknown>;

export type Scalar = string | number | boolean | null;

export interface FindQuery {
  /** Equality on (dotted) field paths, all of which must hold. */
  readonly where?: Readonly<Record<string, Scalar>>;
  /** Field path to sort by, ascending unless `descending`; ties are broken by id ascending. */
  readonly sortBy?: string;
  readonly descending?: boolean;
  readonly limit?: number;
  readonly offset?: number;
}

export interface FindResult {
  readonly items: Document[];
  /** Number of documents matching `where`, regardless of limit and offset. */
  readonly total: number;
}

export interface DocumentWrite {
  readonly collection: string;
  readonly id: string;
  readonly document: Document;
}

/**
 * Document storage for read models. Collections are created on first use. Writes to one id are
 * last-writer-wins; projections guard them with the stream revision they store inside the document.
 */
export interface ReadStore {
  get(collection: string, id: string): Promise<Document | null>;
  put(collection: string, id: string, document: Document): Promise<void>;
  /**
   * Optional: puts many documents (later entries win over earlier ones with the same id) at the cost of
   * about one write: all or none, in one transaction. Callers that batch fall back to `put` one by one.
   */
  putMany?(documents: readonly DocumentWrite[]): Promise<void>;
  delete(collection: string, id: string): Promise<void>;
  find(collection: string, query?: FindQuery): Promise<FindResult>;
  /**
   * Declares one compound index over `fields`, in order: equality fields first, then the sort field
   * (e.g. ['status', 'name'] serves `where status` sorted by name).
   */
  ensureIndex(collection: string, fields: readonly string[]): Promise<void>;
  getCheckpoint(projection: string): Promise<bigint | null>;
  setCheckpoint(projection: string, position: bigint): Promise<void>;
  /** Removes every document of one collection (a rebuild drops only the collections it rebuilds). */
  dropCollection(collection: string): Promise<void>;
  /** Removes every collection and checkpoint. */
  dropAll(): Promise<void>;
  close(): Promise<void>;
}

/** Where a code package is stored. */
export interface StoredCode {
  readonly sha256: string;
  readonly size: number;
  readonly location: string;
}

/** Content-addressed storage of code packages (ZIP files). */
export interface CodeStore {
  /** Stores the bytes under their sha256 (lower-case hex); storing the same bytes twice keeps one copy. */
  put(bytes: Uint8Array): Promise<StoredCode>;
  /** Starts a package whose bytes arrive in pieces: an adapter may write them while more arrive. */
  upload(): CodeUpload;
  /** The bytes, or null when nothing is stored under that hash. */
  get(sha256: string): Promise<Uint8Array | null>;
  has(sha256: string): Promise<boolean>;
}

/** A package being received; nothing of it is stored (or found by get/has) before `commit`. */
export interface CodeUpload {
  /** Appends bytes; the caller leaves `chunk` unchanged afterwards. A failure to write surfaces at `commit`. */
  write(chunk: Uint8Array): void;
  /**
   * Stores what was written exactly as `put` would store it, durably, and answers as `put` does. With
   * `approval`, the bytes are flushed while it is pending and stored only once it resolves; when it rejects,
   * nothing is stored and commit rejects with its reason.
   */
  commit(approval?: Promise<unknown>): Promise<StoredCode>;
  /** Drops what was written. Safe to call after `commit`, or twice: it then does nothing. */
  discard(): Promise<void>;
}

export interface Clock {
  now(): Date;
}

export interface Ids {
  /** A new unique id with the given prefix, e.g. `user-3f9a…`. */
  next(prefix: string): string;
}

/** What reading a code package's directory found, without inflating anything. */
export type ZipInspection =
  | { readonly ok: true; readonly files: string[]; readonly entryCount: number; readonly uncompressedSize: number }
  | { readonly ok: false; readonly reason: string };

export type InspectCodePackage = (bytes: Uint8Array) => Promise<ZipInspection>;

/** Errors raised by bus adapters, recognised by `code`. */
export type BusErrorCode = 'UNKNOWN_TOPIC' | 'INVALID_ARGUMENT' | 'UNAVAILABLE';

export class BusError extends Error {
  readonly code: BusErrorCode;
  constructor(code: BusErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
  }
}

export const isBusError = (error: unknown, code?: BusErrorCode): error is BusError =>
  typeof error === 'object' &&
  error !== null &&
  (error as { name?: unknown }).name === 'BusError' &&
  (code === undefined || (error as { code?: unknown }).code === code);

/** A message to publish: a key (partitioning and ordering), a JSON text value, string headers. */
export interface BusMessage {
  readonly key: string;
  readonly value: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface DeliveredMessage extends BusMessage {
  readonly topic: string;
  readonly partition: number;
  /** Offset within the partition, as a decimal string. */
  readonly offset: string;
  /** ISO-8601 time the bus accepted the message. */
  readonly timestamp: string;
  /** 1 on first delivery; higher when the message is delivered again (consumer crash, handler failure). */
  readonly deliveryAttempt: number;
  /** Resolves when this consumer must stop working on the message (closing, or it was taken back). */
  readonly signal?: AbortSignal;
}

export interface TopicSpec {
  readonly name: string;
  /** Partitions (Kafka); the embedded bus has one per topic. */
  readonly partitions?: number;
  /**
   * Ephemeral topics (per-node reply topics) keep messages only in memory where the adapter can, and
   * drop them once delivered; durable ones keep them until every group has handled them.
   */
  readonly ephemeral?: boolean;
}

export interface ConsumeOptions {
  readonly topic: string;
  /** Consumers of one group share the topic's messages; each group sees every message. */
  readonly group: string;
  /** Messages this consumer works on at once (default 1). */
  readonly concurrency?: number;
  /** Where a group without a committed position starts: the oldest message (default) or new ones only. */
  readonly from?: 'earliest' | 'latest';
}

export interface Consumer {
  /** Stops taking messages; in-flight ones finish (or are taken back) before it resolves. */
  close(): Promise<void>;
}

/**
 * Topics with keyed messages and consumer groups, delivering at least once: a message counts as handled
 * when the handler resolves; if the handler throws, or its consumer dies first, the message is delivered
 * again (to any consumer of the group). `publish` resolves once the messages are durably stored (for
 * non-ephemeral topics), so a caller may acknowledge its client. Publishing to or consuming from a topic
 * no one declared rejects with `BusError` `UNKNOWN_TOPIC`; an unreachable bus with `UNAVAILABLE`. With
 * `concurrency` above 1 there is no ordering, not even per key.
 */
export interface PublishOptions {
  /**
   * false: resolve once the messages are handed to the bus, without waiting to hear that they are stored (one
   * message less between processes); the adapter logs a failure. For what a caller has no use to wait on: a
   * sync reply, the record of a sync result. Adapters may wait anyway (Kafka does). Default true.
   */
  readonly confirm?: boolean;
}

export interface InvocationBus {
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /** Resolves when the messages are stored (see PublishOptions.confirm); all of them or none. */
  publish(topic: string, messages: readonly BusMessage[], options?: PublishOptions): Promise<void>;
  consume(options: ConsumeOptions, handler: (message: DeliveredMessage) => Promise<void>): Promise<Consumer>;
  close(): Promise<void>;
}
