import { type ChildProcess, spawn } from 'node:child_process';
import type { Logger } from './logger.ts';

export interface SupervisedProcess {
  /** The running child's pid, if one is up. */
  pid(): number | undefined;
  stop(): Promise<void>;
}

/** Variables a child may see: never the platform's secrets (admin password, JWT secret). */
const SECRET_VARIABLES = new Set(['STRATA_ADMIN_PASSWORD', 'STRATA_JWT_SECRET']);

/**
 * Variables the child must take from the platform's configuration, not from the environment it was
 * started in: which backing services to use (a platform configured for the embedded adapters must not
 * send its runners to services named in its shell).
 */
const CONFIGURED_VARIABLES = new Set(['STRATA_KAFKA_BROKERS', 'STRATA_MONGODB_URL', 'STRATA_EVENTSTORE_URL']);

export const childEnvironment = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!SECRET_VARIABLES.has(name) && !CONFIGURED_VARIABLES.has(name)) env[name] = value;
  }
  return { ...env, ...extra };
};

/**
 * Keeps a child process running: restarts it with backoff (0.5 s doubling to 30 s, reset after a minute
 * of good health) until `stop`, which sends SIGTERM and, after 10 s, SIGKILL.
 */
export const supervise = (
  name: string,
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  logger: Logger,
): SupervisedProcess => {
  let child: ChildProcess | undefined;
  let stopping = false;
  let delay = 500;
  let restartTimer: NodeJS.Timeout | undefined;

  const start = () => {
    const startedAt = Date.now();
    const current = spawn(command, args, { env, stdio: ['ignore', 'inherit', 'inherit'] });
    child = current;
    current.once('exit', (code, signal) => {
      if (child === current) child = undefined;
      if (stopping) return;
      if (Date.now() - startedAt > 60_000) delay = 500;
      logger.warn({ process: name, code, signal, restartInMs: delay }, 'child process exited; restarting');
      restartTimer = setTimeout(start, delay);
      delay = Math.min(delay * 2, 30_000);
    });
  };
  start();

  return {
    pid: () => child?.pid,
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const current = child;
      if (current === undefined || current.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        const killer = setTimeout(() => current.kill('SIGKILL'), 10_000);
        current.once('exit', () => {
          clearTimeout(killer);
          resolve();
        });
        current.kill('SIGTERM');
      });
    },
  };
};
