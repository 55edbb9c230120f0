import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { runtimeSpec } from '../../domain/runtimes.ts';
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
  type LogLine,
  type Outcome,
  type RuntimeDriver,
} from '../runtime.ts';
import { type CgroupOptions, type Cgroups, setUpCgroups } from './cgroups.ts';
import { createLogCollector, type LogCollector } from './logs.ts';
import { findNamespaces, findPython, type Namespaces, type PythonInterpreter } from './probe.ts';
import {
  type ExitStatus,
  FALLBACK_NICE,
  type Sandbox,
  type SandboxConfig,
  startSandbox,
  TASK_ROOT,
} from './sandbox.ts';

export interface ContainerDriverOptions {
  /** Where containers' code directories live (a per-driver directory is made inside). Default: the OS temp dir. */
  readonly workDir?: string;
  /** Python 3.11 interpreter (path or command). Default: `STRATA_PYTHON`, else `python3.11` on PATH. */
  readonly python?: string;
  /** util-linux `unshare`. Default: found on PATH. */
  readonly unshare?: string;
  /** Pre-started generic containers kept ready to take code. Default 2; 0 starts every container on demand. */
  readonly poolSize?: number;
  /** Probe the host and fill the pool as soon as the driver is made, not at the first container. Default true. */
  readonly prestart?: boolean;
  /** Size of each container's private /tmp (and /dev/shm), MB. Default 64. */
  readonly tmpSizeMb?: number;
  /** Most processes and threads in one container (the bootstrap's two and its log thread included). Default 128. */
  readonly maxProcesses?: number;
  /** How long a container may take to start (namespaces, interpreter, bootstrap), ms. Default 10,000. */
  readonly startTimeoutMs?: number;
  /** Wall-clock limit for importing a function's module, ms. Default: the function's timeout. */
  readonly initTimeoutMs?: number;
  /** Limits through cgroups where the runner may create them (default), or `false` for rlimits only. */
  readonly cgroups?: boolean | CgroupOptions;
  /** Who the function runs as when the runner is root. Default nobody (65534:65534). */
  readonly sandboxUser?: { readonly uid: number; readonly gid: number };
  readonly archiveLimits?: ArchiveLimits;
  /** Environment the host-side probes read (`STRATA_PYTHON`, `PATH`); never passed to containers. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Which isolation is in force on this runner, or why containers cannot start. */
export interface IsolationReport {
  readonly available: boolean;
  /** Why containers cannot start here (exactly what is missing). */
  readonly problem: string | null;
  readonly python: PythonInterpreter | null;
  readonly namespaces: Namespaces | null;
  readonly memoryLimit: 'cgroup v1' | 'cgroup v2' | 'RLIMIT_AS';
  readonly processLimit: 'cgroup v1' | 'cgroup v2' | 'RLIMIT_NPROC';
  /** CPU bandwidth per container (Lambda's share for its memory, at least one CPU), or only a lower priority. */
  readonly cpuLimit: 'cgroup v1' | 'cgroup v2' | 'nice';
  /** Why a cgroup limit fell back to an rlimit. */
  readonly fallbacks: readonly string[];
  readonly runsAs: string;
}

export interface ContainerDriver extends RuntimeDriver {
  isolation(): Promise<IsolationReport>;
  /** Generic containers started and waiting for code. */
  prestarted(): number;
  /** Resolves when the pool is full (or cannot be filled). */
  poolFilled(): Promise<void>;
}

const MB = 1024 * 1024;
const DRIVER_DIRECTORY = /^strata-(\d+)-[0-9a-f]+$/;
/** The processes the bootstrap itself holds (PID 1, the server, its log thread) beyond the function's. */
const BOOTSTRAP_TASKS = 3;
const RETRY_START_MS = [1_000, 5_000, 30_000];
const REFILL_DELAY_MS = 100;
/** Packages up to this size are written synchronously. */
const SYNC_WRITE_FILES = 32;
const SYNC_WRITE_BYTES = 1024 * 1024;
/** Lambda's proportion: one vCPU per 1,769 MB. A container gets at least one CPU, at most all of them. */
const cpusFor = (memorySize: number): number => Math.min(availableParallelism(), Math.max(1, memorySize / 1769));

export const describeIsolation = (report: IsolationReport): string => {
  if (!report.available) return `unavailable: ${report.problem}`;
  const namespaces = report.namespaces?.userNamespace ? 'user+mount+pid+net+ipc+uts' : 'mount+pid+net+ipc+uts';
  const fallbacks = report.fallbacks.length > 0 ? ` (cgroups not used: ${report.fallbacks.join('; ')})` : '';
  return (
    `Python ${report.python?.version} at ${report.python?.executable}; namespaces ${namespaces} via ${report.namespaces?.unshare}; ` +
    `runs as ${report.runsAs}, no capabilities, no_new_privs; memory limit ${report.memoryLimit}; ` +
    `process limit ${report.processLimit}; CPU ${report.cpuLimit === 'nice' ? `nice ${FALLBACK_NICE}` : `limit ${report.cpuLimit}`}; read-only code at ${TASK_ROOT}; private /tmp (tmpfs); loopback-only network${fallbacks}`
  );
};

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The per-driver directory, after removing those of runners that died without cleaning up. */
const makeWorkDir = (relativeBase: string): string => {
  const base = resolve(relativeBase);
  mkdirSync(base, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(base)) {
    const match = DRIVER_DIRECTORY.exec(entry);
    if (match && !pidAlive(Number(match[1]))) rmSync(join(base, entry), { recursive: true, force: true });
  }
  const directory = join(base, `strata-${process.pid}-${randomBytes(4).toString('hex')}`);
  mkdirSync(directory, { mode: 0o700 });
  return directory;
};

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const describeExit = (status: ExitStatus): string => {
  if (status.signal !== null) return `killed by ${status.signal}`;
  if (status.code !== null && status.code > 128) return `killed by signal ${status.code - 128}`;
  return `exit code ${status.code ?? '?'}`;
};

/** An error frame's `error`, believed only as far as it is well-formed. */
const readError = (value: unknown, fallback: string): InvocationError => {
  if (typeof value !== 'object' || value === null) return { type: 'Error', message: fallback };
  const { type, message, stack } = value as Record<string, unknown>;
  const error = {
    type: typeof type === 'string' && type !== '' ? type.slice(0, 200) : 'Error',
    message: typeof message === 'string' ? message.slice(0, 64 * 1024) : fallback,
  };
  return typeof stack === 'string' ? { ...error, stack: stack.slice(0, 64 * 1024) } : error;
};

type Ending = Record<string, unknown> | ExitStatus;
/** A settled load or invocation ended either with a frame from the bootstrap or with the container's exit. */
const isExit = (ending: Ending): ending is ExitStatus => !('type' in ending);

interface Environment {
  readonly report: IsolationReport;
  readonly config: SandboxConfig | null;
}

export const createContainerDriver = (options: ContainerDriverOptions = {}): ContainerDriver => {
  const poolSize = Math.max(0, options.poolSize ?? 2);
  const maxProcesses = Math.max(BOOTSTRAP_TASKS + 1, options.maxProcesses ?? 128);
  const env = options.env ?? process.env;
  const idle: Sandbox[] = [];
  const containers = new Set<Container>();
  const prepared = new WeakMap<Uint8Array, Promise<Map<string, Uint8Array>>>();
  const poolWaiters: (() => void)[] = [];
  /** Containers wanted while the pool is empty but filling: each takes the next one to come up. */
  const claimants: ((sandbox: Sandbox | null) => void)[] = [];
  /** Containers starting, for the pool (`filling`) or for a container needed now. */
  let starting = 0;
  let filling = 0;
  let startFailures = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let environment: Promise<Environment> | null = null;
  let workDir: string | null = null;
  let cgroups: Cgroups | null = null;
  let closed = false;

  const probe = async (): Promise<Environment> => {
    const [python, namespaces] = await Promise.all([
      findPython({ ...options, env }),
      findNamespaces({ ...options, env }),
    ]);
    const root = process.getuid?.() === 0;
    if (options.cgroups !== false && !closed) {
      cgroups = setUpCgroups(typeof options.cgroups === 'object' ? options.cgroups : {});
    }
    const user =
      namespaces.ok && !namespaces.value.userNamespace && root
        ? (options.sandboxUser ?? { uid: 65534, gid: 65534 })
        : null;
    const problem = [python, namespaces].flatMap((found) => (found.ok ? [] : [found.problem])).join('; ');
    const report: IsolationReport = {
      available: python.ok && namespaces.ok,
      problem: problem === '' ? null : problem,
      python: python.ok ? python.value : null,
      namespaces: namespaces.ok ? namespaces.value : null,
      memoryLimit: cgroups?.memory ?? 'RLIMIT_AS',
      processLimit: cgroups?.pids ?? 'RLIMIT_NPROC',
      cpuLimit: cgroups?.cpu ?? 'nice',
      fallbacks: options.cgroups === false ? ['disabled by configuration'] : (cgroups?.problems ?? []),
      runsAs: user === null ? 'root of a user namespace mapped to the runner user' : `uid ${user.uid}, gid ${user.gid}`,
    };
    if (!python.ok || !namespaces.ok || closed) return { report, config: null };
    try {
      workDir = makeWorkDir(options.workDir ?? tmpdir());
    } catch (error) {
      const problem = `cannot create the containers' work directory: ${errorMessage(error)}`;
      return { report: { ...report, available: false, problem }, config: null };
    }
    return {
      report,
      config: {
        python: python.value,
        namespaces: namespaces.value,
        cgroups,
        workDir,
        tmpBytes: (options.tmpSizeMb ?? 64) * MB,
        maxProcesses,
        user,
        logBytesPerInvocation: LOG_BYTES_PER_INVOCATION,
        startTimeoutMs: options.startTimeoutMs ?? 10_000,
      },
    };
  };
  const prepare = (): Promise<Environment> => {
    // Never rejects: whatever goes wrong makes the runtime unavailable, with the reason.
    environment ??= probe().catch((error: unknown) => ({
      report: {
        available: false,
        problem: `the container runtime could not be set up: ${errorMessage(error)}`,
        python: null,
        namespaces: null,
        memoryLimit: 'RLIMIT_AS' as const,
        processLimit: 'RLIMIT_NPROC' as const,
        cpuLimit: 'nice' as const,
        fallbacks: [],
        runsAs: 'nobody',
      },
      config: null,
    }));
    return environment;
  };

  /** Every container process alive or still cleaning up, so `close` leaves nothing behind. */
  const cleanups = new Set<Promise<void>>();
  const start = async (config: SandboxConfig, forPool: boolean): Promise<Sandbox> => {
    starting += 1;
    try {
      const sandbox = await startSandbox(config, `c-${randomUUID()}`, forPool);
      cleanups.add(sandbox.cleanedUp);
      void sandbox.cleanedUp.then(() => cleanups.delete(sandbox.cleanedUp));
      if (closed) sandbox.kill('driver closed');
      return sandbox;
    } finally {
      starting -= 1;
    }
  };

  const notifyPool = () => {
    if (idle.length >= poolSize || closed || retryTimer !== null) {
      for (const wake of poolWaiters.splice(0)) wake();
    }
  };

  /** Tops the pool up in the background; repeated start failures back off instead of spinning. */
  const refill = (config: SandboxConfig): void => {
    while (!closed && retryTimer === null && idle.length + filling < poolSize) {
      filling += 1;
      start(config, true).then(
        (sandbox) => {
          filling -= 1;
          startFailures = 0;
          if (closed) return;
          const claimant = claimants.shift();
          if (claimant !== undefined) {
            claimant(sandbox);
            return refill(config);
          }
          idle.push(sandbox);
          void sandbox.exited.then(() => {
            const index = idle.indexOf(sandbox);
            if (index >= 0) {
              idle.splice(index, 1);
              refill(config);
            }
          });
          notifyPool();
        },
        () => {
          filling -= 1;
          claimants.shift()?.(null);
          const delay = RETRY_START_MS[Math.min(startFailures, RETRY_START_MS.length - 1)] ?? 30_000;
          startFailures += 1;
          retryTimer ??= setTimeout(() => {
            retryTimer = null;
            refill(config);
          }, delay).unref();
          notifyPool();
        },
      );
    }
  };

  if (options.prestart ?? true) {
    void prepare().then(({ config }) => {
      if (config !== null) refill(config);
    });
  }

  const codeFor = (bytes: Uint8Array): Promise<Map<string, Uint8Array>> => {
    let files = prepared.get(bytes);
    if (files === undefined) {
      files = extractZip(bytes, options.archiveLimits);
      prepared.set(bytes, files);
    }
    return files;
  };

  const writeCode = async (taskDir: string, files: Map<string, Uint8Array>): Promise<void> => {
    const directories = new Set<string>();
    let bytes = 0;
    for (const [path, content] of files) {
      const directory = dirname(path);
      if (directory !== '.') directories.add(directory);
      bytes += content.byteLength;
    }
    // Executable, so a package may bring programs; read-only inside the container whatever the mode says.
    if (files.size <= SYNC_WRITE_FILES && bytes <= SYNC_WRITE_BYTES) {
      // A small package is quicker written at once than through the thread pool, file by file.
      for (const directory of directories) mkdirSync(join(taskDir, directory), { recursive: true, mode: 0o755 });
      for (const [path, content] of files) writeFileSync(join(taskDir, path), content, { mode: 0o755 });
      return;
    }
    for (const directory of directories) await mkdir(join(taskDir, directory), { recursive: true, mode: 0o755 });
    await Promise.all([...files].map(([path, content]) => writeFile(join(taskDir, path), content, { mode: 0o755 })));
  };

  const createContainer = async (spec: ContainerSpec): Promise<Container> => {
    if (closed) throw new ContainerStartError('platformError', 'DriverClosed', 'the container driver is closed');
    const started = performance.now();
    const { report, config } = await prepare();
    if (config === null) {
      throw new ContainerStartError(
        'platformError',
        'RuntimeUnavailable',
        `${spec.runtime} cannot start on this runner: ${report.problem ?? 'the container driver is closed'}`,
      );
    }
    const runtime = runtimeSpec(spec.runtime);
    if (runtime === undefined || !runtime.handlerPattern.test(spec.handler)) {
      throw new ContainerStartError(
        'functionError',
        'HandlerNotFound',
        `"${spec.handler}" is not a ${spec.runtime} handler (${runtime?.handlerFormat ?? 'unknown runtime'})`,
      );
    }
    let files: Map<string, Uint8Array>;
    try {
      files = await codeFor(spec.code);
    } catch (error) {
      throw new ContainerStartError('functionError', 'InvalidPackage', errorMessage(error));
    }

    let sandbox = idle.shift();
    while (sandbox?.dead) sandbox = idle.shift();
    if (sandbox === undefined && filling > claimants.length) {
      // A pool container is on its way: taking it is sooner than starting another beside it.
      sandbox = (await new Promise<Sandbox | null>((resolve) => claimants.push(resolve))) ?? undefined;
      if (closed) {
        sandbox?.kill('driver closed');
        throw new ContainerStartError('platformError', 'DriverClosed', 'the container driver is closed');
      }
    }
    if (sandbox === undefined) {
      try {
        sandbox = await start(config, false);
      } catch (error) {
        throw new ContainerStartError(
          'platformError',
          'RuntimeUnavailable',
          `${spec.runtime} cannot start on this runner: ${errorMessage(error)}`,
        );
      }
    }
    const box = sandbox;
    try {
      await writeCode(box.taskDir, files);
      box.cgroup?.setMemoryLimit(spec.memorySize * MB);
      box.cgroup?.setCpuLimit(cpusFor(spec.memorySize));
    } catch (error) {
      box.kill('code not loaded');
      refill(config);
      throw new ContainerStartError(
        'platformError',
        'PlatformError',
        `cannot copy the code into the container: ${errorMessage(error)}`,
      );
    }
    // The pool is topped up once this container has answered its first invocation (which follows a cold start
    // at once), or shortly after: spawning blocks this thread for ms, and a new interpreter competes for the CPU.
    let refilled = false;
    const refillOnce = (): void => {
      if (refilled) return;
      refilled = true;
      clearTimeout(timer);
      refill(config);
    };
    const timer = setTimeout(refillOnce, REFILL_DELAY_MS);
    try {
      return await specialise(box, spec, report, started, refillOnce);
    } catch (error) {
      refillOnce();
      throw error;
    }
  };

  /** Loads the function's code into a started container and wraps it as a `Container`. */
  const specialise = async (
    box: Sandbox,
    spec: ContainerSpec,
    report: IsolationReport,
    started: number,
    afterFirstInvocation: () => void,
  ): Promise<Container> => {
    const oomKillsAtStart = box.cgroup?.oomKills() ?? 0;
    const outOfMemory = (exit: ExitStatus): boolean => exit.oomKills > oomKillsAtStart;
    let current: { readonly logs: LogCollector; readonly settle: (ending: Ending) => void } | null = null;
    /** Output from between invocations (stray threads or processes), shown with the next one. */
    let between = createLogCollector();
    let initLogs: Record<string, unknown> | null = null;
    let lastRssKb = 0;

    box.onOutput = (level, text) => (current?.logs ?? between).addOutput(level, text);
    box.onMessage = (message) => {
      if (message.type === 'logs') return (current?.logs ?? between).addFrame(message.logs, message.logsTruncated);
      current?.settle(message);
    };
    void box.exited.then((status) => current?.settle(status));

    // ---- loading the code ---------------------------------------------------------------------------------
    const initTimeoutMs = options.initTimeoutMs ?? spec.timeout * 1000;
    const loaded = await new Promise<Ending | 'timeout'>((resolve) => {
      const timer = setTimeout(() => {
        box.kill('load timeout');
        resolve('timeout');
      }, initTimeoutMs);
      current = {
        logs: between,
        settle: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
      };
      box.send({
        op: 'load',
        handler: spec.handler,
        environment: {
          PATH: '/usr/local/bin:/usr/bin:/bin',
          LANG: 'C.UTF-8',
          HOME: '/tmp',
          TMPDIR: '/tmp',
          LAMBDA_TASK_ROOT: TASK_ROOT,
          ...spec.environment,
        },
        functionName: spec.functionName,
        functionVersion: String(spec.version),
        memoryLimitInMB: spec.memorySize,
        containerId: box.id,
        addressSpaceBytes: report.memoryLimit === 'RLIMIT_AS' ? spec.memorySize * MB : null,
        maxProcesses: report.processLimit === 'RLIMIT_NPROC' ? maxProcesses : null,
      });
    });
    current = null;
    if (loaded === 'timeout') {
      throw new ContainerStartError(
        'functionError',
        'Timeout',
        `loading the code took longer than ${initTimeoutMs} ms`,
      );
    }
    if (isExit(loaded) || loaded.type !== 'loaded') {
      box.kill('code not loaded');
      const oom = isExit(loaded)
        ? outOfMemory(loaded)
        : (loaded.error as { type?: unknown } | undefined)?.type === 'MemoryError';
      if (oom) {
        throw new ContainerStartError(
          'functionError',
          'OutOfMemory',
          `loading the code exceeded the memory limit of ${spec.memorySize} MB`,
        );
      }
      if (isExit(loaded)) {
        throw new ContainerStartError(
          'functionError',
          'Runtime.ExitError',
          `the runtime exited while loading the code (${describeExit(loaded)})`,
        );
      }
      if (loaded.type === 'loadFailed') {
        const error = readError(loaded.error, 'the code could not be loaded');
        throw new ContainerStartError('functionError', error.type, error.message);
      }
      throw new ContainerStartError(
        'functionError',
        'Runtime.ProtocolError',
        `the runtime broke its protocol: ${String(loaded.message ?? loaded.type)}`,
      );
    }
    initLogs = loaded;
    const coldStartMs = performance.now() - started;

    // ---- invocations ----------------------------------------------------------------------------------------
    let busy = false;
    let disposed = false;

    const dispose = (): void => {
      if (disposed) return;
      disposed = true;
      containers.delete(container);
      box.kill('disposed');
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

    const run = async (input: InvocationInput): Promise<ContainerResult> => {
      if (disposed || box.dead) {
        const error = { type: 'ContainerDisposed', message: 'the container was disposed' };
        return result('platformError', 'platform', { error }, createLogCollector().finish(), 0, 0, true);
      }
      if (busy) {
        const error = { type: 'ContainerBusy', message: 'the container is already running an invocation' };
        return result('platformError', 'platform', { error }, createLogCollector().finish(), 0, 0, false);
      }
      const logs = between;
      between = createLogCollector();
      if (initLogs !== null) {
        logs.addFrame(initLogs.logs, initLogs.logsTruncated);
        initLogs = null;
      }
      const { deadline } = input;
      if (deadline <= Date.now()) {
        const error = { type: 'Timeout', message: 'the invocation reached its deadline before it started' };
        return result('timeout', 'function', { error }, logs.finish(), 0, 0, false);
      }

      busy = true;
      const startedAt = performance.now();
      const ended = await new Promise<Ending | 'timeout'>((resolve) => {
        const timer = setTimeout(() => {
          box.kill('timeout');
          resolve('timeout');
        }, deadline - Date.now());
        current = {
          logs,
          settle: (message) => {
            clearTimeout(timer);
            resolve(message);
          },
        };
        box.send({ op: 'invoke', requestId: input.requestId, payload: input.payload, deadline });
      });
      const durationMs = performance.now() - startedAt;
      current = null;
      busy = false;

      if (ended === 'timeout') {
        const error = { type: 'Timeout', message: `Task timed out after ${(durationMs / 1000).toFixed(2)} seconds` };
        return result('timeout', 'function', { error }, logs.finish(), durationMs, Math.ceil(lastRssKb / 1024), true);
      }
      if (isExit(ended)) return died(ended, logs, durationMs);
      if (typeof ended.maxRssKb === 'number') lastRssKb = ended.maxRssKb;
      const memoryUsedMb = Math.min(spec.memorySize, Math.ceil(lastRssKb / 1024));
      if (ended.type === 'done' && typeof ended.result === 'string') {
        logs.addFrame(ended.logs, ended.logsTruncated);
        return result('success', 'none', { result: ended.result }, logs.finish(), durationMs, memoryUsedMb, false);
      }
      if (ended.type === 'failed') {
        logs.addFrame(ended.logs, ended.logsTruncated);
        if (ended.outOfMemory === true) {
          const error = {
            type: 'OutOfMemory',
            message: `the function exceeded its memory limit of ${spec.memorySize} MB`,
          };
          return result('outOfMemory', 'function', { error }, logs.finish(), durationMs, spec.memorySize, true);
        }
        const error = readError(ended.error, 'the handler failed');
        const fault: Fault = ended.fault === 'caller' ? 'caller' : 'function';
        return result('functionError', fault, { error }, logs.finish(), durationMs, memoryUsedMb, false);
      }
      // Only the function's code can have written something else on the channel.
      box.kill('protocol error');
      const error = {
        type: 'Runtime.ProtocolError',
        message: `the runtime broke its protocol with the runner: ${String(ended.message ?? ended.type)}`,
      };
      return result('functionError', 'function', { error }, logs.finish(), durationMs, memoryUsedMb, true);
    };

    /** The container died under the invocation: the kernel's OOM killer, or the function ended it. */
    const died = (ended: ExitStatus, logs: LogCollector, durationMs: number): ContainerResult => {
      const memoryUsedMb = Math.min(spec.memorySize, Math.ceil(lastRssKb / 1024));
      if (outOfMemory(ended)) {
        const error = {
          type: 'OutOfMemory',
          message: `the function exceeded its memory limit of ${spec.memorySize} MB`,
        };
        return result('outOfMemory', 'function', { error }, logs.finish(), durationMs, spec.memorySize, true);
      }
      const error = {
        type: 'Runtime.ExitError',
        message: `the runtime exited during the invocation (${describeExit(ended)})`,
      };
      return result('functionError', 'function', { error }, logs.finish(), durationMs, memoryUsedMb, true);
    };

    const container: Container = {
      id: box.id,
      coldStartMs,
      async invoke(input) {
        try {
          return await run(input);
        } catch (error) {
          busy = false;
          current = null;
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
        } finally {
          afterFirstInvocation();
        }
      },
      memoryUsage: () =>
        box.cgroup !== null && report.memoryLimit !== 'RLIMIT_AS' ? box.cgroup.memoryBytes() : lastRssKb * 1024,
      dispose,
    };
    containers.add(container);
    return container;
  };

  return {
    name: 'container',
    createContainer,
    isolation: async () => (await prepare()).report,
    prestarted: () => idle.length,
    poolFilled: async () => {
      const { config } = await prepare();
      if (config === null || closed || idle.length >= poolSize) return;
      refill(config);
      await new Promise<void>((resolve) => {
        poolWaiters.push(resolve);
        notifyPool();
      });
    },
    async close() {
      closed = true;
      if (retryTimer !== null) clearTimeout(retryTimer);
      retryTimer = null;
      for (const wake of poolWaiters.splice(0)) wake();
      for (const claimant of claimants.splice(0)) claimant(null);
      for (const container of containers) container.dispose();
      for (const sandbox of idle.splice(0)) sandbox.kill('driver closed');
      // Containers still starting kill themselves when they come up (see refill and createContainer).
      for (let waited = 0; starting > 0 && waited < 15_000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await environment?.catch(() => null);
      await Promise.all(cleanups);
      cgroups?.close();
      if (workDir !== null) rmSync(workDir, { recursive: true, force: true });
    },
  };
};
