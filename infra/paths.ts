import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Unix socket paths are limited to ~107 bytes: a long data directory gets a socket in the temp dir. */
export const busSocketPath = (dataDir: string): string => {
  const inDataDir = join(dataDir, 'bus.sock');
  if (Buffer.byteLength(inDataDir) <= 100) return inDataDir;
  const digest = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
  return join(tmpdir(), `strata-bus-${digest}.sock`);
};
