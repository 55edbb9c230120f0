import type { BusMessage, ConsumeOptions, PublishOptions, TopicSpec } from '../../../domain/ports.ts';
import type { DurableBatch, DurableLog, StoredMessage } from './durableLog.ts';
import { BusError, type BusLogger } from './errors.ts';

/** Receives the deliveries of one consumer, synchronously, while the broker dispatches. */
export interface DeliverySink {
  deliver(message: StoredMessage, attempt: number): void;
}

/** The broker's side of one consumer. Settlements of deliveries it no longer holds are ignored. */
export interface BrokerSubscription {
  /** Starts (again) taking deliveries; a subscription starts paused. */
  resume(): void;
  pause(): void;
  ack(offset: number, attempt: number): void;
  /** The handler failed: the group gets the message again after a backoff. */
  retry(offset: number, attempt: number): void;
  /** Hands the message back to the group at once. */
  release(offset: number, attempt: number): void;
  /** Leaves the group; every message still held goes back to it. */
  close(): void;
}

export interface BrokerCore {
  ensureTopics(topics: readonly TopicSpec[]): Promise<void>;
  /**
   * Resolves once the messages are in the log. Unconfirmed ones (nobody waits on them) are written with the
   * next commit of consumer positions, at most `commitIntervalMs` later: one fsync for many.
   */
  publish(topic: string, messages: readonly BusMessage[], options?: PublishOptions): Promise<void>;
  subscribe(options: ConsumeOptions, sink: DeliverySink): Promise<BrokerSubscription>;
  close(): Promise<void>;
}

export interface BrokerCoreOptions {
  readonly log: DurableLog;
  readonly logger: BusLogger;
  /** Delay before a failed message is delivered again: initial × 2^(attempt−1), at most max. */
  readonly retryInitialMs: number;
  readonly retryMaxMs: number;
  /** How long handled positions of durable groups may wait before they are written. */
  readonly commitIntervalMs: number;
  /** Durable messages kept in memory per topic; groups further behind read pages from the file. */
  readonly memoryWindow: number;
  /** Messages an ephemeral topic keeps for lagging groups before dropping the oldest. */
  readonly maxEphemeralBacklog: number;
}

interface Topic {
  readonly name: string;
  readonly ephemeral: boolean;
  /** Offset the next published message gets. */
  head: number;
  /** Messages below this offset are stored (committed, for durable topics) and may be delivered. */
  visible: number;
  /** Lowest offset a new group reading from the earliest message starts at. */
  low: number;
  /** Messages [cacheStart, visible) that are still in memory. */
  cache: StoredMessage[];
  cacheStart: number;
  readonly groups: Map<string, Group>;
  /** Dropping messages over the ephemeral backlog limit (warned once per episode). */
  overLimit: boolean;
}

interface Held {
  readonly message: StoredMessage;
  readonly attempt: number;
}

interface RetryEntry extends Held {
  /** Date.now() from which it may be delivered again. */
  readonly readyAt: number;
}

interface Group {
  readonly topic: Topic;
  readonly name: string;
  /** Every offset below has been handled. */
  committed: number;
  /** The next offset never delivered to this group. */
  next: number;
  /** Handled offsets above `committed` (handlers finish out of order). */
  readonly acked: Set<number>;
  /** Sorted by offset, so redeliveries keep publishing order where they can. */
  readonly retry: RetryEntry[];
  readonly consumers: Subscriber[];
  roundRobin: number;
  /** Messages read from the file for a group behind the memory window. */
  page: StoredMessage[];
  pageStart: number;
  retryTimer: NodeJS.Timeout | undefined;
  retryAt: number;
  pumping: boolean;
  pumpAgain: boolean;
  /** Resolves once the group's row is in the file (durable topics). */
  stored: Promise<void>;
}

interface Subscriber {
  readonly group: Group;
  readonly capacity: number;
  readonly sink: DeliverySink;
  /** Offset → what was delivered; ephemeral messages live on here once the topic dropped them. */
  readonly inFlight: Map<number, Held>;
  paused: boolean;
  closed: boolean;
}

interface PendingPublish {
  readonly topic: Topic;
  readonly rows: (string | null)[];
  readonly messages: Array<Omit<StoredMessage, 'offset'>>;
  /** Someone waits for it: it is written at once, not with the next commit. */
  readonly confirmed: boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

interface PendingWrite {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
}

const noHeaders: Readonly<Record<string, string>> = Object.freeze({});
const pageSize = 256;

export const createBrokerCore = (options: BrokerCoreOptions): BrokerCore => {
  const { log, logger, retryInitialMs, retryMaxMs, commitIntervalMs, memoryWindow, maxEphemeralBacklog } = options;
  const topics = new Map<string, Topic>();
  const creating = new Map<string, Promise<void>>();
  let closed = false;

  const newTopic = (name: string, ephemeral: boolean, next: number, low: number): Topic => {
    const topic: Topic = {
      name,
      ephemeral,
      head: next,
      visible: next,
      low,
      cache: [],
      cacheStart: next,
      groups: new Map(),
      overLimit: false,
    };
    topics.set(name, topic);
    return topic;
  };

  const newGroup = (topic: Topic, name: string, committed: number): Group => {
    const group: Group = {
      topic,
      name,
      committed,
      next: committed,
      acked: new Set(),
      retry: [],
      consumers: [],
      roundRobin: 0,
      page: [],
      pageStart: 0,
      retryTimer: undefined,
      retryAt: 0,
      pumping: false,
      pumpAgain: false,
      stored: Promise.resolve(),
    };
    topic.groups.set(name, group);
    return group;
  };

  for (const { name, next, low } of log.topics) newTopic(name, false, next, low);
  for (const { topic, group, committed } of log.groups) {
    const owner = topics.get(topic);
    if (owner) newGroup(owner, group, committed);
  }

  // --- writing to the file: one transaction at a time, gathering whatever was asked for meanwhile ---

  let pendingPublishes: PendingPublish[] = [];
  let pendingTopics = new Map<string, PendingWrite[]>();
  let pendingWaiters: PendingWrite[] = [];
  let dirtyGroups = new Set<Group>();
  let writing = false;
  let writeScheduled = false;
  let commitTimer: NodeJS.Timeout | undefined;
  let idle: (() => void) | undefined;

  const scheduleWrite = () => {
    if (writeScheduled || writing) return;
    writeScheduled = true;
    setImmediate(writeBatch);
  };

  const scheduleCommit = () => {
    if (commitTimer !== undefined || closed) return;
    commitTimer = setTimeout(() => {
      commitTimer = undefined;
      scheduleWrite();
    }, commitIntervalMs);
  };

  const writeBatch = () => {
    writeScheduled = false;
    if (writing) return;
    const publishes = pendingPublishes;
    const newTopics = pendingTopics;
    const waiters = pendingWaiters;
    const groups = dirtyGroups;
    pendingPublishes = [];
    pendingTopics = new Map();
    pendingWaiters = [];
    dirtyGroups = new Set();
    if (commitTimer !== undefined) {
      clearTimeout(commitTimer);
      commitTimer = undefined;
    }
    if (publishes.length + newTopics.size + waiters.length + groups.size === 0) {
      idle?.();
      return;
    }

    const appends: Array<{ topic: string; first: number; rows: (string | null)[] }> = [];
    const firsts: number[] = [];
    for (const publish of publishes) {
      firsts.push(publish.topic.head);
      appends.push({ topic: publish.topic.name, first: publish.topic.head, rows: publish.rows });
      publish.topic.head += publish.messages.length;
    }
    const positions = [...groups].map((group) => ({
      topic: group.topic.name,
      group: group.name,
      committed: group.committed,
    }));
    const deletes: Array<{ topic: string; below: number }> = [];
    for (const topic of new Set([...groups].map((group) => group.topic))) {
      let below = Number.POSITIVE_INFINITY;
      for (const group of topic.groups.values()) below = Math.min(below, group.committed);
      if (below > topic.low && Number.isFinite(below)) deletes.push({ topic: topic.name, below });
    }
    const batch: DurableBatch = { topics: [...newTopics.keys()], appends, positions, deletes };

    writing = true;
    log.write(batch).then(
      () => {
        for (const name of newTopics.keys()) {
          if (!topics.has(name)) newTopic(name, false, 0, 0);
          creating.delete(name);
        }
        for (const { topic, below } of deletes) {
          const owner = topics.get(topic);
          if (owner) owner.low = Math.max(owner.low, below);
        }
        const touched = new Set<Topic>();
        publishes.forEach((publish, index) => {
          const { topic, messages } = publish;
          let offset = firsts[index] ?? 0;
          // Batches commit in order, so the cache normally just grows at its end.
          if (topic.cacheStart + topic.cache.length !== offset) {
            topic.cache = [];
            topic.cacheStart = offset;
          }
          for (const message of messages) topic.cache.push({ offset: offset++, ...message });
          topic.visible = offset;
          touched.add(topic);
        });
        writing = false;
        for (const waiting of newTopics.values()) for (const { resolve } of waiting) resolve();
        for (const { resolve } of waiters) resolve();
        for (const { resolve } of publishes) resolve();
        for (const topic of touched) pumpTopic(topic);
        afterWrite();
      },
      (error: unknown) => {
        const failure =
          error instanceof BusError
            ? error
            : new BusError('UNAVAILABLE', 'the bus log could not commit', { cause: error });
        logger.warn({ error: failure }, 'the bus could not write its log');
        for (const [index, publish] of publishes.entries()) {
          const { topic } = publish;
          const first = firsts[index] ?? topic.head;
          // Offsets never stored are handed out again; nothing can have been delivered from them.
          if (topic.head > first) topic.head = first;
          for (const group of topic.groups.values()) {
            if (group.next > topic.head) group.next = topic.head;
            if (group.committed > topic.head) group.committed = topic.head;
          }
        }
        for (const name of newTopics.keys()) creating.delete(name);
        for (const group of groups) if (!closed) dirtyGroups.add(group);
        writing = false;
        for (const waiting of newTopics.values()) for (const { reject } of waiting) reject(failure);
        for (const { reject } of waiters) reject(failure);
        for (const { reject } of publishes) reject(failure);
        afterWrite();
      },
    );
  };

  const afterWrite = () => {
    const waitedFor = pendingTopics.size + pendingWaiters.length > 0 || pendingPublishes.some((p) => p.confirmed);
    if (waitedFor) scheduleWrite();
    else if (dirtyGroups.size > 0 || pendingPublishes.length > 0) {
      if (closed) scheduleWrite();
      else scheduleCommit();
    } else idle?.();
  };

  /** Resolves once everything asked for so far is in the file. */
  const flushed = () =>
    new Promise<void>((resolve, reject) => {
      pendingWaiters.push({ resolve, reject });
      scheduleWrite();
    });

  // --- delivery ---

  const messageAt = (group: Group, offset: number): StoredMessage | undefined => {
    const { topic } = group;
    if (offset >= topic.cacheStart) return topic.cache[offset - topic.cacheStart];
    const index = offset - group.pageStart;
    if (index >= 0 && index < group.page.length) {
      const message = group.page[index];
      if (message?.offset === offset) return message;
    }
    if (topic.ephemeral) return undefined;
    group.page = log.read(topic.name, offset, topic.cacheStart, pageSize);
    group.pageStart = offset;
    const first = group.page[0];
    return first?.offset === offset ? first : undefined;
  };

  const nextSubscriber = (group: Group): Subscriber | undefined => {
    const { consumers } = group;
    const count = consumers.length;
    for (let step = 0; step < count; step += 1) {
      const index = (group.roundRobin + step) % count;
      const subscriber = consumers[index];
      if (subscriber && !subscriber.paused && subscriber.inFlight.size < subscriber.capacity) {
        group.roundRobin = (index + 1) % count;
        return subscriber;
      }
    }
    return undefined;
  };

  const takeRetry = (group: Group): RetryEntry | undefined => {
    const { retry } = group;
    if (retry.length === 0) return undefined;
    const now = Date.now();
    let earliest = Number.POSITIVE_INFINITY;
    for (let index = 0; index < retry.length; index += 1) {
      const entry = retry[index] as RetryEntry;
      if (entry.readyAt <= now) {
        retry.splice(index, 1);
        return entry;
      }
      earliest = Math.min(earliest, entry.readyAt);
    }
    wakeAt(group, earliest, now);
    return undefined;
  };

  const wakeAt = (group: Group, at: number, now: number) => {
    if (closed || (group.retryTimer !== undefined && group.retryAt <= at)) return;
    clearTimeout(group.retryTimer);
    group.retryAt = at;
    group.retryTimer = setTimeout(() => {
      group.retryTimer = undefined;
      pump(group);
    }, at - now);
  };

  const pump = (group: Group) => {
    if (closed) return;
    if (group.pumping) {
      group.pumpAgain = true;
      return;
    }
    group.pumping = true;
    try {
      do {
        group.pumpAgain = false;
        for (;;) {
          const subscriber = nextSubscriber(group);
          if (subscriber === undefined) break;
          let message: StoredMessage | undefined;
          let attempt = 1;
          const retry = takeRetry(group);
          if (retry) {
            message = retry.message;
            attempt = retry.attempt + 1;
          } else {
            const { topic } = group;
            while (message === undefined && group.next < topic.visible) {
              const offset = group.next++;
              message = messageAt(group, offset);
              // Only an ephemeral topic over its backlog limit loses messages; they count as handled.
              if (message === undefined) markHandled(group, offset);
            }
          }
          if (message === undefined) break;
          subscriber.inFlight.set(message.offset, { message, attempt });
          subscriber.sink.deliver(message, attempt);
        }
      } while (group.pumpAgain);
    } finally {
      group.pumping = false;
    }
    trim(group.topic);
  };

  const pumpTopic = (topic: Topic) => {
    for (const group of topic.groups.values()) pump(group);
  };

  // Drops from memory what no group will fetch again; deliveries in flight keep their own references.
  const trim = (topic: Topic) => {
    let keepFrom = topic.ephemeral ? topic.cacheStart : topic.visible - memoryWindow;
    if (topic.groups.size > 0) {
      let lowest = Number.POSITIVE_INFINITY;
      for (const group of topic.groups.values()) lowest = Math.min(lowest, group.next);
      keepFrom = topic.ephemeral ? lowest : Math.max(lowest, keepFrom);
    }
    if (topic.ephemeral) {
      const over = topic.visible - keepFrom > maxEphemeralBacklog;
      if (over) dropOldest(topic, topic.visible - maxEphemeralBacklog);
      else topic.overLimit = false;
      keepFrom = Math.max(keepFrom, topic.visible - maxEphemeralBacklog);
    }
    // A group starting at the latest offset may be ahead of what is stored yet.
    keepFrom = Math.min(keepFrom, topic.visible);
    const drop = keepFrom - topic.cacheStart;
    // Dropping in chunks keeps trimming amortised O(1) per message.
    if (drop > 0 && (drop >= 1024 || drop * 2 >= topic.cache.length)) {
      topic.cache.splice(0, drop);
      topic.cacheStart = keepFrom;
    }
  };

  const dropOldest = (topic: Topic, keepFrom: number) => {
    for (const group of topic.groups.values()) {
      for (let offset = group.next; offset < keepFrom; offset += 1) markHandled(group, offset);
      group.next = Math.max(group.next, keepFrom);
    }
    if (!topic.overLimit) {
      topic.overLimit = true;
      logger.warn(
        { topic: topic.name, limit: maxEphemeralBacklog },
        'an ephemeral topic went over its backlog limit: its oldest messages are being dropped',
      );
    }
  };

  const markHandled = (group: Group, offset: number) => {
    if (offset < group.committed) return;
    if (offset === group.committed) {
      group.committed += 1;
      while (group.acked.delete(group.committed)) group.committed += 1;
      if (!group.topic.ephemeral) {
        dirtyGroups.add(group);
        scheduleCommit();
      }
    } else group.acked.add(offset);
  };

  const backoff = (attempt: number) => Math.min(retryMaxMs, retryInitialMs * 2 ** (attempt - 1));

  const giveBack = (group: Group, message: StoredMessage, attempt: number, readyAt: number) => {
    const { retry } = group;
    let index = retry.length;
    while (index > 0 && (retry[index - 1] as RetryEntry).message.offset > message.offset) index -= 1;
    retry.splice(index, 0, { message, attempt, readyAt });
    if (readyAt > 0) wakeAt(group, readyAt, Date.now());
  };

  const subscribe = async (consumeOptions: ConsumeOptions, sink: DeliverySink): Promise<BrokerSubscription> => {
    ensureOpen();
    const { topic: topicName, group: groupName, concurrency = 1, from = 'earliest' } = consumeOptions;
    if (typeof groupName !== 'string' || groupName === '') {
      throw new BusError('INVALID_ARGUMENT', 'a consumer needs a group name');
    }
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new BusError('INVALID_ARGUMENT', `concurrency must be a positive integer, not ${concurrency}`);
    }
    if (from !== 'earliest' && from !== 'latest') {
      throw new BusError('INVALID_ARGUMENT', `from must be 'earliest' or 'latest', not ${String(from)}`);
    }
    const topic = topicNamed(topicName);
    let group = topic.groups.get(groupName);
    if (group === undefined) {
      const earliest = topic.ephemeral ? Math.max(topic.cacheStart, topic.visible - maxEphemeralBacklog) : topic.low;
      group = newGroup(topic, groupName, from === 'latest' ? topic.head : earliest);
      if (!topic.ephemeral) {
        dirtyGroups.add(group);
        group.stored = flushed();
      }
    }
    try {
      await group.stored;
    } catch (error) {
      // A later subscribe creates the group again.
      if (topic.groups.get(groupName) === group && group.consumers.length === 0) topic.groups.delete(groupName);
      throw error;
    }
    const subscriber: Subscriber = {
      group,
      capacity: concurrency,
      sink,
      inFlight: new Map(),
      paused: true,
      closed: false,
    };
    group.consumers.push(subscriber);
    const owner = group;
    const settle = (offset: number, attempt: number, how: 'ack' | 'retry' | 'release') => {
      const held = subscriber.inFlight.get(offset);
      if (subscriber.closed || held?.attempt !== attempt) return;
      subscriber.inFlight.delete(offset);
      if (how === 'ack') markHandled(owner, offset);
      else giveBack(owner, held.message, attempt, how === 'retry' ? Date.now() + backoff(attempt) : 0);
      pump(owner);
    };
    return {
      resume() {
        if (subscriber.closed) return;
        subscriber.paused = false;
        pump(owner);
      },
      pause() {
        subscriber.paused = true;
      },
      ack: (offset, attempt) => settle(offset, attempt, 'ack'),
      retry: (offset, attempt) => settle(offset, attempt, 'retry'),
      release: (offset, attempt) => settle(offset, attempt, 'release'),
      close() {
        if (subscriber.closed) return;
        for (const { message, attempt } of subscriber.inFlight.values()) giveBack(owner, message, attempt, 0);
        subscriber.closed = true;
        subscriber.inFlight.clear();
        owner.consumers.splice(owner.consumers.indexOf(subscriber), 1);
        pump(owner);
      },
    };
  };

  const topicNamed = (name: string): Topic => {
    const topic = typeof name === 'string' ? topics.get(name) : undefined;
    if (topic === undefined) throw new BusError('UNKNOWN_TOPIC', `there is no topic ${JSON.stringify(name)}`);
    return topic;
  };

  const ensureOpen = () => {
    if (closed) throw new BusError('UNAVAILABLE', 'the bus is closed');
  };

  return {
    async ensureTopics(specs) {
      ensureOpen();
      if (!Array.isArray(specs)) throw new BusError('INVALID_ARGUMENT', 'ensureTopics takes an array of topics');
      const waits: Promise<void>[] = [];
      for (const spec of specs) {
        const name = spec?.name;
        if (typeof name !== 'string' || name === '') throw new BusError('INVALID_ARGUMENT', 'a topic needs a name');
        const ephemeral = spec.ephemeral === true;
        const existing = topics.get(name);
        if (existing) {
          if (existing.ephemeral !== ephemeral) {
            logger.warn(
              { topic: name, ephemeral: existing.ephemeral },
              'a topic was declared again with another durability; it keeps the first one',
            );
          }
          continue;
        }
        const pending = creating.get(name);
        if (pending) {
          waits.push(pending);
          continue;
        }
        if (ephemeral) {
          newTopic(name, true, 0, 0);
          continue;
        }
        const created = new Promise<void>((resolve, reject) => {
          pendingTopics.set(name, [{ resolve, reject }]);
        });
        creating.set(name, created);
        waits.push(created);
      }
      if (waits.length > 0) {
        scheduleWrite();
        await Promise.all(waits);
      }
    },

    async publish(topicName, messages, publishOptions) {
      ensureOpen();
      const topic = topicNamed(topicName);
      if (!Array.isArray(messages)) throw new BusError('INVALID_ARGUMENT', 'publish takes an array of messages');
      if (messages.length === 0) return;
      const timestamp = new Date().toISOString();
      const accepted = messages.map((message) => accept(message, timestamp));
      if (topic.ephemeral) {
        for (const message of accepted) topic.cache.push({ offset: topic.head++, ...message });
        topic.visible = topic.head;
        pumpTopic(topic);
        if (topic.groups.size === 0) trim(topic);
        return;
      }
      const rows: (string | null)[] = [];
      for (const { key, value, headers } of accepted) {
        rows.push(key, value, headers === noHeaders ? null : JSON.stringify(headers), timestamp);
      }
      await new Promise<void>((resolve, reject) => {
        const confirmed = publishOptions?.confirm !== false;
        pendingPublishes.push({ topic, rows, messages: accepted, confirmed, resolve, reject });
        if (confirmed) scheduleWrite();
        else scheduleCommit();
      });
    },

    subscribe,

    async close() {
      if (closed) return;
      closed = true;
      for (const topic of topics.values()) {
        for (const group of topic.groups.values()) {
          if (group.retryTimer !== undefined) clearTimeout(group.retryTimer);
          group.retryTimer = undefined;
        }
      }
      if (commitTimer !== undefined) clearTimeout(commitTimer);
      commitTimer = undefined;
      // Publishes and handled positions accepted before closing are written first.
      await new Promise<void>((resolve) => {
        idle = resolve;
        scheduleWrite();
      });
      await log.close();
    },
  };
};

const accept = (message: BusMessage, timestamp: string): Omit<StoredMessage, 'offset'> => {
  const { key, value, headers } = message ?? {};
  if (typeof key !== 'string' || typeof value !== 'string') {
    throw new BusError('INVALID_ARGUMENT', 'a message needs a string key and a string value');
  }
  if (headers === undefined || headers === null) return { key, value, headers: noHeaders, timestamp };
  if (typeof headers !== 'object') throw new BusError('INVALID_ARGUMENT', 'message headers must be an object');
  const copy: Record<string, string> = {};
  let empty = true;
  for (const name in headers) {
    const header = headers[name];
    if (typeof header !== 'string') throw new BusError('INVALID_ARGUMENT', `header ${name} must be a string`);
    copy[name] = header;
    empty = false;
  }
  return { key, value, headers: empty ? noHeaders : copy, timestamp };
};
