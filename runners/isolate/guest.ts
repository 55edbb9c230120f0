/**
 * The runtime that runs inside each isolate: the guest's globals (console, process.env, timers), the
 * CommonJS loader, and the calls the host makes to load and invoke the handler. `guestRuntime` and
 * `commonJsSource` are self-contained (type-only imports, no outer variables) because their source text is
 * what runs in the isolate. The host only ever exchanges copies with them: strings and numbers in, a status
 * record out. No host function or reference is ever handed to guest code.
 */
import type { LogLevel } from '../runtime.ts';
import type { createResolver } from './resolve.ts';

export interface GuestConfig {
  readonly functionName: string;
  readonly functionVersion: string;
  readonly memoryLimitInMB: number;
  readonly environment: Record<string, string>;
  /** Directory the package appears under in file names and stack traces. */
  readonly root: string;
  readonly logBytesPerInvocation: number;
}

export type GuestLogLine = [timestamp: string, level: LogLevel, message: string];

export interface GuestError {
  type: string;
  message: string;
  stack?: string;
  /** For a syntax error in a CommonJS file: its package path, so the host can report the position. */
  file?: string;
}

export interface GuestStatus {
  state: 'pending' | 'done' | 'failed';
  /** done: the handler's result as JSON text; for loadCommonJs, the entry's format: 'commonjs' or 'module'. */
  result: string;
  error: GuestError | null;
  fault: 'function' | 'caller';
  /** Epoch ms when the next timer is due; -1 when none is scheduled. */
  nextTimerAt: number;
  /** Lines logged since the previous call. */
  logs: GuestLogLine[];
  logsTruncated: boolean;
}

export interface GuestRuntime {
  /** Runs a CommonJS entry and finds the handler; result 'module' (nothing run) when the file is ESM. */
  loadCommonJs(path: string, handlerPath: string): GuestStatus;
  /** Compiles a `.js` file without running it: result 'commonjs', or 'module' when it is ESM syntax. */
  detectFormat(path: string): GuestStatus;
  /** Finds the handler once an ES module has evaluated (`holder.default` is its namespace). */
  adoptModule(holder: { readonly default: unknown }, path: string, handlerPath: string): GuestStatus;
  invoke(requestId: string, payload: string, deadline: number): GuestStatus;
  /** The current task's state, after the microtasks of the previous call have run. */
  poll(): GuestStatus;
  runTimers(): GuestStatus;
  /** After a call the host gave up on: what that call had logged. */
  salvage(): GuestStatus;
}

/** The function a CommonJS file's text is wrapped in (as Node does), with its name for stack traces. */
export function commonJsSource(text: string, filename: string): string {
  const body = text.startsWith('#!') ? `//${text}` : text;
  return `(function (exports, require, module, __filename, __dirname) {${body}\n})\n//# sourceURL=${filename}`;
}

export function guestRuntime(
  config: GuestConfig,
  /** Package path → text, for the files code can load (.js, .mjs, .cjs, .json). */
  sources: Map<string, string>,
  makeResolver: typeof createResolver,
  wrapCommonJs: typeof commonJsSource,
): GuestRuntime {
  type Fault = GuestStatus['fault'];
  type Handler = (event: unknown, context: unknown) => unknown;
  interface Task {
    settled: boolean;
    outcome: 'done' | 'failed';
    result: string;
    error: GuestError | null;
    fault: Fault;
    /** A load task: settles it once the module has finished evaluating. */
    check: (() => void) | null;
  }
  interface Timer {
    id: number;
    due: number;
    delay: number;
    repeat: number;
    callback: (...args: unknown[]) => unknown;
    args: unknown[];
    handle: object;
  }
  interface CommonJsModule {
    id: string;
    filename: string;
    path: string;
    exports: unknown;
    loaded: boolean;
    require: (specifier: string) => unknown;
  }

  // Captured before any guest code runs, so that a function replacing them only affects itself.
  const { stringify, parse } = JSON;
  const GuestDate = Date;
  const GuestError = Error;
  const GuestSyntaxError = SyntaxError;
  const GuestTypeError = TypeError;
  const dateNow = Date.now;
  const freeze = Object.freeze;
  const defineProperty = Object.defineProperty;
  const getPrototypeOf = Object.getPrototypeOf;
  const objectKeys = Object.keys;
  const describeProperty = Object.getOwnPropertyDescriptor;
  const isArray = Array.isArray;
  const isView = ArrayBuffer.isView;
  const functionSource = Function.prototype.toString;
  const resolvedPromise = Promise.resolve();
  const promiseThen = Promise.prototype.then;
  const apply = Reflect.apply;
  // biome-ignore lint/security/noGlobalEval: compiling the package's CommonJS files is this loader's job.
  const indirectEval = eval;

  const { root } = config;
  const resolver = makeResolver(sources);
  const filenameOf = (path: string): string => `${root}/${path}`;
  const dirnameOf = (path: string): string => {
    const slash = path.lastIndexOf('/');
    return slash === -1 ? root : `${root}/${path.slice(0, slash)}`;
  };

  // ---- logs ---------------------------------------------------------------------------------------------
  let logs: GuestLogLine[] = [];
  let logBytes = 0;
  let logsTruncated = false;

  const utf8Length = (text: string, limit: number): { bytes: number; chars: number } => {
    let bytes = 0;
    let i = 0;
    for (; i < text.length; i++) {
      const code = text.charCodeAt(i);
      let size = code < 0x80 ? 1 : code < 0x800 ? 2 : 3;
      const next = code >= 0xd800 && code <= 0xdbff ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) size = 4;
      if (bytes + size > limit) break;
      bytes += size;
      if (size === 4) i++;
    }
    return { bytes, chars: i };
  };

  const quote = (text: string): string => {
    const shown = text.length > 10_000 ? text.slice(0, 10_000) : text;
    const more = text.length > 10_000 ? `... ${text.length - 10_000} more characters` : '';
    return `'${shown.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'${more}`;
  };
  const keyText = (key: string): string => (/^[A-Za-z_$][\w$]*$/.test(key) ? key : quote(key));
  const constructorName = (value: object): string | null => {
    try {
      const prototype: unknown = getPrototypeOf(value);
      if (prototype === null) return null;
      const name: unknown = (prototype as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof name === 'string' ? name : '';
    } catch {
      return '';
    }
  };
  const functionLabel = (fn: (...args: unknown[]) => unknown): string => {
    let name = '';
    try {
      name = typeof fn.name === 'string' ? fn.name : '';
      if (apply(functionSource, fn, []).startsWith('class')) return `[class ${name || '(anonymous)'}]`;
    } catch {}
    return name ? `[Function: ${name}]` : '[Function (anonymous)]';
  };
  const errorText = (error: Error): string => {
    try {
      if (typeof error.stack === 'string' && error.stack !== '') return error.stack;
      return `${String(error.name)}: ${String(error.message)}`;
    } catch {
      return '[Error]';
    }
  };

  const inspect = (value: unknown, depth: number, seen: object[]): string => {
    if (value === null) return 'null';
    switch (typeof value) {
      case 'undefined':
        return 'undefined';
      case 'string':
        return quote(value);
      case 'number':
        return Object.is(value, -0) ? '-0' : String(value);
      case 'bigint':
        return `${value}n`;
      case 'boolean':
        return value ? 'true' : 'false';
      case 'symbol':
        return value.toString();
      case 'function':
        return functionLabel(value as (...args: unknown[]) => unknown);
    }
    const object = value as object;
    if (seen.includes(object)) return '[Circular]';
    if (object instanceof GuestError) return depth === 0 ? errorText(object) : `[${errorText(object).split('\n')[0]}]`;
    if (object instanceof GuestDate) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
    if (object instanceof RegExp) return String(object);
    if (object instanceof Promise) return 'Promise {}';
    if (object instanceof WeakMap || object instanceof WeakSet) return `${constructorName(object)} { <items unknown> }`;
    if (depth > 2) return isArray(object) ? '[Array]' : '[Object]';
    seen.push(object);
    try {
      const items: string[] = [];
      const more = (count: number): void => {
        if (count > 0) items.push(`... ${count} more item${count === 1 ? '' : 's'}`);
      };
      if (isArray(object) || (isView(object) && !(object instanceof DataView))) {
        const list = object as ArrayLike<unknown>;
        for (let i = 0; i < list.length && i < 100; i++) items.push(inspect(list[i], depth + 1, seen));
        more(list.length - 100);
        const prefix = isArray(object) ? '' : `${constructorName(object)}(${list.length}) `;
        return items.length === 0 ? `${prefix}[]` : `${prefix}[ ${items.join(', ')} ]`;
      }
      if (object instanceof Map || object instanceof Set) {
        let count = 0;
        for (const entry of object instanceof Map ? object.entries() : object.values()) {
          if (count++ >= 100) continue;
          items.push(
            isArray(entry) && object instanceof Map
              ? `${inspect(entry[0], depth + 1, seen)} => ${inspect(entry[1], depth + 1, seen)}`
              : inspect(entry, depth + 1, seen),
          );
        }
        more(count - 100);
        const prefix = `${constructorName(object)}(${object.size}) `;
        return items.length === 0 ? `${prefix}{}` : `${prefix}{ ${items.join(', ')} }`;
      }
      for (const key of objectKeys(object)) {
        const descriptor = describeProperty(object, key);
        let shown: string;
        if (descriptor?.get || descriptor?.set) {
          shown = descriptor.get && descriptor.set ? '[Getter/Setter]' : descriptor.get ? '[Getter]' : '[Setter]';
        } else {
          shown = inspect(descriptor?.value, depth + 1, seen);
        }
        items.push(`${keyText(key)}: ${shown}`);
      }
      const name = constructorName(object);
      const prefix = name === null ? '[Object: null prototype] ' : name === 'Object' || name === '' ? '' : `${name} `;
      return items.length === 0 ? `${prefix}{}` : `${prefix}{ ${items.join(', ')} }`;
    } finally {
      seen.pop();
    }
  };
  const show = (value: unknown): string => (typeof value === 'string' ? value : inspect(value, 0, []));

  const formatLog = (args: unknown[]): string => {
    const first = args[0];
    if (typeof first !== 'string') return args.map(show).join(' ');
    let next = 1;
    const head =
      args.length === 1
        ? first
        : first.replace(/%([sdifjoOc%])/g, (match, spec: string) => {
            if (spec === '%') return '%';
            if (next >= args.length) return match;
            const arg = args[next++];
            switch (spec) {
              case 's':
                return typeof arg === 'string'
                  ? arg
                  : typeof arg === 'object' && arg !== null
                    ? inspect(arg, 1, [])
                    : typeof arg === 'bigint'
                      ? `${arg}n`
                      : String(arg);
              case 'd':
              case 'i':
                if (typeof arg === 'bigint') return `${arg}n`;
                if (typeof arg === 'symbol') return 'NaN';
                return spec === 'd' ? String(Number(arg)) : String(Number.parseInt(String(arg), 10));
              case 'f':
                return typeof arg === 'symbol' ? 'NaN' : String(Number.parseFloat(String(arg)));
              case 'j':
                try {
                  return String(stringify(arg));
                } catch {
                  return '[Circular]';
                }
              case 'c':
                return '';
              default:
                return inspect(arg, 0, []);
            }
          });
    let message = head;
    for (; next < args.length; next++) message += ` ${show(args[next])}`;
    return message;
  };

  const emit = (level: LogLevel, message: string): void => {
    if (logsTruncated) return;
    const remaining = config.logBytesPerInvocation - logBytes;
    const measured = utf8Length(message, remaining);
    if (measured.chars < message.length) {
      logsTruncated = true;
      status.logsTruncated = true;
      message = message.slice(0, measured.chars);
      if (message === '') return;
    }
    logBytes += measured.bytes;
    logs[logs.length] = [new GuestDate().toISOString(), level, message];
  };
  const log =
    (level: LogLevel) =>
    (...args: unknown[]): void => {
      if (logsTruncated) return;
      let message: string;
      try {
        message = formatLog(args);
      } catch (error) {
        message = `[console.${level.toLowerCase()}: the arguments could not be formatted: ${show(error)}]`;
      }
      emit(level, message);
    };

  const timings = new Map<string, number>();
  const counts = new Map<string, number>();
  const guestConsole = {
    log: log('INFO'),
    info: log('INFO'),
    warn: log('WARN'),
    error: log('ERROR'),
    debug: log('DEBUG'),
    trace: (...args: unknown[]): void => {
      const stack = new GuestError().stack?.split('\n').slice(2).join('\n') ?? '';
      log('DEBUG')(`Trace: ${formatLog(args)}\n${stack}`);
    },
    dir: (value: unknown): void => log('INFO')(inspect(value, 0, [])),
    table: (value: unknown): void => log('INFO')(inspect(value, 0, [])),
    assert: (condition: unknown, ...args: unknown[]): void => {
      if (!condition) log('ERROR')(args.length === 0 ? 'Assertion failed' : `Assertion failed: ${formatLog(args)}`);
    },
    count: (label = 'default'): void => {
      const count = (counts.get(label) ?? 0) + 1;
      counts.set(label, count);
      log('INFO')(`${label}: ${count}`);
    },
    countReset: (label = 'default'): void => {
      counts.delete(label);
    },
    time: (label = 'default'): void => {
      timings.set(label, dateNow());
    },
    timeLog: (label = 'default', ...args: unknown[]): void => {
      const started = timings.get(label);
      if (started !== undefined) log('INFO')(`${label}: ${dateNow() - started}ms`, ...args);
    },
    timeEnd: (label = 'default'): void => {
      const started = timings.get(label);
      timings.delete(label);
      if (started !== undefined) log('INFO')(`${label}: ${dateNow() - started}ms`);
    },
    group: (...args: unknown[]): void => {
      if (args.length > 0) log('INFO')(...args);
    },
    groupCollapsed: (...args: unknown[]): void => {
      if (args.length > 0) log('INFO')(...args);
    },
    groupEnd: (): void => {},
  };

  // ---- the current call and task -------------------------------------------------------------------------
  let task: Task | null = null;
  const newStatus = (): GuestStatus => ({
    state: 'pending',
    result: '',
    error: null,
    fault: 'function',
    nextTimerAt: -1,
    logs,
    logsTruncated,
  });
  let status = newStatus();

  const timers = new Map<number, Timer>();
  let lastTimerId = 0;
  const nextTimerAt = (): number => {
    let earliest = -1;
    for (const timer of timers.values()) if (earliest === -1 || timer.due < earliest) earliest = timer.due;
    return earliest;
  };

  /** The host copies the status a call returns after the call's microtasks have run, so updates show. */
  const reflect = (): GuestStatus => {
    status.nextTimerAt = nextTimerAt();
    status.logsTruncated = logsTruncated;
    if (task?.settled) {
      status.state = task.outcome;
      status.result = task.result;
      status.error = task.error;
      status.fault = task.fault;
    }
    return status;
  };
  const beginCall = (): GuestStatus => {
    logs = [];
    status = newStatus();
    return status;
  };

  const describeError = (value: unknown): GuestError => {
    if (value instanceof GuestError) {
      const read = (key: 'name' | 'message' | 'stack'): string | undefined => {
        try {
          const field: unknown = value[key];
          return field === undefined ? undefined : String(field);
        } catch {
          return undefined;
        }
      };
      const error: GuestError = { type: read('name') || 'Error', message: read('message') ?? '' };
      const stack = read('stack');
      // The runtime's own frames (between the handler and the host) mean nothing to the function's author.
      if (stack !== undefined) error.stack = stack.replace(/\n[^\n]*strata:runtime[^\n]*/g, '');
      const file: unknown = (value as { strataFile?: unknown }).strataFile;
      if (typeof file === 'string') error.file = file;
      return error;
    }
    let shown: string;
    try {
      shown = inspect(value, 1, []);
    } catch {
      shown = typeof value;
    }
    return { type: 'Error', message: `the handler threw a value that is not an Error: ${shown}` };
  };

  const settle = (target: Task, outcome: Task['outcome'], result: string, error: GuestError | null, fault: Fault) => {
    if (target.settled) return;
    target.settled = true;
    target.outcome = outcome;
    target.result = result;
    target.error = error;
    target.fault = fault;
    if (target === task) reflect();
  };
  const fail = (target: Task, value: unknown): void => settle(target, 'failed', '', describeError(value), 'function');
  const succeed = (target: Task, value: unknown): void => {
    let json: unknown = 'null';
    let problem: string | null = null;
    if (value !== undefined) {
      try {
        json = stringify(value);
        if (typeof json !== 'string') problem = `the handler returned ${show(value)}, which has no JSON form`;
      } catch (error) {
        const reason = error instanceof GuestError ? String(error.message) : show(error);
        problem = `the handler's result cannot be converted to JSON: ${reason}`;
      }
    }
    if (problem === null && typeof json === 'string') settle(target, 'done', json, null, 'function');
    else settle(target, 'failed', '', { type: 'InvalidResult', message: problem ?? 'no JSON form' }, 'function');
  };
  const newTask = (check: Task['check'] = null): Task => {
    task = { settled: false, outcome: 'failed', result: '', error: null, fault: 'function', check };
    return task;
  };
  /** An exception nothing caught (a timer, a microtask): Node would crash, so the running task fails. */
  const uncaught = (error: unknown): void => {
    if (task && !task.settled) fail(task, error);
  };

  // ---- timers -------------------------------------------------------------------------------------------
  class Timeout {
    readonly #id: number;
    constructor(id: number) {
      this.#id = id;
    }
    ref(): this {
      return this;
    }
    unref(): this {
      return this;
    }
    hasRef(): boolean {
      return true;
    }
    refresh(): this {
      const timer = timers.get(this.#id);
      if (timer) timer.due = dateNow() + timer.delay;
      reflect();
      return this;
    }
    close(): this {
      clearTimer(this);
      return this;
    }
    [Symbol.toPrimitive](): number {
      return this.#id;
    }
  }
  const timerDelay = (delay: unknown): number => {
    const ms = Number(delay);
    return ms >= 1 && ms <= 2_147_483_647 ? Math.trunc(ms) : 1;
  };
  const addTimer = (callback: unknown, delay: number, repeat: number, args: unknown[]): Timeout => {
    if (typeof callback !== 'function') {
      throw new GuestTypeError('The "callback" argument must be of type function');
    }
    const id = ++lastTimerId;
    const handle = new Timeout(id);
    const timer: Timer = {
      id,
      due: dateNow() + delay,
      delay,
      repeat,
      callback: callback as Timer['callback'],
      args,
      handle,
    };
    timers.set(id, timer);
    reflect();
    return handle;
  };
  const clearTimer = (handle: unknown): void => {
    if (handle === null || handle === undefined) return;
    timers.delete(Number(handle));
    reflect();
  };
  const runDueTimers = (): void => {
    const now = dateNow();
    const newest = lastTimerId;
    const due = [...timers.values()]
      .filter((timer) => timer.due <= now && timer.id <= newest)
      .sort((a, b) => a.due - b.due || a.id - b.id);
    for (const timer of due) {
      if (!timers.has(timer.id)) continue;
      if (timer.repeat > 0) timer.due = now + timer.repeat;
      else timers.delete(timer.id);
      try {
        apply(timer.callback, timer.handle, timer.args);
      } catch (error) {
        uncaught(error);
      }
    }
  };
  const queueMicrotask = (callback: unknown): void => {
    if (typeof callback !== 'function') {
      throw new GuestTypeError('The "callback" argument must be of type function');
    }
    apply(promiseThen, resolvedPromise, [
      () => {
        try {
          callback();
        } catch (error) {
          uncaught(error);
        }
      },
    ]);
  };

  // ---- CommonJS -----------------------------------------------------------------------------------------
  const esmSyntax =
    /Cannot use import statement outside a module|Unexpected token 'export'|Cannot use 'import\.meta' outside a module|await is only valid in async functions and the top level bodies of modules/;
  type Wrapper = (
    exports: unknown,
    require: CommonJsModule['require'],
    module: CommonJsModule,
    filename: string,
    dirname: string,
  ) => unknown;
  const cache = new Map<string, CommonJsModule>();
  const compiled = new Map<string, Wrapper>();
  let mainModule: CommonJsModule | undefined;

  const moduleError = (message: string, code: string): Error => {
    const error = new GuestError(message);
    defineProperty(error, 'code', { value: code, enumerable: true, configurable: true, writable: true });
    return error;
  };
  const notFound = (specifier: string, from: string | null): Error =>
    moduleError(
      from === null ? `Cannot find module '${specifier}'` : `Cannot find module '${specifier}' from '${from}'`,
      'MODULE_NOT_FOUND',
    );
  const requireEsm = (path: string): Error =>
    moduleError(
      `require() of ES module ${filenameOf(path)} is not supported: load it with import from an ES module`,
      'ERR_REQUIRE_ESM',
    );

  /** Compiles without running anything; 'module' when the text is ES module syntax. */
  const compileCommonJs = (path: string): Wrapper | 'module' => {
    const known = compiled.get(path);
    if (known) return known;
    const text = sources.get(path);
    if (text === undefined) throw notFound(path, null);
    let wrapper: Wrapper;
    try {
      wrapper = indirectEval(wrapCommonJs(text, filenameOf(path)));
    } catch (error) {
      if (error instanceof GuestSyntaxError) {
        if (esmSyntax.test(String(error.message))) return 'module';
        const located = new GuestSyntaxError(`${error.message} (${filenameOf(path)})`);
        defineProperty(located, 'strataFile', { value: path });
        throw located;
      }
      throw error;
    }
    compiled.set(path, wrapper);
    return wrapper;
  };

  const loadModule = (path: string): CommonJsModule => {
    const cached = cache.get(path);
    if (cached) return cached;
    const format = resolver.format(path);
    const filename = filenameOf(path);
    const module: CommonJsModule = {
      id: filename,
      filename,
      path: dirnameOf(path),
      exports: {},
      loaded: false,
      require: (specifier) => requireFrom(path, specifier),
    };
    if (format === 'module') throw requireEsm(path);
    if (format === 'json') {
      try {
        module.exports = parse(sources.get(path) ?? '');
      } catch (error) {
        throw new GuestSyntaxError(`${filename}: ${error instanceof GuestError ? error.message : String(error)}`);
      }
      module.loaded = true;
      cache.set(path, module);
      return module;
    }
    const wrapper = compileCommonJs(path);
    if (wrapper === 'module') throw requireEsm(path);
    mainModule ??= module;
    const require = freeze(
      Object.assign((specifier: string) => requireFrom(path, specifier), {
        resolve: (specifier: string): string => filenameOf(resolveFrom(path, specifier)),
        main: mainModule,
        cache: {},
      }),
    );
    module.require = require;
    cache.set(path, module);
    try {
      apply(wrapper, module.exports, [module.exports, require, module, filename, module.path]);
    } catch (error) {
      cache.delete(path);
      throw error;
    }
    module.loaded = true;
    return module;
  };
  const resolveFrom = (referrer: string, specifier: unknown): string => {
    if (typeof specifier !== 'string') throw new GuestTypeError('The "id" argument must be of type string');
    const resolved = resolver.resolve(specifier, referrer, 'require');
    if (resolved === null) throw notFound(specifier, filenameOf(referrer));
    return resolved;
  };
  const requireFrom = (referrer: string, specifier: unknown): unknown =>
    loadModule(resolveFrom(referrer, specifier)).exports;

  // ---- the handler --------------------------------------------------------------------------------------
  let handler: Handler | null = null;
  /** Sets the handler, or describes why the export is not one. */
  const adoptHandler = (exports: unknown, path: string, handlerPath: string): GuestError | null => {
    let value: unknown = exports;
    try {
      for (const key of handlerPath.split('.')) {
        const holder = value !== null && (typeof value === 'object' || typeof value === 'function');
        value = holder ? (value as Record<string, unknown>)[key] : undefined;
      }
    } catch (error) {
      return describeError(error);
    }
    if (typeof value !== 'function') {
      const shown = value === undefined ? 'is not exported' : `is ${show(value)}, not a function`;
      return { type: 'HandlerNotFound', message: `${handlerPath} in ${filenameOf(path)} ${shown}` };
    }
    handler = value as Handler;
    return null;
  };

  const defineGlobal = (name: string | symbol, value: unknown): void => {
    defineProperty(globalThis, name, { value, writable: true, configurable: true, enumerable: false });
  };
  defineGlobal('global', globalThis);
  defineGlobal('console', guestConsole);
  defineGlobal(
    'process',
    freeze({
      env: freeze({ ...config.environment }),
      nextTick: (callback: unknown, ...args: unknown[]) => {
        if (typeof callback !== 'function') {
          throw new GuestTypeError('The "callback" argument must be of type function');
        }
        queueMicrotask(() => apply(callback, undefined, args));
      },
    }),
  );
  defineGlobal('setTimeout', (callback: unknown, delay?: unknown, ...args: unknown[]) =>
    addTimer(callback, timerDelay(delay), 0, args),
  );
  defineGlobal('setInterval', (callback: unknown, delay?: unknown, ...args: unknown[]) => {
    const ms = timerDelay(delay);
    return addTimer(callback, ms, ms, args);
  });
  defineGlobal('setImmediate', (callback: unknown, ...args: unknown[]) => addTimer(callback, 0, 0, args));
  defineGlobal('clearTimeout', clearTimer);
  defineGlobal('clearInterval', clearTimer);
  defineGlobal('clearImmediate', clearTimer);
  defineGlobal('queueMicrotask', queueMicrotask);
  // ES modules reach CommonJS files (and only files of the package) through this, from a generated module.
  defineGlobal(Symbol.for('strata.require'), (path: string) => loadModule(path).exports);

  return {
    loadCommonJs(path, handlerPath) {
      const call = beginCall();
      try {
        const wrapper = compileCommonJs(path);
        if (wrapper === 'module') {
          call.state = 'done';
          call.result = 'module';
          return reflect();
        }
        const problem = adoptHandler(loadModule(path).exports, path, handlerPath);
        call.state = problem === null ? 'done' : 'failed';
        call.result = 'commonjs';
        call.error = problem;
      } catch (error) {
        call.state = 'failed';
        call.error = describeError(error);
      }
      return reflect();
    },

    detectFormat(path) {
      const call = beginCall();
      try {
        call.result = compileCommonJs(path) === 'module' ? 'module' : 'commonjs';
        call.state = 'done';
      } catch (error) {
        call.state = 'failed';
        call.error = describeError(error);
      }
      return reflect();
    },

    adoptModule(holder, path, handlerPath) {
      beginCall();
      const load = newTask(() => {
        let namespace: unknown;
        try {
          namespace = holder.default;
        } catch {
          return; // still evaluating (a top-level await)
        }
        const problem = adoptHandler(namespace, path, handlerPath);
        if (problem === null) settle(load, 'done', 'module', null, 'function');
        else settle(load, 'failed', '', problem, 'function');
      });
      load.check?.();
      return reflect();
    },

    invoke(requestId, payload, deadline) {
      beginCall();
      logBytes = 0;
      logsTruncated = false;
      const current = newTask();
      let event: unknown;
      try {
        event = parse(payload);
      } catch (error) {
        const message = `the event is not JSON: ${error instanceof GuestError ? error.message : String(error)}`;
        settle(current, 'failed', '', { type: 'InvalidPayload', message }, 'caller');
        return reflect();
      }
      if (handler === null) {
        settle(current, 'failed', '', { type: 'HandlerNotFound', message: 'no handler is loaded' }, 'function');
        return reflect();
      }
      const context = {
        requestId,
        functionName: config.functionName,
        functionVersion: config.functionVersion,
        memoryLimitInMB: config.memoryLimitInMB,
        getRemainingTimeInMillis: (): number => Math.max(0, deadline - dateNow()),
      };
      try {
        const returned = handler(event, context);
        const then: unknown =
          returned !== null && (typeof returned === 'object' || typeof returned === 'function')
            ? (returned as { then?: unknown }).then
            : undefined;
        if (typeof then === 'function') {
          apply(then, returned, [
            (value: unknown) => succeed(current, value),
            (error: unknown) => fail(current, error),
          ]);
        } else {
          succeed(current, returned);
        }
      } catch (error) {
        fail(current, error);
      }
      return reflect();
    },

    poll() {
      beginCall();
      if (task && !task.settled && task.check) {
        task.check();
        if (!task.settled && timers.size === 0) {
          const message =
            'the module did not finish evaluating: a top-level await rejected, or waits for something that never happens';
          settle(task, 'failed', '', { type: 'ModuleEvaluationError', message }, 'function');
        }
      }
      return reflect();
    },

    runTimers() {
      beginCall();
      runDueTimers();
      if (task && !task.settled && task.check) task.check();
      return reflect();
    },

    salvage() {
      status = newStatus();
      return reflect();
    },
  };
}
