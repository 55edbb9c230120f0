import { Buffer } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import ivm from 'isolated-vm';
import { type ArchiveLimits, extractZip } from '../codeArchive.ts';
import {
  type Container,
  type ContainerResult,
  type ContainerSpec,
  ContainerStartError,
  type Fault,
  type InvocationError,
  type InvocationInput,
  LOG_BYTES_PER_INVOCATION,
  type LogLevel,
  type LogLine,
  type Outcome,
  type RuntimeDriver,
} from '../runtime.ts';
import { commonJsSource, type GuestConfig, type GuestError, type GuestStatus, guestRuntime } from './guest.ts';
import { createResolver, type ModuleFormat, type Resolver } from './resolve.ts';

export interface IsolateDriverOptions {
  /** Limits for inflating code packages. */
  readonly archiveLimits?: ArchiveLimits;
  /** Wall-clock limit for loading a function's code (running its modules' top level), ms. Default: the function's timeout. */
  readonly initTimeoutMs?: number;
  /**
   * How long past a deadline a call that has not stopped by itself may run before its isolate is disposed, ms
   * (checked every 50 ms). Default 100.
   */
  readonly watchdogGraceMs?: number;
}

/** Where the package's files appear to guest code, in file names and stack traces. */
const ROOT = '/var/task';
const MB = 1024 * 1024;
const SALVAGE_TIMEOUT_MS = 20;
const loadableFile = /\.(?:js|mjs|cjs|json)$/;
const logLevels: ReadonlySet<string> = new Set<LogLevel>(['DEBUG', 'INFO', 'WARN', 'ERROR']);

const SNAPSHOT_GLOBAL = '__strataBootstrap';
/** How old a heap figure may be before an invocation's result takes a new one (reading it costs ~50 µs). */
const HEAP_SAMPLE_MS = 100;
const WATCHDOG_SWEEP_MS = 50;
/**
 * A call made on the runner's own thread (applySync) costs a few µs; one handed to isolated-vm's thread pool
 * (apply) costs ~120 µs of thread wake-ups here, more than a hello-world handler runs. So the first call of an
 * invocation runs on this thread, cut at this slice so the runner's event loop (other invocations, heartbeats)
 * never waits longer. A call cut short is run again, from the start, on a new container on the pool's threads:
 * guest code reaches nothing outside its isolate, so the abandoned run leaves no trace but the time it took.
 */
const HERE_SLICE_MS = 20;
/**
 * Code whose calls take more CPU than this on average (a moving average, so one slow first call or garbage
 * collection does not count) has its calls sent to the pool's threads, as has code cut at the slice after half
 * of it in CPU; it comes back once its average falls under a quarter of this.
 */
const HERE_CALL_MAX_MS = 2;
const CPU_AVERAGE_WEIGHT = 0.2;

// The runtime lives in a V8 snapshot, warmed so its functions are compiled already: a new isolate gets it
// without parsing. The snapshot's global only holds the bootstrap, which each container removes before any
// guest code runs.
const snapshotSource = `Object.defineProperty(globalThis, '${SNAPSHOT_GLOBAL}', {
  configurable: true,
  value: function strataBootstrap(config, sources) {
    'use strict'; // a function's source text loses its module's strictness
    return (${guestRuntime})(config, sources, ${createResolver}, ${commonJsSource});
  },
});`;
const snapshotWarmup = `{
  const runtime = globalThis.${SNAPSHOT_GLOBAL}(
    { functionName: 'warmup', functionVersion: '1', memoryLimitInMB: 128, environment: { A: 'b' }, root: '${ROOT}', logBytesPerInvocation: 1024 },
    new Map([
      ['index.js', 'const lib = require("./lib"); exports.handler = async (e, c) => { console.log("%s %d", "x", 1, e, [1], new Error("w")); await new Promise((r) => setTimeout(r, 0)); return { a: e.name, lib, t: c.getRemainingTimeInMillis() }; };'],
      ['sync.js', 'exports.handler = (e) => ({ hello: e.name });'],
      ['lib.js', 'module.exports = require("./data.json");'],
      ['data.json', '{"n":1}'],
      ['package.json', '{}'],
    ]),
  );
  runtime.detectFormat('sync.js');
  runtime.loadCommonJs('index.js', 'handler');
  for (let i = 0; i < 3; i++) {
    runtime.invoke('warmup', '{"name":"x"}', Date.now() + 1000);
    runtime.poll();
    runtime.runTimers();
    runtime.salvage();
  }
}`;

interface PreparedCode {
  /** Whether its calls go to isolated-vm's threads (see HERE_CALL_MAX_MS). */
  threaded: boolean;
  /** Moving average of its calls' CPU time, ms. */
  cpuMs: number;
  readonly sources: Map<string, string>;
  /** The sources, serialised once and copied into each new isolate. */
  readonly sourcesCopy: ivm.ExternalCopy<Map<string, string>>;
  readonly resolver: Resolver;
}

type GuestMethod = 'loadCommonJs' | 'detectFormat' | 'adoptModule' | 'invoke' | 'poll' | 'runTimers' | 'salvage';
type GuestFunction = (...args: unknown[]) => unknown;
type Breach = 'timeout' | 'outOfMemory' | 'disposed' | 'platform';

/** Counts one call's CPU time towards where the code's calls run. */
const noteCpu = (code: PreparedCode, ms: number): void => {
  code.cpuMs += (ms - code.cpuMs) * CPU_AVERAGE_WEIGHT;
  if (code.cpuMs > HERE_CALL_MAX_MS) code.threaded = true;
  else if (code.cpuMs < HERE_CALL_MAX_MS / 4) code.threaded = false;
};

/** A call on the runner's thread outran its slice (not its deadline): the invocation must run again. */
class SliceExceeded extends Error {}

/** A call into the isolate did not come back with a status: why. */
class BreachError extends Error {
  readonly breach: Breach;
  constructor(breach: Breach, message: string) {
    super(message);
    this.breach = breach;
  }
}

class StartFailure extends Error {
  readonly type: string;
  constructor(type: string, message: string) {
    super(message);
    this.type = type;
  }
}

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

/** The status crossed a boundary the guest can tamper with: only well-formed fields are believed. */
const readStatus = (value: unknown): GuestStatus => {
  if (!isRecord(value)) throw new BreachError('platform', 'the runtime returned no status');
  const { state, result, error, fault, nextTimerAt, logs, logsTruncated } = value;
  if (state !== 'pending' && state !== 'done' && state !== 'failed') {
    throw new BreachError('platform', 'the runtime returned a malformed status');
  }
  const lines: GuestStatus['logs'] = [];
  if (Array.isArray(logs)) {
    for (const line of logs) {
      if (!Array.isArray(line)) continue;
      const [timestamp, level, message] = line;
      if (typeof timestamp === 'string' && typeof level === 'string' && logLevels.has(level)) {
        if (typeof message === 'string') lines.push([timestamp, level as LogLevel, message]);
      }
    }
  }
  let guestError: GuestError | null = null;
  if (isRecord(error)) {
    guestError = { type: String(error.type ?? 'Error'), message: String(error.message ?? '') };
    if (typeof error.stack === 'string') guestError.stack = error.stack;
    if (typeof error.file === 'string') guestError.file = error.file;
  }
  return {
    state,
    result: typeof result === 'string' ? result : '',
    error: state === 'failed' ? (guestError ?? { type: 'Error', message: 'the handler failed' }) : null,
    fault: fault === 'caller' ? 'caller' : 'function',
    nextTimerAt: typeof nextTimerAt === 'number' && Number.isFinite(nextTimerAt) ? nextTimerAt : -1,
    logs: lines,
    logsTruncated: logsTruncated === true,
  };
};

/** Log lines of one invocation, capped at LOG_BYTES_PER_INVOCATION bytes whatever the guest claims. */
const createLogCollector = () => {
  const lines: LogLine[] = [];
  let bytes = 0;
  let truncated = false;
  return {
    add(status: Pick<GuestStatus, 'logs' | 'logsTruncated'>): void {
      truncated ||= status.logsTruncated;
      for (const [timestamp, level, message] of status.logs) {
        if (truncated && bytes >= LOG_BYTES_PER_INVOCATION) return;
        const size = Buffer.byteLength(message);
        if (bytes + size > LOG_BYTES_PER_INVOCATION) {
          truncated = true;
          const kept = Buffer.from(message)
            .subarray(0, LOG_BYTES_PER_INVOCATION - bytes)
            .toString();
          bytes = LOG_BYTES_PER_INVOCATION;
          if (kept !== '') lines.push({ timestamp, level, message: kept });
          return;
        }
        bytes += size;
        lines.push({ timestamp, level, message });
      }
    },
    finish(): { logs: LogLine[]; logsTruncated: boolean } {
      if (truncated) {
        lines.push({
          timestamp: new Date().toISOString(),
          level: 'WARN',
          message: `[logs truncated: the invocation logged more than ${LOG_BYTES_PER_INVOCATION} bytes]`,
        });
      }
      return { logs: lines, logsTruncated: truncated };
    },
  };
};

/** `index.handler` → module `index`, export path `handler`; `src/app.main` → `src/app`, `main` (as Lambda splits). */
const parseHandler = (handler: string): { module: string; exportPath: string } | null => {
  const slash = handler.lastIndexOf('/');
  const dot = handler.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === handler.length - 1) return null;
  const segments = handler.slice(0, dot).split('/');
  if (segments.some((segment) => segment === '..')) return null;
  const module = segments.filter((segment) => segment !== '' && segment !== '.').join('/');
  const exportPath = handler.slice(dot + 1);
  if (module === '' || exportPath.split('.').some((key) => key === '')) return null;
  return { module, exportPath };
};

const prepareCode = async (bytes: Uint8Array, limits: ArchiveLimits | undefined): Promise<PreparedCode> => {
  const files = await extractZip(bytes, limits);
  const decoder = new TextDecoder();
  const sources = new Map<string, string>();
  for (const [path, content] of files) if (loadableFile.test(path)) sources.set(path, decoder.decode(content));
  return {
    threaded: false,
    cpuMs: 0,
    sources,
    sourcesCopy: new ivm.ExternalCopy(sources),
    resolver: createResolver(sources),
  };
};

export const createIsolateDriver = (options: IsolateDriverOptions = {}): RuntimeDriver => {
  const watchdogGraceMs = options.watchdogGraceMs ?? 100;
  const prepared = new WeakMap<Uint8Array, Promise<PreparedCode>>();
  const containers = new Set<Container>();
  /** Busy isolates and the time after which they are disposed: the backstop for isolated-vm's own timeouts. */
  const deadlines = new Map<ivm.Isolate, { at: number; kill: () => void }>();
  let sweeper: NodeJS.Timeout | null = null;
  let snapshot: ivm.ExternalCopy<ArrayBuffer> | null = null;
  let closed = false;

  const watch = (isolate: ivm.Isolate, deadline: number, kill: () => void): void => {
    deadlines.set(isolate, { at: deadline + watchdogGraceMs, kill });
    sweeper ??= setInterval(() => {
      const now = Date.now();
      for (const [watched, { at, kill: killWatched }] of deadlines) {
        if (at <= now) {
          deadlines.delete(watched);
          killWatched();
        }
      }
      if (deadlines.size === 0 && sweeper !== null) {
        clearInterval(sweeper);
        sweeper = null;
      }
    }, WATCHDOG_SWEEP_MS).unref();
  };

  const codeFor = (bytes: Uint8Array): Promise<PreparedCode> => {
    let code = prepared.get(bytes);
    if (!code) {
      code = prepareCode(bytes, options.archiveLimits);
      prepared.set(bytes, code);
    }
    return code;
  };

  /** `started`: when the cold start began (a start whose loading outran the slice is begun again). */
  const createContainer = async (spec: ContainerSpec, started = performance.now()): Promise<Container> => {
    if (closed) throw new ContainerStartError('platformError', 'DriverClosed', 'the isolate driver is closed');
    let code: PreparedCode;
    try {
      code = await codeFor(spec.code);
    } catch (error) {
      throw new ContainerStartError('functionError', 'InvalidPackage', errorMessage(error));
    }
    const handler = parseHandler(spec.handler);
    if (handler === null) {
      throw new ContainerStartError(
        'functionError',
        'HandlerNotFound',
        `"${spec.handler}" is not a handler (file.export)`,
      );
    }
    const entry = ['.js', '.mjs', '.cjs'].map((ext) => handler.module + ext).find((path) => code.sources.has(path));
    if (entry === undefined) {
      throw new ContainerStartError(
        'functionError',
        'HandlerNotFound',
        `the package has no ${handler.module}.js, ${handler.module}.mjs or ${handler.module}.cjs for handler "${spec.handler}"`,
      );
    }

    let isolate: ivm.Isolate;
    try {
      snapshot ??= ivm.Isolate.createSnapshot([{ code: snapshotSource, filename: 'strata:runtime' }], snapshotWarmup);
      isolate = new ivm.Isolate({ memoryLimit: Math.max(8, spec.memorySize), snapshot });
    } catch (error) {
      throw new ContainerStartError(
        'platformError',
        'PlatformError',
        `cannot create an isolate: ${errorMessage(error)}`,
      );
    }
    let disposedByHost: 'watchdog' | 'platform' | null = null;
    const kill = (reason: 'watchdog' | 'platform'): void => {
      disposedByHost ??= reason;
      deadlines.delete(isolate);
      if (!isolate.isDisposed) isolate.dispose();
    };
    const breachOf = (error: unknown): BreachError => {
      if (error instanceof BreachError) return error;
      const message = errorMessage(error);
      if (disposedByHost === 'watchdog') return new BreachError('timeout', message);
      if (disposedByHost === 'platform') return new BreachError('disposed', message);
      // isolated-vm disposes an isolate by itself only when it breaches its memory limit.
      if (isolate.isDisposed) return new BreachError('outOfMemory', message);
      if (message === 'Script execution timed out.') return new BreachError('timeout', message);
      return new BreachError('platform', message);
    };

    let context: ivm.Context;
    let methods: Record<GuestMethod, ivm.Reference<GuestFunction>>;
    try {
      context = isolate.createContextSync();
      const config: GuestConfig = {
        functionName: spec.functionName,
        functionVersion: String(spec.version),
        memoryLimitInMB: spec.memorySize,
        environment: { ...spec.environment },
        root: ROOT,
        logBytesPerInvocation: LOG_BYTES_PER_INVOCATION,
      };
      const factory: ivm.Reference<GuestFunction> = context.evalClosureSync(
        `const bootstrap = globalThis.${SNAPSHOT_GLOBAL}; delete globalThis.${SNAPSHOT_GLOBAL}; return bootstrap;`,
        [],
        { result: { reference: true } },
      );
      const runtime = factory.applySync(
        undefined,
        [new ivm.ExternalCopy(config).copyInto({ release: true }), code.sourcesCopy.copyInto()],
        { result: { reference: true } },
      ) as ivm.Reference<Record<GuestMethod, GuestFunction>>;
      const method = (name: GuestMethod) => runtime.getSync(name, { reference: true });
      methods = {
        loadCommonJs: method('loadCommonJs'),
        detectFormat: method('detectFormat'),
        adoptModule: method('adoptModule'),
        invoke: method('invoke'),
        poll: method('poll'),
        runTimers: method('runTimers'),
        salvage: method('salvage'),
      };
      factory.release();
      runtime.release();
    } catch (error) {
      kill('platform');
      throw new ContainerStartError(
        'platformError',
        'PlatformError',
        `cannot start the runtime: ${errorMessage(error)}`,
      );
    }

    let wake: (() => void) | null = null;
    const call = async (name: GuestMethod, args: ivm.Transferable[], deadline: number): Promise<GuestStatus> => {
      const timeout = Math.ceil(deadline - Date.now());
      if (timeout <= 0) throw new BreachError('timeout', 'the deadline passed');
      const cpuBefore = isolate.cpuTime;
      let raw: unknown;
      try {
        raw = await methods[name].apply(undefined, args, { timeout, result: { copy: true } });
      } catch (error) {
        throw breachOf(error);
      }
      noteCpu(code, Number(isolate.cpuTime - cpuBefore) / 1e6);
      return readStatus(raw);
    };
    /** The same call on this thread, cut at the slice: see HERE_SLICE_MS. */
    const callHere = (name: GuestMethod, args: ivm.Transferable[], deadline: number): GuestStatus => {
      const remaining = Math.ceil(deadline - Date.now());
      if (remaining <= 0) throw new BreachError('timeout', 'the deadline passed');
      const slice = Math.min(remaining, HERE_SLICE_MS);
      // The isolate's CPU time, not the wall clock: a busy machine preempting a quick call says nothing of the code.
      const cpuBefore = isolate.cpuTime;
      const cpuMs = () => Number(isolate.cpuTime - cpuBefore) / 1e6;
      let raw: unknown;
      try {
        raw = methods[name].applySync(undefined, args, { timeout: slice, result: { copy: true } });
      } catch (error) {
        const breach = breachOf(error);
        if (breach.breach === 'timeout' && slice < remaining) {
          const used = cpuMs();
          if (used >= slice / 2) {
            code.threaded = true;
            code.cpuMs = Math.max(code.cpuMs, used);
          }
          throw new SliceExceeded();
        }
        throw breach;
      }
      noteCpu(code, cpuMs());
      return readStatus(raw);
    };
    /** A call on this thread while the code has run quick there, else on isolated-vm's threads. */
    const callQuick = async (name: GuestMethod, args: ivm.Transferable[], deadline: number): Promise<GuestStatus> =>
      code.threaded ? call(name, args, deadline) : callHere(name, args, deadline);
    const sleepUntil = (time: number): Promise<void> =>
      new Promise((resolve) => {
        const timer = setTimeout(
          () => {
            wake = null;
            resolve();
          },
          Math.max(0, time - Date.now()),
        );
        wake = () => {
          clearTimeout(timer);
          wake = null;
          resolve();
        };
      });
    /** Runs the task a call started until it settles: microtasks, then timers as they fall due. */
    const drive = async (
      first: Promise<GuestStatus>,
      deadline: number,
      logs: { add(status: GuestStatus): void },
    ): Promise<GuestStatus> => {
      let status = await first;
      logs.add(status);
      while (status.state === 'pending') {
        status = await call('poll', [], deadline);
        logs.add(status);
        if (status.state !== 'pending') break;
        await sleepUntil(status.nextTimerAt < 0 ? deadline : Math.min(status.nextTimerAt, deadline));
        if (disposedByHost !== null) throw breachOf(new Error('the isolate was disposed'));
        if (Date.now() >= deadline) throw new BreachError('timeout', 'the deadline passed');
        status = await call('runTimers', [], deadline);
        logs.add(status);
      }
      return status;
    };
    /** What a call the host gave up on had logged, if the isolate can still say. */
    const salvage = async (logs: { add(status: GuestStatus): void }): Promise<void> => {
      if (isolate.isDisposed) return;
      try {
        logs.add(
          readStatus(
            await methods.salvage.apply(undefined, [], { timeout: SALVAGE_TIMEOUT_MS, result: { copy: true } }),
          ),
        );
      } catch {}
    };
    const heapBytes = (): number => {
      if (isolate.isDisposed) return 0;
      try {
        const heap = isolate.getHeapStatisticsSync();
        return heap.used_heap_size + heap.externally_allocated_size;
      } catch {
        return 0;
      }
    };
    let heapSample = { at: Number.NEGATIVE_INFINITY, bytes: 0 };
    const memoryUsedMb = (): number => {
      const now = performance.now();
      if (now - heapSample.at > HEAP_SAMPLE_MS) heapSample = { at: now, bytes: heapBytes() };
      return Math.ceil(heapSample.bytes / MB);
    };

    // ---- loading the code ---------------------------------------------------------------------------------
    const initTimeoutMs = options.initTimeoutMs ?? spec.timeout * 1000;
    const initDeadline = Date.now() + initTimeoutMs;
    const initLogs: GuestStatus[] = [];
    const keepInitLogs = { add: (status: GuestStatus) => initLogs.push(status) };
    watch(isolate, initDeadline, () => kill('watchdog'));

    const syntaxErrorMessage = (error: GuestError): string => {
      // The guest compiles with eval, whose syntax errors carry no position; compiling here adds it.
      const text = error.file === undefined ? undefined : code.sources.get(error.file);
      if (error.file === undefined || text === undefined || isolate.isDisposed) return error.message;
      try {
        const filename = `${ROOT}/${error.file}`;
        isolate.compileScriptSync(commonJsSource(text, filename), { filename }).release();
      } catch (compileError) {
        if (compileError instanceof SyntaxError) return compileError.message;
      }
      return error.message;
    };
    const loaded = (status: GuestStatus): void => {
      if (status.state === 'failed' && status.error) {
        const message = status.error.type === 'SyntaxError' ? syntaxErrorMessage(status.error) : status.error.message;
        throw new StartFailure(status.error.type, message);
      }
    };

    const loadModules = async (): Promise<void> => {
      const modules = new Map<string, ivm.Module>();
      const knownFormats = new Map<string, ModuleFormat>([[entry, 'module']]);
      const links = new Map<ivm.Module, Map<string, ivm.Module>>();
      const compile = async (path: string): Promise<ivm.Module> => {
        const known = modules.get(path);
        if (known) return known;
        const text = code.sources.get(path) ?? '';
        let format = knownFormats.get(path) ?? code.resolver.format(path);
        if (format === 'commonjs' && path.endsWith('.js')) {
          const detected = await callQuick('detectFormat', [path], initDeadline);
          keepInitLogs.add(detected);
          loaded(detected);
          if (detected.result === 'module') format = 'module';
        }
        const source =
          format === 'json'
            ? `export default JSON.parse(${JSON.stringify(text)});`
            : format === 'commonjs'
              ? `export default globalThis[Symbol.for('strata.require')](${JSON.stringify(path)});`
              : text;
        let module: ivm.Module;
        try {
          module = await isolate.compileModule(source, { filename: `file://${ROOT}/${path}` });
        } catch (error) {
          if (error instanceof SyntaxError) throw new StartFailure('SyntaxError', error.message);
          throw breachOf(error);
        }
        modules.set(path, module);
        const resolved = new Map<string, ivm.Module>();
        links.set(module, resolved);
        for (const specifier of module.dependencySpecifiers) {
          const target = code.resolver.resolve(specifier, path, 'import');
          if (target === null) {
            throw new StartFailure(
              'ImportModuleError',
              `Cannot find module '${specifier}' imported from ${ROOT}/${path}`,
            );
          }
          resolved.set(specifier, await compile(target));
        }
        return module;
      };

      const entryModule = await compile(entry);
      // The wrapper's namespace only becomes readable once the entry has finished evaluating (top-level await).
      const wrapper = await isolate.compileModule('import * as entry from "strata:entry"; export default entry;', {
        filename: 'strata:entry-wrapper',
      });
      links.set(wrapper, new Map([['strata:entry', entryModule]]));
      try {
        await wrapper.instantiate(context, (specifier, referrer) => {
          const module = links.get(referrer)?.get(specifier);
          if (!module) throw new Error(`Cannot find module '${specifier}'`);
          return module;
        });
        await wrapper.evaluate({ timeout: Math.max(1, Math.ceil(initDeadline - Date.now())) });
      } catch (error) {
        const breach = breachOf(error);
        if (breach.breach !== 'platform' || isolate.isDisposed) throw breach;
        // Anything else is what the module threw while evaluating, copied out of the isolate.
        const type = error instanceof Error ? error.name : 'Error';
        throw new StartFailure(type, error instanceof Error ? error.message : String(error));
      }
      const status = await drive(
        callQuick('adoptModule', [wrapper.namespace.derefInto(), entry, handler.exportPath], initDeadline),
        initDeadline,
        keepInitLogs,
      );
      loaded(status);
    };

    try {
      const format = code.resolver.format(entry);
      let isModule = format === 'module';
      if (!isModule) {
        const status = await callQuick('loadCommonJs', [entry, handler.exportPath], initDeadline);
        keepInitLogs.add(status);
        loaded(status);
        isModule = status.result === 'module';
      }
      if (isModule) await loadModules();
    } catch (error) {
      kill('platform');
      if (error instanceof SliceExceeded) return createContainer(spec, started);
      if (error instanceof StartFailure) throw new ContainerStartError('functionError', error.type, error.message);
      const breach = breachOf(error);
      if (breach.breach === 'timeout') {
        throw new ContainerStartError(
          'functionError',
          'Timeout',
          `loading the code took longer than ${initTimeoutMs} ms`,
        );
      }
      if (breach.breach === 'outOfMemory') {
        throw new ContainerStartError(
          'functionError',
          'OutOfMemory',
          `loading the code exceeded the memory limit of ${spec.memorySize} MB`,
        );
      }
      throw new ContainerStartError('platformError', 'PlatformError', `cannot load the code: ${breach.message}`);
    } finally {
      deadlines.delete(isolate);
    }
    const coldStartMs = performance.now() - started;

    // ---- invocations ----------------------------------------------------------------------------------------
    let busy = false;
    let disposed = false;
    let pendingInitLogs = initLogs;

    const dispose = (): void => {
      if (disposed) return;
      disposed = true;
      containers.delete(container);
      kill('platform');
      wake?.();
    };

    const result = (
      outcome: Outcome,
      fault: Fault,
      fields: { result?: string; error?: InvocationError },
      logs: { logs: LogLine[]; logsTruncated: boolean },
      durationMs: number,
      memoryUsedMb: number,
      disposeContainer: boolean,
    ): ContainerResult => {
      if (disposeContainer) dispose();
      return { outcome, fault, ...fields, ...logs, durationMs, memoryUsedMb, disposeContainer };
    };

    /** The sandbox that took over once a call here outran its slice: this container stands for it from then on. */
    let successor: Container | null = null;
    /**
     * Runs the invocation from the start on a new sandbox (on isolated-vm's threads, as the code is now
     * `threaded`): this one's state is unknown after a call was cut short. Its logs are dropped with it, and
     * the deadline moves on by the time since `started` (the cut call and the new sandbox's start), which the
     * platform lost, not the function.
     */
    const rerun = async (input: InvocationInput, started: number): Promise<ContainerResult> => {
      kill('platform');
      containers.delete(container);
      try {
        successor = await createContainer(spec);
      } catch (error) {
        disposed = true;
        const failure = { type: 'PlatformError', message: `cannot restart the sandbox: ${errorMessage(error)}` };
        return result('platformError', 'platform', { error: failure }, { logs: [], logsTruncated: false }, 0, 0, true);
      } finally {
        busy = false;
      }
      return successor.invoke({ ...input, deadline: input.deadline + (performance.now() - started) });
    };

    const run = async (input: InvocationInput): Promise<ContainerResult> => {
      const logs = createLogCollector();
      if (disposed) {
        const error = { type: 'ContainerDisposed', message: 'the container was disposed' };
        return result('platformError', 'platform', { error }, logs.finish(), 0, 0, true);
      }
      if (busy) {
        const error = { type: 'ContainerBusy', message: 'the container is already running an invocation' };
        return result('platformError', 'platform', { error }, logs.finish(), 0, 0, false);
      }
      for (const status of pendingInitLogs) logs.add(status);
      pendingInitLogs = [];
      const { deadline } = input;
      if (deadline <= Date.now()) {
        const error = { type: 'Timeout', message: 'the invocation reached its deadline before it started' };
        return result('timeout', 'function', { error }, logs.finish(), 0, 0, false);
      }

      busy = true;
      watch(isolate, deadline, () => kill('watchdog'));
      const started = performance.now();
      let status: GuestStatus | null = null;
      let breach: BreachError | null = null;
      try {
        status = await drive(callQuick('invoke', [input.requestId, input.payload, deadline], deadline), deadline, logs);
      } catch (error) {
        if (error instanceof SliceExceeded) {
          deadlines.delete(isolate);
          return rerun(input, started);
        }
        breach = breachOf(error);
      }
      const durationMs = performance.now() - started;
      deadlines.delete(isolate);
      busy = false;

      if (status?.state === 'done') {
        return result('success', 'none', { result: status.result }, logs.finish(), durationMs, memoryUsedMb(), false);
      }
      if (status?.state === 'failed' && status.error) {
        const { type, message, stack } = status.error;
        const error: InvocationError = stack === undefined ? { type, message } : { type, message, stack };
        return result('functionError', status.fault, { error }, logs.finish(), durationMs, memoryUsedMb(), false);
      }
      const kind = disposedByHost === 'watchdog' ? 'timeout' : (breach?.breach ?? 'platform');
      if (kind === 'timeout') {
        await salvage(logs);
        const usedMb = Math.ceil(heapBytes() / MB);
        const error = { type: 'Timeout', message: `Task timed out after ${(durationMs / 1000).toFixed(2)} seconds` };
        return result('timeout', 'function', { error }, logs.finish(), durationMs, usedMb, true);
      }
      if (kind === 'outOfMemory') {
        const error = {
          type: 'OutOfMemory',
          message: `the function exceeded its memory limit of ${spec.memorySize} MB`,
        };
        return result('outOfMemory', 'function', { error }, logs.finish(), durationMs, spec.memorySize, true);
      }
      const error =
        kind === 'disposed'
          ? { type: 'ContainerDisposed', message: 'the container was disposed during the invocation' }
          : { type: 'PlatformError', message: breach?.message ?? 'the invocation ended without a result' };
      return result('platformError', 'platform', { error }, logs.finish(), durationMs, 0, true);
    };

    const container: Container = {
      id: randomUUID(),
      coldStartMs,
      async invoke(input) {
        if (successor !== null) return successor.invoke(input);
        try {
          return await run(input);
        } catch (error) {
          busy = false;
          const failure = { type: 'PlatformError', message: errorMessage(error) };
          return result(
            'platformError',
            'platform',
            { error: failure },
            { logs: [], logsTruncated: false },
            0,
            0,
            true,
          );
        }
      },
      runsOnRunnerThread: () => !code.threaded,
      memoryUsage: () => (successor === null ? heapBytes() : successor.memoryUsage()),
      dispose: () => {
        successor?.dispose();
        dispose();
      },
    };
    containers.add(container);
    return container;
  };

  return {
    name: 'isolate',
    createContainer: (spec) => createContainer(spec),
    async close() {
      closed = true;
      for (const container of containers) container.dispose();
      if (sweeper !== null) clearInterval(sweeper);
      sweeper = null;
      deadlines.clear();
    },
  };
};
