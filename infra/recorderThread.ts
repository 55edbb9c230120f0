// What invocations leave behind (records, logs, metric buckets, runner heartbeats) is written by a thread of its
// own. In the process that serves the API it was a third of the work of a sync invoke on the one thread that
// also answers HTTP: every result parsed again, looked up, turned into a record and written to SQLite, in
// bursts of hundreds when the bus commits. On its own thread that work runs beside the API's, on the core
// the runner leaves free, and its garbage is collected apart from the API's.
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { type InvocationResult, type RunnerHeartbeat, TOPICS } from '../domain/invocation/messages.ts';
import { type Consumer, type InvocationBus, type ReadStore, StoreError } from '../domain/ports.ts';
import { createInvocationRecorder, type InvocationRecorder } from '../projections/invocations.ts';
import { recordHeartbeat } from '../projections/runners.ts';
import { connectEmbeddedBus } from './bus/embedded/client.ts';
import type { Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { busSocketPath } from './paths.ts';
import { createPending } from './pending.ts';
import { openKafkaBus, openReadStore } from './stores.ts';

/** How often the gathered metric buckets and totals are merged into the store. */
const FLUSH_INTERVAL_MS = 1_000;
/** How long the answers of sync invocations gather before they go to the recording thread. */
const ANSWER_BATCH_MS = 10;
/** Results the recorder takes at once: what arrives together is recorded in one transaction. */
const RECORDER_CONCURRENCY = 256;

interface RecorderThreadData {
  readonly recorderThread: true;
  readonly config: Config;
  readonly nodeId: string;
  readonly logLevel: string;
}

/**
 * What the API of this process has recorded: the Queued record of an async request it accepted (or its
 * removal if the publish failed), and the results of sync invocations it was answered with (their JSON).
 */
export type LocalRecords = Pick<InvocationRecorder, 'queued' | 'forget'> & {
  answered(value: string): Promise<void>;
};
type QueuedRequest = Parameters<LocalRecords['queued']>[0];

type ToThread =
  | { readonly type: 'close' }
  | { readonly type: 'queued'; readonly request: QueuedRequest }
  | { readonly type: 'forget'; readonly requestId: string }
  | { readonly type: 'answered'; readonly values: readonly string[] };
type FromThread =
  | { readonly type: 'ready' }
  | { readonly type: 'closed' }
  | { readonly type: 'failed'; readonly message: string };

/** The recorder and the heartbeats view, consuming from `bus` into `readStore`; closes what it opened. */
export const startRecording = async (
  bus: InvocationBus,
  readStore: ReadStore,
  options: { nodeId: string; retentionMs: number; logger: Logger },
) => {
  const recorder = createInvocationRecorder({ readStore, nodeId: options.nodeId, retentionMs: options.retentionMs });
  await bus.ensureTopics([{ name: TOPICS.results }, { name: TOPICS.heartbeats, ephemeral: true }]);
  const consumers: Consumer[] = [
    await bus.consume(
      { topic: TOPICS.results, group: 'strata-records', concurrency: RECORDER_CONCURRENCY },
      (message) => recorder.record(JSON.parse(message.value) as InvocationResult),
    ),
    await bus.consume(
      { topic: TOPICS.heartbeats, group: `strata-runners-view-${options.nodeId}`, from: 'latest' },
      (message) => recordHeartbeat(readStore, JSON.parse(message.value) as RunnerHeartbeat),
    ),
  ];
  const flushTimer = setInterval(
    () => void recorder.flush().catch((error: unknown) => options.logger.error({ err: error }, 'metrics flush failed')),
    FLUSH_INTERVAL_MS,
  );
  // Answers handed over by the API are recorded before closing, as the consumers' results are.
  const answering = createPending();
  return {
    queued: (request: QueuedRequest) => recorder.queued(request),
    forget: (requestId: string) => recorder.forget(requestId),
    answered: (value: string): Promise<void> => answering.track(recorder.record(JSON.parse(value) as InvocationResult)),
    async close() {
      clearInterval(flushTimer);
      for (const consumer of consumers) await consumer.close();
      await answering.settled();
      await recorder.flush();
    },
  };
};

/**
 * Starts the recording thread; resolves once it consumes. It opens its own read store and bus client (the
 * embedded broker's socket, or Kafka), as a runner does. A thread that dies is started again after a second.
 * The API's Queued records go to it too (`queued`, `forget`), and the sync results it was answered with
 * (`answered`): one thread writes the file, so the thread that answers HTTP never waits for SQLite's write lock
 * (its busy handler sleeps in milliseconds).
 */
export const startRecorderThread = async (config: Config, nodeId: string, logger: Logger) => {
  const data: RecorderThreadData = { recorderThread: true, config, nodeId, logLevel: logger.level };
  let worker: Worker | undefined;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | undefined;

  /** Sync results answered while the thread was down: counted, reported once it is back. */
  let unrecordedAnswers = 0;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const current = new Worker(new URL(import.meta.url), { workerData: data });
      worker = current;
      current.on('message', (message: FromThread) => {
        if (message.type === 'ready') {
          if (unrecordedAnswers > 0) {
            logger.warn(
              { count: unrecordedAnswers },
              'sync results answered while the recording thread was down were not recorded',
            );
          }
          unrecordedAnswers = 0;
          resolve();
        } else if (message.type === 'failed') reject(new Error(message.message));
      });
      current.once('error', (error) => {
        logger.error({ err: error }, 'the recording thread failed');
        reject(error);
      });
      current.once('exit', (code) => {
        if (worker === current) worker = undefined;
        if (stopping) return;
        reject(new Error(`the recording thread exited with ${code}`));
        logger.warn({ code }, 'the recording thread exited; starting it again in 1 s');
        restartTimer = setTimeout(() => void start().catch(() => undefined), 1_000);
      });
    });

  await start();
  const send = async (message: ToThread): Promise<void> => {
    // A 503 for the caller: the thread is being started again.
    if (worker === undefined) throw new StoreError('UNAVAILABLE', 'the recording thread is not running');
    worker.postMessage(message);
  };
  // The answers of ANSWER_BATCH_MS go to the thread in one message: each message wakes the other thread,
  // which on two busy cores takes this one's core from it (postMessage was 3.5% of its samples when sent
  // every event-loop turn, 2% every 10 ms).
  let answers: string[] = [];
  let answerTimer: NodeJS.Timeout | undefined;
  const sendAnswers = () => {
    clearTimeout(answerTimer);
    const values = answers;
    answers = [];
    if (worker === undefined) unrecordedAnswers += values.length;
    else worker.postMessage({ type: 'answered', values } satisfies ToThread);
  };
  return {
    queued: (request: QueuedRequest) => send({ type: 'queued', request }),
    forget: (requestId: string) => send({ type: 'forget', requestId }),
    // The caller has its answer; a record lost while the thread restarts is counted, not logged one by one.
    async answered(value: string) {
      if (worker === undefined) {
        unrecordedAnswers += 1;
        return;
      }
      if (answers.length === 0) answerTimer = setTimeout(sendAnswers, ANSWER_BATCH_MS);
      answers.push(value);
    },
    async close() {
      if (answers.length > 0) sendAnswers();
      stopping = true;
      clearTimeout(restartTimer);
      const current = worker;
      if (current === undefined) return;
      const closed = new Promise<void>((resolve) => current.once('exit', () => resolve()));
      current.postMessage({ type: 'close' } satisfies ToThread);
      await closed;
    },
  };
};

const runThread = async () => {
  const { config, nodeId, logLevel } = workerData as RecorderThreadData;
  const port = parentPort;
  if (port === null) return;
  const logger = createLogger(logLevel, 'strata-recorder');
  try {
    const clientId = `${nodeId}-recorder`;
    const bus =
      (await openKafkaBus(config, clientId, logger)) ??
      (await connectEmbeddedBus({ socketPath: busSocketPath(config.dataDir), clientId, logger }));
    const readStore = await openReadStore(config, logger);
    const recording = await startRecording(bus, readStore, {
      nodeId,
      retentionMs: config.invocationRetentionMs,
      logger,
    });
    port.on('message', (message: ToThread) => {
      if (message.type === 'answered') {
        for (const value of message.values) {
          recording
            .answered(value)
            .catch((error: unknown) => logger.error({ err: error }, 'recording a sync result failed'));
        }
        return;
      }
      if (message.type === 'queued' || message.type === 'forget') {
        const written =
          message.type === 'queued' ? recording.queued(message.request) : recording.forget(message.requestId);
        written.catch((error: unknown) => logger.error({ err: error }, 'writing a Queued record failed'));
        return;
      }
      void (async () => {
        await recording.close().catch((error: unknown) => logger.error({ err: error }, 'closing the recorder failed'));
        await bus.close().catch(() => undefined);
        await readStore.close().catch(() => undefined);
        port.postMessage({ type: 'closed' } satisfies FromThread);
        process.exit(0);
      })();
    });
    port.postMessage({ type: 'ready' } satisfies FromThread);
  } catch (error) {
    port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
    process.exit(1);
  }
};

if (!isMainThread && (workerData as { recorderThread?: unknown } | null)?.recorderThread !== undefined) {
  void runThread();
}
