/**
 * The runner's runtime interface: a driver creates containers (a warm sandbox holding one function
 * version's code), and a container runs one invocation at a time. Isolates and spawned runtime
 * containers both sit behind it.
 */

/** How an invocation ended, and whose fault it was. */
export type Outcome = 'success' | 'functionError' | 'timeout' | 'outOfMemory' | 'throttled' | 'platformError';
export type Fault = 'none' | 'function' | 'caller' | 'platform';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface LogLine {
  /** ISO-8601 with milliseconds. */
  readonly timestamp: string;
  readonly level: LogLevel;
  readonly message: string;
}

/** What a container needs to be created: one function version, its limits and its code. */
export interface ContainerSpec {
  readonly functionName: string;
  readonly version: number;
  readonly runtime: string;
  readonly handler: string;
  /** Memory limit in MB. */
  readonly memorySize: number;
  /** Wall-clock limit per invocation, in seconds. */
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  /** The version's ZIP. */
  readonly code: Uint8Array;
}

export interface InvocationInput {
  readonly requestId: string;
  /** The event, as JSON text. */
  readonly payload: string;
  /** Epoch ms by which the invocation must end (the timeout, or less when the request is already old). */
  readonly deadline: number;
}

export interface InvocationError {
  /** e.g. `Error`, `TypeError`, `Timeout`, `OutOfMemory`, `HandlerNotFound`, `SyntaxError`. */
  readonly type: string;
  readonly message: string;
  readonly stack?: string;
}

export interface ContainerResult {
  readonly outcome: Outcome;
  readonly fault: Fault;
  /** The handler's return value as JSON text (`null` when it returned undefined); success only. */
  readonly result?: string;
  readonly error?: InvocationError;
  readonly logs: readonly LogLine[];
  /** True when logs beyond the per-invocation cap were dropped. */
  readonly logsTruncated: boolean;
  /** Wall-clock time of the handler call, ms (fractional). */
  readonly durationMs: number;
  /** Memory the sandbox used at the end of the call, MB. */
  readonly memoryUsedMb: number;
  /** The container must be thrown away (limit breached, or state no longer trustworthy). */
  readonly disposeContainer: boolean;
}

export interface Container {
  readonly id: string;
  /** Time it took to create the sandbox and load the code, ms. */
  readonly coldStartMs: number;
  invoke(input: InvocationInput): Promise<ContainerResult>;
  /**
   * True while its calls run on the runner's own thread (an isolate whose code answers in microseconds):
   * another container of the same code would then add no parallelism, only a cold start and memory.
   */
  readonly runsOnRunnerThread?: () => boolean;
  /** Heap in use right now, bytes (for idle-memory figures and heartbeats). */
  memoryUsage(): number;
  dispose(): void;
}

export interface RuntimeDriver {
  readonly name: string;
  /**
   * Creates a sandbox and loads the code. Rejects with a `ContainerStartError` when the code cannot
   * be loaded (syntax error, handler missing: a function error) or the sandbox cannot start (platform).
   */
  createContainer(spec: ContainerSpec): Promise<Container>;
  close(): Promise<void>;
}

export class ContainerStartError extends Error {
  readonly outcome: 'functionError' | 'platformError';
  readonly type: string;
  constructor(outcome: 'functionError' | 'platformError', type: string, message: string) {
    super(message);
    this.name = 'ContainerStartError';
    this.outcome = outcome;
    this.type = type;
  }
}

/** Per-invocation cap on captured logs (bytes of messages); beyond it lines are dropped and marked. */
export const LOG_BYTES_PER_INVOCATION = 256 * 1024;
