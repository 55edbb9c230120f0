import type { RunnerHeartbeat } from '../domain/invocation/messages.ts';
import type { Document, ReadStore } from '../domain/ports.ts';

export const RUNNERS_COLLECTION = 'runners';

/** A runner is unhealthy once it has missed this many heartbeats. */
export const MISSED_HEARTBEATS = 3;

export const recordHeartbeat = async (readStore: ReadStore, heartbeat: RunnerHeartbeat): Promise<void> => {
  const stored = await readStore.get(RUNNERS_COLLECTION, heartbeat.nodeId);
  if (stored !== null && (stored.sentAt as string) > heartbeat.sentAt) return;
  await readStore.put(RUNNERS_COLLECTION, heartbeat.nodeId, heartbeat as unknown as Document);
};

const round = (value: number) => Math.round(value * 10) / 10;

export const isHealthy = (heartbeat: RunnerHeartbeat, now: Date): boolean =>
  now.getTime() - Date.parse(heartbeat.sentAt) <= heartbeat.intervalMs * MISSED_HEARTBEATS;

export const runnerSummary = (heartbeat: RunnerHeartbeat, now: Date) => ({
  nodeId: heartbeat.nodeId,
  hostname: heartbeat.hostname,
  port: heartbeat.port,
  health: {
    isHealthy: isHealthy(heartbeat, now),
    cpuUsage: round(heartbeat.cpuUsage),
    memoryUsage: round(heartbeat.memoryUsage),
    activeContainers: heartbeat.activeContainerCount,
  },
  startedAt: heartbeat.startedAt,
  lastHeartbeat: heartbeat.sentAt,
});

export const runnerDetails = (heartbeat: RunnerHeartbeat, now: Date) => {
  const summary = runnerSummary(heartbeat, now);
  const { totals } = heartbeat;
  return {
    ...summary,
    health: { ...summary.health, queuedInvocations: heartbeat.queuedInvocations },
    resources: {
      totalCpuCores: heartbeat.totalCpuCores,
      totalMemoryMB: heartbeat.totalMemoryMB,
      maxContainers: heartbeat.maxContainers,
    },
    metrics: {
      totalInvocations: totals.invocations,
      successfulInvocations: totals.successes,
      failedInvocations: totals.failures,
      coldStarts: totals.coldStarts,
      avgInvocationDuration: totals.invocations === 0 ? 0 : round(totals.durationMsSum / totals.invocations),
      avgColdStartDuration: totals.coldStarts === 0 ? 0 : round(totals.coldStartMsSum / totals.coldStarts),
    },
    activeContainers: heartbeat.activeContainers,
    startedAt: heartbeat.startedAt,
    lastHeartbeat: heartbeat.sentAt,
  };
};
