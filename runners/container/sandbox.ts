import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '../runtime.ts';
import type { ContainerCgroup, Cgroups } from './cgroups.ts';
import type { Namespaces, PythonInterpreter } from './probe.ts';
import { createFrameReader, encodeFrame, ProtocolError } from './protocol.ts';

export const BOOTSTRAP = fileURLToPath(new URL('../python/bootstrap.py', import.meta.url));

/** Where the code appears inside a container. */
export const TASK_ROOT = '/var/task';

/** The system directories every container sees read-only (those that exist; top-level symlinks stay links). */
const SYSTEM_DIRECTORIES = ['/usr', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];

/** The environment the container's processes start with; the function's own is set at load. */
const START_ENVIRONMENT = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
const STARTUP_OUTPUT_BYTES = 4096;
/** Without a cpu cgroup, containers run at this niceness so a spinning function cannot starve the runner. */
export const FALLBACK_NICE = 10;

export interface SandboxConfig {
  readonly python: PythonInterpreter;
  readonly namespaces: Namespaces;
  readonly cgroups: Cgroups | null;
  /** Each container gets `<workDir>/<id>/task` (its code, read-only inside) and `<workDir>/<id>/root`. */
  readonly workDir: string;
  readonly tmpBytes: number;
  readonly maxProcesses: number;
  /** The user the function runs as when the runner is root; null inside a user namespace (root there). */
  readonly user: { readonly uid: number; readonly gid: number } | null;
  readonly logBytesPerInvocation: number;
  readonly startTimeoutMs: number;
}

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Set when the runner ended it: why. */
  readonly reason: string | null;
  /** Processes of the container the kernel killed for breaching its memory limit (read before its cgroup goes). */
  readonly oomKills: number;
}

/** A started container: the bootstrap up in its namespaces, no code loaded yet. */
export interface Sandbox {
  readonly id: string;
  readonly taskDir: string;
  readonly cgroup: ContainerCgroup | null;
  /** PID 1 of the container, as the runner's PID namespace numbers it. */
  readonly hostPid: number;
  readonly exited: Promise<ExitStatus>;
  /** Resolves once the container's cgroup and directory are gone, after it exited. */
  readonly cleanedUp: Promise<void>;
  readonly dead: boolean;
  /** Receives frames after the handshake. */
  onMessage: (message: Record<string, unknown>) => void;
  /** Receives what the container's processes write to their stdout and stderr. */
  onOutput: (level: LogLevel, text: string) => void;
  send(message: unknown): void;
  /** Kills every process of the container (PID 1 takes its namespace down with it). */
  kill(reason: string): void;
}

export class SandboxStartError extends Error {}

export const readOnlyPaths = (python: PythonInterpreter): string[] => {
  const paths = [...SYSTEM_DIRECTORIES];
  for (const prefix of python.prefixes) {
    const covered = paths.some((path) => prefix === path || prefix.startsWith(`${path}/`));
    if (!covered) paths.push(prefix);
  }
  return paths;
};

const describeExit = (status: ExitStatus): string =>
  status.signal !== null ? `killed by ${status.signal}` : `exit code ${status.code ?? '?'}`;

/**
 * Starts a container. `preload`: a pooled container imports the modules most functions use while it waits;
 * one started for a function now leaves that to the function.
 */
export const startSandbox = async (config: SandboxConfig, id: string, preload: boolean): Promise<Sandbox> => {
  const directory = join(config.workDir, id);
  const taskDir = join(directory, 'task');
  const rootDir = join(directory, 'root');
  await mkdir(taskDir, { recursive: true, mode: 0o755 });
  await mkdir(rootDir, { mode: 0o755 });

  let cgroup: ContainerCgroup | null = null;
  try {
    cgroup =
      config.cgroups === null || (config.cgroups.memory === null && config.cgroups.pids === null)
        ? null
        : config.cgroups.create(id, config.maxProcesses);
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw new SandboxStartError(`cannot create the container's cgroup: ${(error as Error).message}`);
  }

  const args = [
    ...config.namespaces.flags,
    '--',
    config.python.executable,
    '-I', // no PYTHON* variables, no user site, no script directory on sys.path
    '-S', // no site-packages: its .pth files cost tens of ms, and functions bring their own packages
    '-B',
    BOOTSTRAP,
  ];
  let child: ChildProcess;
  try {
    child = spawn(config.namespaces.unshare, args, {
      env: START_ENVIRONMENT,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
  } catch (error) {
    await cgroup?.remove();
    await rm(directory, { recursive: true, force: true });
    throw new SandboxStartError(`cannot run ${config.namespaces.unshare}: ${(error as Error).message}`);
  }
  const channel = child.stdio[3] as Socket;
  const stdout = child.stdout as Readable;
  const stderr = child.stderr as Readable;

  let status: ExitStatus | null = null;
  let killReason: string | null = null;
  let hostPid = 0;
  let startupOutput = '';
  let phase: 'hello' | 'ready' | 'running' = 'hello';

  const exited = new Promise<ExitStatus>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null, reason: string | null) => {
      if (status !== null) return;
      status = { code, signal, reason: killReason ?? reason, oomKills: cgroup?.oomKills() ?? 0 };
      channel.destroy();
      resolve(status);
    };
    child.once('exit', (code, signal) => finish(code, signal, null));
    child.once('error', (error) => finish(null, null, `cannot run ${config.namespaces.unshare}: ${error.message}`));
  });
  // Clean up once the container is gone (after exit, the kernel has reaped every process of its namespace).
  const cleanedUp = exited.then(async () => {
    await cgroup?.remove();
    await rm(directory, { recursive: true, force: true }).catch(() => {});
  });

  const kill = (reason: string): void => {
    if (status !== null) return;
    killReason ??= reason;
    if (hostPid > 0) {
      try {
        process.kill(hostPid, 'SIGKILL');
      } catch {}
    }
    child.kill('SIGKILL');
  };

  const sandbox: Sandbox = {
    id,
    taskDir,
    cgroup,
    get hostPid() {
      return hostPid;
    },
    exited,
    cleanedUp,
    get dead() {
      return status !== null;
    },
    onMessage: () => {},
    onOutput: () => {},
    send(message) {
      if (status === null && !channel.destroyed) channel.write(encodeFrame(message));
    },
    kill,
  };

  const handshake = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      kill('start timeout');
      reject(new SandboxStartError(`the container did not start within ${config.startTimeoutMs} ms`));
    }, config.startTimeoutMs);
    const fail = (message: string) => {
      clearTimeout(timer);
      kill('start failed');
      reject(new SandboxStartError(message));
    };
    void exited.then((exit) => {
      if (phase === 'running') return;
      const output = startupOutput.trim();
      fail(
        exit.reason !== null && exit.reason !== 'start failed' && exit.reason !== 'start timeout'
          ? exit.reason
          : `the container exited before it was ready (${describeExit(exit)})${output === '' ? '' : `: ${output}`}`,
      );
    });

    const read = createFrameReader((message) => {
      if (phase === 'running') return sandbox.onMessage(message);
      if (phase === 'hello' && message.type === 'hello' && typeof message.hostPid === 'number') {
        hostPid = message.hostPid;
        phase = 'ready';
        // Before anything is forked for the function: the bootstrap waits for this before it forks.
        cgroup?.attach(hostPid).then(
          () => sandbox.send({ op: 'attached' }),
          (error: unknown) => fail(`cannot move the container into its cgroup: ${(error as Error).message}`),
        );
        return;
      }
      if (phase === 'ready' && message.type === 'ready') {
        clearTimeout(timer);
        phase = 'running';
        return resolve();
      }
      if (message.type === 'setupFailed') {
        return fail(`the container's sandbox could not be set up: ${String(message.message)}`);
      }
      fail(`the container sent ${JSON.stringify(message.type)} while starting`);
    });
    // Sent at once: the bootstrap builds its sandbox while the runner moves it into its cgroups.
    sandbox.send({
      op: 'setup',
      rootDir,
      taskDir,
      readOnly: readOnlyPaths(config.python),
      tmpBytes: config.tmpBytes,
      uid: config.user?.uid ?? null,
      gid: config.user?.gid ?? null,
      logBytesPerInvocation: config.logBytesPerInvocation,
      nice: config.cgroups?.cpu ? 0 : FALLBACK_NICE,
      awaitCgroups: cgroup !== null,
      preload,
    });
    channel.on('data', (chunk: Buffer) => {
      try {
        read(chunk);
      } catch (error) {
        const message =
          error instanceof ProtocolError ? error.message : `the runner failed: ${(error as Error).message}`;
        if (phase !== 'running') return fail(message);
        kill(message);
        sandbox.onMessage({ type: 'protocolError', message });
      }
    });
    channel.on('error', () => {});
  });

  const output = (level: LogLevel) => (text: string) => {
    if (phase !== 'running') {
      if (startupOutput.length < STARTUP_OUTPUT_BYTES) startupOutput += text;
      return;
    }
    sandbox.onOutput(level, text);
  };
  // Decoded as a stream, so a character split across two reads stays whole.
  stdout.setEncoding('utf8').on('data', output('INFO'));
  stderr.setEncoding('utf8').on('data', output('ERROR'));

  await handshake;
  return sandbox;
};
