import { execFile } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

/** What a Python container needs from the host, found once per driver. */
export interface PythonInterpreter {
  /** The real binary (not a pyenv shim: that costs ~60 ms per start). */
  readonly executable: string;
  readonly version: string;
  /** Directories the interpreter needs, bound read-only into each container. */
  readonly prefixes: readonly string[];
}

export interface Namespaces {
  readonly unshare: string;
  /** True when the runner is not root and the container gets a user namespace mapping it to root. */
  readonly userNamespace: boolean;
  readonly flags: readonly string[];
}

export type Probe<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

export interface ProbeOptions {
  /** Path or command name of a Python 3.11 interpreter. Default: `STRATA_PYTHON`, else `python3.11` on PATH. */
  readonly python?: string;
  /** Path of util-linux's `unshare`. Default: found on PATH. */
  readonly unshare?: string;
  readonly env?: NodeJS.ProcessEnv;
}

const PROBE_TIMEOUT_MS = 15_000;
const NAMESPACE_FLAGS = ['--mount', '--pid', '--net', '--ipc', '--uts', '--fork', '--kill-child'];

const run = (file: string, args: readonly string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ stdout: string; stderr: string; error: (Error & { code?: unknown }) | null }>((resolve) => {
    execFile(file, args, { env, timeout: PROBE_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, error }),
    );
  });

const executable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return !lstatSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** `name` itself when it is a path, else the first executable `name` on PATH (and the usual sbin/bin dirs). */
export const findCommand = (name: string, env: NodeJS.ProcessEnv = process.env): string | null => {
  if (name.includes('/')) return executable(name) ? name : null;
  const dirs = [...(env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir !== '' && executable(join(dir, name))) return join(dir, name);
  }
  return null;
};

const PYTHON_REPORT = [
  'import sys',
  "print(sys.executable); print('%d.%d.%d' % sys.version_info[:3])",
  'print(sys.prefix); print(sys.base_prefix); print(sys.exec_prefix); print(sys.base_exec_prefix)',
].join('\n');

export const findPython = async (options: ProbeOptions = {}): Promise<Probe<PythonInterpreter>> => {
  const env = options.env ?? process.env;
  const configured = options.python ?? env.STRATA_PYTHON;
  const command = configured ?? 'python3.11';
  const path = findCommand(command, env);
  if (path === null) {
    return {
      ok: false,
      problem:
        configured === undefined
          ? 'no python3.11 on PATH (install Python 3.11, e.g. `apt-get install python3.11`, or set STRATA_PYTHON to its path)'
          : `STRATA_PYTHON=${configured} is not an executable file`,
    };
  }
  // Run once through whatever `path` is (a pyenv shim, a symlink): the interpreter names its real self.
  const { stdout, stderr, error } = await run(path, ['-I', '-S', '-c', PYTHON_REPORT], env);
  const [real, version, ...prefixes] = stdout.trim().split('\n');
  if (error !== null || real === undefined || version === undefined || real === '') {
    const reason = (stderr.trim().split('\n').pop() ?? '') || (error?.message ?? 'no output');
    return { ok: false, problem: `${path} does not run: ${reason}` };
  }
  if (!version.startsWith('3.11.')) {
    return { ok: false, problem: `${path} is Python ${version}; the Python311 runtime needs 3.11 (set STRATA_PYTHON)` };
  }
  let resolved: string;
  try {
    resolved = realpathSync(real);
  } catch (error) {
    return { ok: false, problem: `${real} cannot be resolved: ${(error as Error).message}` };
  }
  const directories = new Set<string>([dirname(resolved)]);
  for (const prefix of prefixes) {
    if (prefix === '' || !existsSync(prefix)) continue;
    directories.add(realpathSync(prefix));
  }
  return { ok: true, value: { executable: resolved, version, prefixes: [...directories] } };
};

/**
 * Whether `unshare` can make the container's namespaces here: directly as root, else through a user
 * namespace (which an unprivileged user may create where the kernel allows it).
 */
export const findNamespaces = async (options: ProbeOptions = {}): Promise<Probe<Namespaces>> => {
  const env = options.env ?? process.env;
  const unshare = findCommand(options.unshare ?? 'unshare', env);
  if (unshare === null) {
    return {
      ok: false,
      problem:
        options.unshare === undefined
          ? 'util-linux `unshare` is not installed (apt-get install util-linux)'
          : `\`unshare\` at ${options.unshare} is not an executable file`,
    };
  }
  const attempts: { userNamespace: boolean; flags: string[] }[] = [];
  if (process.getuid?.() === 0) attempts.push({ userNamespace: false, flags: NAMESPACE_FLAGS });
  attempts.push({ userNamespace: true, flags: ['--user', '--map-root-user', ...NAMESPACE_FLAGS] });
  const failures: string[] = [];
  for (const attempt of attempts) {
    const { stderr, error } = await run(unshare, [...attempt.flags, 'true'], { PATH: '/usr/bin:/bin' });
    if (error === null) return { ok: true, value: { unshare, ...attempt } };
    failures.push(`\`unshare ${attempt.flags.join(' ')}\`: ${stderr.trim() || error.message}`);
  }
  const hint =
    process.getuid?.() === 0
      ? ''
      : ' (run the runner as root, or allow unprivileged user namespaces: sysctl kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0)';
  return { ok: false, problem: `cannot create the container's namespaces: ${failures.join('; ')}${hint}` };
};
