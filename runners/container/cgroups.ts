import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Memory and process limits for containers through cgroups, where this runner may create them: v1's
 * `memory` and `pids` hierarchies, or a v2 subtree with both controllers. Each driver makes one group
 * (`strata-<pid>-<random>`) under the runner's own cgroup (or `parent`), and one child per container.
 */

export type CgroupMode = 'cgroup v1' | 'cgroup v2';

export interface ContainerCgroup {
  /**
   * Moves a process (and so everything it forks from now on) into the container's groups. Asynchronous: in
   * v1 each move waits for an RCU grace period, which must not stall the runner.
   */
  attach(pid: number): Promise<void>;
  setMemoryLimit(bytes: number): void;
  /** At most this many CPUs' worth of time per period (fractions allowed). */
  setCpuLimit(cpus: number): void;
  /** Processes the kernel killed for breaching the memory limit, so far. */
  oomKills(): number;
  /** Memory charged to the container now, bytes (page cache and tmpfs included). */
  memoryBytes(): number;
  /** Removes the groups once their processes are gone; retries briefly while the kernel finishes reaping. */
  remove(): Promise<void>;
}

export interface Cgroups {
  readonly memory: CgroupMode | null;
  readonly pids: CgroupMode | null;
  /** CPU bandwidth; a best effort (no rlimit stands in for it). */
  readonly cpu: CgroupMode | null;
  /** Why memory or pids have no cgroup here (empty when both have one). */
  readonly problems: readonly string[];
  create(id: string, maxProcesses: number): ContainerCgroup;
  /** Removes the driver's groups (the containers' must be gone). */
  close(): void;
}

interface Mount {
  readonly root: string;
  readonly point: string;
  readonly type: string;
  readonly options: readonly string[];
}

/** mountinfo writes spaces and the like in paths as octal escapes (`\040`). */
const decodePath = (path: string): string =>
  path.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

const readMounts = (): Mount[] => {
  const mounts: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [type, , superOptions] = right.split(' ');
    const root = fields[3];
    const point = fields[4];
    if (root === undefined || point === undefined || type === undefined) continue;
    mounts.push({ root: decodePath(root), point: decodePath(point), type, options: (superOptions ?? '').split(',') });
  }
  return mounts;
};

/** This process's cgroup path per v1 controller, and under the v2 hierarchy (key ''). */
const readOwnGroups = (): Map<string, string> => {
  const groups = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    const [, controllers = '', path = ''] = match;
    if (controllers === '') groups.set('', path);
    for (const controller of controllers.split(',')) if (controller !== '') groups.set(controller, path);
  }
  return groups;
};

const directoryOf = (mount: Mount, ownPath: string): string | null => {
  if (mount.root === '/') return join(mount.point, ownPath);
  if (ownPath === mount.root || ownPath.startsWith(`${mount.root}/`)) {
    return join(mount.point, ownPath.slice(mount.root.length));
  }
  return null;
};

const errorText = (error: unknown): string => (error instanceof Error ? error.message : String(error));

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

const killMembers = (directory: string): void => {
  try {
    for (const pid of readFileSync(join(directory, 'cgroup.procs'), 'utf8').split('\n')) {
      if (pid !== '') process.kill(Number(pid), 'SIGKILL');
    }
  } catch {}
};

/** Groups a runner that died left behind: their processes are orphaned sandboxes, so they go too. */
const removeStale = (parent: string): void => {
  let entries: string[];
  try {
    entries = readdirSync(parent);
  } catch {
    return;
  }
  for (const entry of entries) {
    const match = /^strata-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!match || pidAlive(Number(match[1]))) continue;
    const group = join(parent, entry);
    try {
      for (const child of readdirSync(group, { withFileTypes: true })) {
        if (!child.isDirectory()) continue;
        killMembers(join(group, child.name));
        rmdirSync(join(group, child.name));
      }
      rmdirSync(group);
    } catch {}
  }
};

const readCounter = (file: string, key: string): number => {
  try {
    const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
    return match?.[1] === undefined ? 0 : Number(match[1]);
  } catch {
    return 0;
  }
};

const readNumber = (file: string): number => {
  try {
    return Number(readFileSync(file, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
};

const removeWithRetry = async (directories: readonly string[]): Promise<void> => {
  for (const directory of directories) {
    for (let attempt = 0; ; attempt++) {
      try {
        await rmdir(directory);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || attempt >= 20) break;
        if (attempt === 10) killMembers(directory);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
  }
};

export interface CgroupOptions {
  /** Where to make the driver's group instead of under the runner's own cgroup (a delegated v2 subtree, say). */
  readonly parent?: string;
}

/** Finds the cgroups this runner may use; never throws (what it cannot use is in `problems`). */
export const setUpCgroups = (options: CgroupOptions = {}): Cgroups => {
  const problems: string[] = [];
  const name = `strata-${process.pid}-${randomBytes(4).toString('hex')}`;
  let mounts: Mount[] = [];
  let own = new Map<string, string>();
  try {
    mounts = readMounts();
    own = readOwnGroups();
  } catch (error) {
    problems.push(`cannot read /proc/self/mountinfo or /proc/self/cgroup: ${errorText(error)}`);
  }

  /** Makes the driver's group under a parent directory; null (with a problem noted) when not allowed. */
  const makeGroup = (parent: string, what: string): string | null => {
    const group = join(parent, name);
    try {
      removeStale(parent);
      mkdirSync(group);
      return group;
    } catch (error) {
      problems.push(`cannot create ${what} cgroups under ${parent}: ${errorText(error)}`);
      return null;
    }
  };

  const v1Directory = (controller: string): string | null => {
    const mount = mounts.find((candidate) => candidate.type === 'cgroup' && candidate.options.includes(controller));
    const ownPath = own.get(controller);
    if (mount === undefined || ownPath === undefined) return null;
    return options.parent === undefined ? directoryOf(mount, ownPath) : join(mount.point, options.parent);
  };

  let memoryV1: string | null = null;
  let pidsV1: string | null = null;
  let cpuV1: string | null = null;
  const memoryParent = v1Directory('memory');
  if (memoryParent !== null) memoryV1 = makeGroup(memoryParent, 'memory');
  const pidsParent = v1Directory('pids');
  if (pidsParent !== null) pidsV1 = makeGroup(pidsParent, 'pids');
  const cpuParent = v1Directory('cpu');
  if (cpuParent !== null && (memoryV1 !== null || pidsV1 !== null)) cpuV1 = makeGroup(cpuParent, 'cpu');

  let v2: string | null = null;
  let v2Cpu = false;
  const unified = mounts.find((candidate) => candidate.type === 'cgroup2');
  const ownUnified = own.get('');
  if ((memoryV1 === null || pidsV1 === null) && unified !== undefined && ownUnified !== undefined) {
    const parent =
      options.parent === undefined ? directoryOf(unified, ownUnified) : join(unified.point, options.parent);
    const controllers = (directory: string) => {
      try {
        return readFileSync(join(directory, 'cgroup.controllers'), 'utf8').trim().split(/\s+/);
      } catch {
        return [];
      }
    };
    if (parent !== null && controllers(parent).includes('memory') && controllers(parent).includes('pids')) {
      const group = makeGroup(parent, 'v2');
      if (group !== null) {
        try {
          // The parent must hand both controllers down; it may refuse (a v2 group holding processes cannot).
          if (!(controllers(group).includes('memory') && controllers(group).includes('pids'))) {
            writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory +pids');
          }
          writeFileSync(join(group, 'cgroup.subtree_control'), '+memory +pids');
          v2 = group;
          try {
            if (!controllers(group).includes('cpu')) writeFileSync(join(parent, 'cgroup.subtree_control'), '+cpu');
            writeFileSync(join(group, 'cgroup.subtree_control'), '+cpu');
            v2Cpu = true;
          } catch {}
        } catch (error) {
          problems.push(`cannot enable the memory and pids controllers under ${parent}: ${errorText(error)}`);
          rmdirSync(group);
        }
      }
    } else if (parent !== null && memoryV1 === null) {
      problems.push(`the cgroup v2 group ${parent} does not offer the memory and pids controllers`);
    }
  }
  if (memoryV1 === null && pidsV1 === null && v2 === null && problems.length === 0) {
    problems.push('no cgroup hierarchy with the memory or pids controller is mounted');
  }

  const memory: CgroupMode | null = memoryV1 !== null ? 'cgroup v1' : v2 !== null ? 'cgroup v2' : null;
  const pids: CgroupMode | null = pidsV1 !== null ? 'cgroup v1' : v2 !== null ? 'cgroup v2' : null;
  const cpu: CgroupMode | null = cpuV1 !== null ? 'cgroup v1' : v2 !== null && v2Cpu ? 'cgroup v2' : null;

  return {
    memory,
    pids,
    cpu,
    problems: memory !== null && pids !== null ? [] : problems,
    create(id, maxProcesses) {
      const memoryDir = memoryV1 !== null ? join(memoryV1, id) : v2 !== null ? join(v2, id) : null;
      const pidsDir = pidsV1 !== null ? join(pidsV1, id) : v2 !== null ? join(v2, id) : null;
      const cpuDir = cpuV1 !== null ? join(cpuV1, id) : v2 !== null && v2Cpu ? join(v2, id) : null;
      const directories = [...new Set([memoryDir, pidsDir, cpuDir].filter((directory) => directory !== null))];
      for (const directory of directories) mkdirSync(directory);
      if (pidsDir !== null) writeFileSync(join(pidsDir, 'pids.max'), String(maxProcesses));
      if (memoryDir !== null && memoryV1 === null) {
        // v2: an out-of-memory kill takes the whole container, not one process of it.
        try {
          writeFileSync(join(memoryDir, 'memory.oom.group'), '1');
        } catch {}
      }
      const handle: ContainerCgroup = {
        async attach(pid) {
          await Promise.all(directories.map((directory) => writeFile(join(directory, 'cgroup.procs'), String(pid))));
        },
        setMemoryLimit(bytes) {
          if (memoryDir === null) return;
          if (memoryV1 !== null) {
            writeFileSync(join(memoryDir, 'memory.limit_in_bytes'), String(bytes));
            // With swap accounting, memory+swap gets the same limit: a function cannot page out past it.
            const memsw = join(memoryDir, 'memory.memsw.limit_in_bytes');
            if (existsSync(memsw)) writeFileSync(memsw, String(bytes));
          } else {
            writeFileSync(join(memoryDir, 'memory.max'), String(bytes));
            const swap = join(memoryDir, 'memory.swap.max');
            if (existsSync(swap)) writeFileSync(swap, '0');
          }
        },
        setCpuLimit(cpus) {
          if (cpuDir === null) return;
          const period = 100_000;
          const quota = Math.max(1_000, Math.round(cpus * period));
          if (cpuV1 !== null) {
            writeFileSync(join(cpuDir, 'cpu.cfs_period_us'), String(period));
            writeFileSync(join(cpuDir, 'cpu.cfs_quota_us'), String(quota));
          } else {
            writeFileSync(join(cpuDir, 'cpu.max'), `${quota} ${period}`);
          }
        },
        oomKills() {
          if (memoryDir === null) return 0;
          return memoryV1 !== null
            ? readCounter(join(memoryDir, 'memory.oom_control'), 'oom_kill')
            : readCounter(join(memoryDir, 'memory.events'), 'oom_kill');
        },
        memoryBytes() {
          if (memoryDir === null) return 0;
          return readNumber(join(memoryDir, memoryV1 !== null ? 'memory.usage_in_bytes' : 'memory.current'));
        },
        remove: () => removeWithRetry(directories),
      };
      // A container starting (or waiting in the pool) gets one CPU until it is given a function.
      handle.setCpuLimit(1);
      return handle;
    },
    close() {
      for (const group of [memoryV1, pidsV1, cpuV1, v2]) {
        if (group === null) continue;
        try {
          rmdirSync(group);
        } catch {}
      }
    },
  };
};
