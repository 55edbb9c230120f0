import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore } from '../domain/ports.ts';
import { createSqliteEventStore } from '../infra/eventStore/sqlite/index.ts';

export interface AppendRate {
  readonly appends: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly appendsPerSecond: number;
}

/** Appends one event to a new stream per append, like creating functions, from `concurrency` writers. */
export async function measureAppendRate(
  store: EventStore,
  options: { appends: number; concurrency: number },
): Promise<AppendRate> {
  const { appends, concurrency } = options;
  const run = randomUUID().slice(0, 8);
  const metadata = {
    userId: 'bench',
    occurredAt: new Date().toISOString(),
    traceId: run,
    correlationId: run,
    causationId: run,
  };
  let next = 0;
  const writer = async () => {
    while (next < appends) {
      const index = next++;
      const data = { name: `function-${index}`, runtime: 'nodejs22', memoryMb: 128 };
      await store.append(
        `bench-${run}-${index}`,
        [{ type: 'FunctionCreated', schemaVersion: 1, data, metadata }],
        'noStream',
      );
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, writer));
  const seconds = (performance.now() - started) / 1000;
  return { appends, concurrency, seconds, appendsPerSecond: Math.round(appends / seconds) };
}

if (import.meta.main) {
  const rows: AppendRate[] = [];
  for (const concurrency of [1, 16, 64]) {
    const directory = await mkdtemp(join(tmpdir(), 'strata-bench-'));
    const store = createSqliteEventStore({ path: join(directory, 'events.db') });
    try {
      rows.push(await measureAppendRate(store, { appends: concurrency === 1 ? 2_000 : 20_000, concurrency }));
    } finally {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    }
  }
  console.table(rows.map((row) => ({ ...row, seconds: Number(row.seconds.toFixed(2)) })));
}
