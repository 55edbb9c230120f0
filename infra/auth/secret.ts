import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';

/** The kept secret; '' when the file is empty, which only a crash during its first write leaves behind. */
const readKept = (path: string): string | undefined => {
  try {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
};

/**
 * The JWT signing secret: the configured one, or one generated on first start and kept in the data
 * directory, readable by the owner only.
 */
export const loadOrCreateSecret = (dataDir: string, configured: string | undefined): string => {
  if (configured !== undefined) return configured;
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'jwt-secret');
  const kept = readKept(path);
  if (kept !== undefined && kept !== '') return kept;

  // Written aside, flushed, then put in place whole: a crash never leaves an empty secret (every login
  // would fail on it). A link, unlike a rename, keeps the secret of a process that got there first.
  const secret = randomBytes(48).toString('base64url');
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${secret}\n`, { mode: 0o600, flush: true });
  try {
    if (kept === '') renameSync(temporary, path);
    else linkSync(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return loadOrCreateSecret(dataDir, configured);
  } finally {
    rmSync(temporary, { force: true });
  }
  const directory = openSync(dataDir, 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
  return secret;
};
