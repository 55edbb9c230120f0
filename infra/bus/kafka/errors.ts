import type { logLevel as LogLevel, LogEntry } from 'kafkajs';
import { BusError, type BusErrorCode, isBusError } from '../../../domain/ports.ts';

export { BusError, isBusError };

/** Where the bus reports what no caller can be told about. A pino logger or `console` fits. */
export interface KafkaBusLogger {
  warn(details: Record<string, unknown>, message: string): void;
  info(details: Record<string, unknown>, message: string): void;
  debug?(details: Record<string, unknown>, message: string): void;
}

// Kafka error types that mean the request itself is wrong: sending it again cannot help.
const INVALID: ReadonlySet<string> = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TOPIC_EXCEPTION',
  'INVALID_PARTITIONS',
  'INVALID_REPLICATION_FACTOR',
  'INVALID_CONFIG',
  'POLICY_VIOLATION',
  'OFFSET_METADATA_TOO_LARGE',
]);

/** The Kafka error types (`UNKNOWN_TOPIC_OR_PARTITION`, …) along an error's chain of causes. */
export const kafkaErrorTypes = (error: unknown): string[] => {
  const types: string[] = [];
  const seen = new Set<unknown>();
  const visit = (current: unknown) => {
    if (typeof current !== 'object' || current === null || seen.has(current)) return;
    seen.add(current);
    const { type, cause, errors } = current as { type?: unknown; cause?: unknown; errors?: unknown };
    if (typeof type === 'string') types.push(type);
    visit(cause);
    if (Array.isArray(errors)) for (const inner of errors) visit(inner);
  };
  visit(error);
  return types;
};

/** A kafkajs failure as the port's error: a wrong request is the caller's; anything else, the bus is unavailable. */
export const toBusError = (error: unknown, what: string, brokers: string): BusError => {
  if (isBusError(error)) return error;
  const types = kafkaErrorTypes(error);
  const message = (error as { message?: unknown } | undefined)?.message;
  const reason = typeof message === 'string' && message !== '' ? `: ${message}` : '';
  let code: BusErrorCode = 'UNAVAILABLE';
  if (types.includes('UNKNOWN_TOPIC_OR_PARTITION')) code = 'UNKNOWN_TOPIC';
  else if (types.some((type) => INVALID.has(type))) code = 'INVALID_ARGUMENT';
  const text =
    code === 'UNAVAILABLE' ? `${what} failed: Kafka at ${brokers} is unavailable${reason}` : `${what}${reason}`;
  return new BusError(code, text, { cause: error });
};

/**
 * Routes kafkajs's own log lines to the bus logger. Its errors are mostly error responses it retries or
 * recovers from (a rebalance, a topic that has no leader yet) and its warnings are routine, so both are
 * info: what a caller or an operator must act on, the bus reports itself as warnings (a failed publish, a
 * consumer that failed, a handler that threw).
 */
export const kafkaLogCreator =
  (logger: KafkaBusLogger, levels: typeof LogLevel) =>
  () =>
  ({ namespace, level, log }: LogEntry) => {
    const { message, timestamp: _timestamp, logger: _name, ...details } = log;
    const fields = { kafka: namespace, ...details };
    if (level <= levels.WARN) logger.info(fields, `kafka: ${message}`);
    else logger.debug?.(fields, `kafka: ${message}`);
  };
