import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

// The real server (`node bin/strata.ts start`) in a child process, to be killed with SIGKILL and started
// again on the same data directory. It leads a process group of its own, so that a kill takes whatever it
// started (runners) down with it.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Server {
  readonly url: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

/** SIGKILL to the server's whole process group. */
export const kill = async (server: Pick<Server, 'child' | 'exited'>): Promise<void> => {
  const { pid, exitCode, signalCode } = server.child;
  if (pid === undefined || exitCode !== null || signalCode !== null) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  await server.exited;
};

/**
 * Starts the server on a free port with rate limits off and nothing from this process's STRATA_*
 * variables (plus `env`); resolves with its URL once it logs 'Strata API listening'. Killed at teardown.
 */
export const startServer = async (
  t: ExecutionContext,
  dataDir: string,
  env: Record<string, string> = {},
): Promise<Server> => {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('STRATA_')));
  const child = spawn(process.execPath, ['bin/strata.ts', 'start'], {
    cwd: ROOT,
    env: {
      ...inherited,
      PORT: '0',
      HOST: '127.0.0.1',
      STRATA_DATA_DIR: dataDir,
      STRATA_RATE_LIMITS: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(() => kill({ child, exited }));
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in time: ${stderr}`)), 30_000);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening: ${stderr}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'Strata API listening' && typeof entry.url === 'string') {
          clearTimeout(timer);
          resolve(entry.url);
        }
      } catch {
        // not a log line
      }
    });
  });
  return { url, child, exited };
};

/** A directory removed when the test ends. */
export const temporaryDirectory = async (t: ExecutionContext, prefix = 'strata-crash-'): Promise<string> => {
  const directory = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return directory;
};
