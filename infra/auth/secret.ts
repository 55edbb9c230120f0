import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The JWT signing secret: the configured one, or one generated on first start and kept in the data
 * directory, readable by the owner only.
 */
export const loadOrCreateSecret = (dataDir: string, configured: string | undefined): string => {
  if (configured !== undefined) return configured;
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'jwt-secret');
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
};
