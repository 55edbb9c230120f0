import { Buffer } from 'node:buffer';
import { LOG_BYTES_PER_INVOCATION, type LogLevel, type LogLine } from '../runtime.ts';

const LEVELS: ReadonlySet<string> = new Set<LogLevel>(['DEBUG', 'INFO', 'WARN', 'ERROR']);
const ISO_TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export interface LogCollector {
  /** Lines the bootstrap sent (`[timestamp, level, message]`); malformed ones are dropped. */
  addFrame(lines: unknown, truncated: unknown): void;
  /** Raw output of the container's processes on stdout/stderr, which need not end at a line break. */
  addOutput(level: LogLevel, text: string): void;
  /** Unfinished raw lines become lines; then the truncation mark, when anything was dropped. */
  finish(): { logs: LogLine[]; logsTruncated: boolean };
  readonly bytes: number;
}

/**
 * One invocation's logs, capped at LOG_BYTES_PER_INVOCATION bytes of messages whatever the container
 * claims: the bootstrap caps them too, but it runs next to the function's code.
 */
export const createLogCollector = (limit = LOG_BYTES_PER_INVOCATION): LogCollector => {
  const lines: LogLine[] = [];
  const partial: Record<'INFO' | 'ERROR', string> = { INFO: '', ERROR: '' };
  let bytes = 0;
  let truncated = false;

  const add = (timestamp: string, level: LogLevel, message: string): void => {
    if (truncated && bytes >= limit) return;
    const size = Buffer.byteLength(message);
    if (bytes + size > limit) {
      truncated = true;
      const kept = Buffer.from(message.slice(0, limit - bytes))
        .subarray(0, limit - bytes)
        .toString()
        .replace(/\uFFFD$/, '');
      bytes = limit;
      if (kept !== '') lines.push({ timestamp, level, message: kept });
      return;
    }
    bytes += size;
    lines.push({ timestamp, level, message });
  };

  return {
    addFrame(frameLines, frameTruncated) {
      if (frameTruncated === true) truncated = true;
      if (!Array.isArray(frameLines)) return;
      for (const line of frameLines) {
        if (!Array.isArray(line)) continue;
        const [timestamp, level, message] = line as unknown[];
        if (typeof timestamp !== 'string' || typeof level !== 'string' || typeof message !== 'string') continue;
        if (!LEVELS.has(level)) continue;
        add(ISO_TIMESTAMP.test(timestamp) ? timestamp : new Date().toISOString(), level as LogLevel, message);
        if (truncated && bytes >= limit) return;
      }
    },
    addOutput(level, text) {
      if (truncated && bytes >= limit) return;
      const key = level === 'ERROR' ? 'ERROR' : 'INFO';
      const parts = (partial[key] + text).split('\n');
      partial[key] = parts.pop() ?? '';
      const timestamp = new Date().toISOString();
      for (const part of parts) add(timestamp, level, part);
      // A writer that never ends its line still counts against the cap.
      if (partial[key].length > limit) {
        add(timestamp, level, partial[key]);
        partial[key] = '';
      }
    },
    finish() {
      const timestamp = new Date().toISOString();
      for (const key of ['INFO', 'ERROR'] as const) {
        if (partial[key] !== '') add(timestamp, key, partial[key]);
        partial[key] = '';
      }
      if (truncated) {
        lines.push({
          timestamp,
          level: 'WARN',
          message: `[logs truncated: the invocation logged more than ${limit} bytes]`,
        });
      }
      return { logs: lines, logsTruncated: truncated };
    },
    get bytes() {
      return bytes;
    },
  };
};
