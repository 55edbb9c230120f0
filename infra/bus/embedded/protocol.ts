import type { BusMessage, ConsumeOptions, TopicSpec } from '../../../domain/ports.ts';
import type { BusErrorCode } from './errors.ts';

// Newline-delimited JSON over a Unix domain socket: JSON.stringify never emits a raw newline, and one
// JSON.parse per line is all the decoding there is.

/** How a consumer finished with a delivery: handled, failed (redeliver after a backoff), or handed back. */
export type Settlement = 'ack' | 'retry' | 'release';

export type ClientFrame =
  | { readonly t: 'hello'; readonly clientId: string }
  | { readonly t: 'ensure'; readonly id: number; readonly topics: readonly TopicSpec[] }
  /** Id 0: unconfirmed, the broker sends no `res`. */
  | { readonly t: 'pub'; readonly id: number; readonly topic: string; readonly messages: readonly BusMessage[] }
  | { readonly t: 'sub'; readonly id: number; readonly c: number; readonly options: ConsumeOptions }
  | { readonly t: 'unsub'; readonly id: number; readonly c: number }
  | { readonly t: 'pause'; readonly c: number }
  | { readonly t: Settlement; readonly c: number; readonly o: number; readonly n: number };

export type ClientRequest = Extract<ClientFrame, { id: number }>;

export type BrokerFrame =
  | {
      readonly t: 'res';
      readonly id: number;
      readonly error?: { readonly code: BusErrorCode; readonly message: string };
    }
  | {
      readonly t: 'msg';
      /** Consumer id, offset, delivery attempt, key, value, headers, timestamp. */
      readonly c: number;
      readonly o: number;
      readonly n: number;
      readonly k: string;
      readonly v: string;
      readonly h: Readonly<Record<string, string>>;
      readonly ts: string;
    };

export interface FrameWriter {
  send(frame: ClientFrame | BrokerFrame): void;
  /** Writes what is queued now instead of at the end of the turn. */
  flush(): void;
}

/**
 * Queues frames and writes everything queued in one turn of the event loop with one write call: the requests
 * of many HTTP connections (each read in a callback of its own) reach a runner in one write, and wake it once.
 */
export const createFrameWriter = (write: (data: string) => void): FrameWriter => {
  let queued: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (queued.length === 0) return;
    const data = queued.join('');
    queued = [];
    write(data);
  };
  return {
    send(frame) {
      queued.push(`${JSON.stringify(frame)}\n`);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
};

/** Splits a stream of text chunks into lines without re-scanning or re-joining what came before. */
export const createLineSplitter = (onLine: (line: string) => void): ((chunk: string) => void) => {
  let partial: string[] = [];
  return (chunk) => {
    let start = 0;
    let end = chunk.indexOf('\n');
    while (end !== -1) {
      if (partial.length > 0) {
        partial.push(chunk.slice(start, end));
        const line = partial.join('');
        partial = [];
        onLine(line);
      } else {
        onLine(chunk.slice(start, end));
      }
      start = end + 1;
      end = chunk.indexOf('\n', start);
    }
    if (start < chunk.length) partial.push(chunk.slice(start));
  };
};
