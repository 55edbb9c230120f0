// The server bench:control measures, in a process of its own so that the load generator's work (building
// 1 MiB ZIPs, its garbage) never counts against the server: `node bench/controlServer.ts <data dir>`.
// Prints {"url"} once listening; on stdin, `rebuild` answers {"rebuildSeconds"} and `close` stops it.
import { createInterface } from 'node:readline';
import { loadConfig } from '../infra/config.ts';
import { silentLogger } from '../infra/logger.ts';
import { startPlatform } from '../infra/platform.ts';

const dataDir = process.argv[2];
if (dataDir === undefined) {
  console.error('usage: node bench/controlServer.ts <data dir>');
  process.exit(2);
}
const platform = await startPlatform(
  loadConfig({ PORT: '0', HOST: '127.0.0.1', STRATA_DATA_DIR: dataDir, STRATA_RATE_LIMITS: 'off' }),
  silentLogger(),
  { runners: 0 },
);
// The generator builds bodies between batches: the connection must outlive those pauses.
platform.server.keepAliveTimeout = 10 * 60_000;
process.stdout.write(`${JSON.stringify({ url: platform.url })}\n`);

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'rebuild') {
    const started = performance.now();
    await platform.projector.rebuild();
    process.stdout.write(`${JSON.stringify({ rebuildSeconds: (performance.now() - started) / 1000 })}\n`);
  } else if (line === 'close') {
    break;
  }
}
await platform.close();
process.exit(0);
