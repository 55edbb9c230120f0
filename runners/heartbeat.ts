import { cpus, freemem, hostname, totalmem } from 'node:os';
import type { RunnerHeartbeat } from '../domain/invocation/messages.ts';
import type { Counters } from './invoker.ts';
import type { PoolStats } from './pool.ts';

interface CpuSample {
  readonly idle: number;
  readonly total: number;
}

const sampleCpu = (): CpuSample =>
  cpus().reduce(
    (sum, cpu) => {
      const total = cpu.times.user + cpu.times.nice + cpu.times.sys + cpu.times.irq + cpu.times.idle;
      return { idle: sum.idle + cpu.times.idle, total: sum.total + total };
    },
    { idle: 0, total: 0 },
  );

export interface HeartbeatSource {
  readonly nodeId: string;
  readonly port: number | null;
  readonly startedAt: string;
  readonly intervalMs: number;
  readonly maxContainers: number;
  pool(): PoolStats;
  counters(): Readonly<Counters>;
  inFlight(): number;
}

/** Builds heartbeats from the machine's CPU and memory and the runner's own counters. */
export const createHeartbeats = (source: HeartbeatSource) => {
  let previous = sampleCpu();
  return (now: Date): RunnerHeartbeat => {
    const current = sampleCpu();
    const total = current.total - previous.total;
    const cpuUsage = total <= 0 ? 0 : (1 - (current.idle - previous.idle) / total) * 100;
    previous = current;
    const pool = source.pool();
    return {
      schemaVersion: 1,
      nodeId: source.nodeId,
      hostname: hostname(),
      port: source.port,
      startedAt: source.startedAt,
      sentAt: now.toISOString(),
      intervalMs: source.intervalMs,
      cpuUsage,
      memoryUsage: (1 - freemem() / totalmem()) * 100,
      totalCpuCores: cpus().length,
      totalMemoryMB: Math.round(totalmem() / 1024 / 1024),
      maxContainers: source.maxContainers,
      activeContainers: pool.activeContainers,
      activeContainerCount: pool.total,
      queuedInvocations: pool.waiting,
      inFlightInvocations: source.inFlight(),
      totals: { ...source.counters() },
    };
  };
};
