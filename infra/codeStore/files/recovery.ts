import { createHash } from 'node:crypto';
import { link, readdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

// A committed package is durable under its temporary name before its rename is (see index.ts): what a
// crash leaves among the temporary files is found here again by its hash.

export interface RecoveryOptions {
  /** The directory the temporary files are in. */
  readonly root: string;
  readonly blobPath: (sha256: string) => string;
  /** Creates a blob directory, durably. */
  readonly ensureDirectory: (directory: string) => Promise<void>;
  readonly syncDirectory: (directory: string) => Promise<void>;
  /** Temporary files the store itself is writing: never read here. */
  readonly own: ReadonlySet<string>;
  /** Age past which a temporary file can only be a stopped process's. */
  readonly strayAgeMs: number;
}

export interface Recovery {
  /**
   * Looks for the bytes of `sha256` among the temporary files, for a package whose rename a crash lost, and
   * puts them in place: true when it did. A file still being written cannot match a hash it does not have.
   */
  recover(sha256: string): Promise<boolean>;
  /**
   * Removes the temporary files of stopped processes (an upload in progress, or the file it had prepared).
   * One may hold a committed package whose rename a crash lost: any that is not empty is first stored under
   * its hash (what an upload cut off by the crash left then stays, referred to by nothing). A file that
   * cannot be read or stored stays, for a later sweep to try again.
   */
  sweep(): Promise<void>;
}

/** A temporary file of another process, or of a stopped one. */
interface Found {
  readonly path: string;
  readonly size: number;
  readonly modified: number;
}

export const createRecovery = (options: RecoveryOptions): Recovery => {
  const { root, blobPath, ensureDirectory, syncDirectory, own } = options;
  const temporaries = async (): Promise<Found[]> => {
    const found: Found[] = [];
    for (const name of await readdir(root).catch(() => [])) {
      const path = join(root, name);
      if (!name.endsWith('.tmp') || own.has(path)) continue;
      const stats = await stat(path).catch(() => undefined);
      if (stats !== undefined) found.push({ path, size: stats.size, modified: stats.mtimeMs });
    }
    return found;
  };
  /** Hashes of temporary files, by path, kept while their size and time of change stay the same. */
  const hashed = new Map<string, Found & { readonly sha256: string }>();
  const hashOf = async (file: Found): Promise<string | undefined> => {
    const known = hashed.get(file.path);
    if (known !== undefined && known.size === file.size && known.modified === file.modified) return known.sha256;
    const bytes = await readFile(file.path).catch(() => undefined);
    if (bytes === undefined) return undefined;
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    hashed.set(file.path, { ...file, sha256 });
    return sha256;
  };
  /** Gives a temporary file's bytes the name of their hash, when nothing has it yet (`link` keeps the file). */
  const rollForward = async (path: string, sha256: string): Promise<void> => {
    const blob = blobPath(sha256);
    await ensureDirectory(dirname(blob));
    try {
      await link(path, blob);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw error;
    }
    await syncDirectory(dirname(blob));
  };
  // One recovery at a time: each reads the temporary files.
  let recovering: Promise<unknown> = Promise.resolve();
  return {
    recover(sha256) {
      const attempt = recovering.then(async () => {
        const files = await temporaries();
        for (const path of hashed.keys()) if (!files.some((file) => file.path === path)) hashed.delete(path);
        for (const file of files) {
          if (file.size === 0 || (await hashOf(file)) !== sha256) continue;
          await rollForward(file.path, sha256);
          return true;
        }
        return false;
      });
      recovering = attempt.catch(() => {});
      return attempt;
    },
    async sweep() {
      const cutoff = Date.now() - options.strayAgeMs;
      for (const file of await temporaries()) {
        if (file.modified >= cutoff) continue;
        try {
          const sha256 = file.size === 0 ? undefined : await hashOf(file);
          if (file.size > 0 && sha256 === undefined) continue;
          if (sha256 !== undefined) await rollForward(file.path, sha256);
          await rm(file.path, { force: true });
        } catch {
          // Left in place (see sweep's comment).
        }
      }
    },
  };
};
