import { createHash, randomUUID } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodeStore } from '../../../domain/ports.ts';

export interface FileCodeStoreOptions {
  /** Root directory; blobs live at `<directory>/sha256/<first two hex digits>/<hex>.zip`. */
  readonly directory: string;
}

const sha256Pattern = /^[0-9a-f]{64}$/;

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';

const syncDirectory = async (directory: string): Promise<void> => {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

export const createFileCodeStore = (options: FileCodeStoreOptions): CodeStore => {
  const root = join(resolve(options.directory), 'sha256');
  const blobPath = (sha256: string): string => join(root, sha256.slice(0, 2), `${sha256}.zip`);
  const normalise = (sha256: string): string | null => {
    const lower = sha256.toLowerCase();
    return sha256Pattern.test(lower) ? lower : null;
  };
  const exists = async (path: string): Promise<boolean> => {
    try {
      await access(path);
      return true;
    } catch (error) {
      if (isMissing(error)) return false;
      throw error;
    }
  };

  // A fan-out directory is created once, its creation made durable (the parents synced) before any blob is
  // renamed into it; concurrent puts into a new directory wait for the same creation.
  const directories = new Map<string, Promise<void>>();
  const ensureDirectory = (directory: string): Promise<void> => {
    let ready = directories.get(directory);
    if (ready === undefined) {
      ready = (async () => {
        const created = await mkdir(directory, { recursive: true });
        if (created === undefined) return;
        for (let parent = dirname(directory); ; parent = dirname(parent)) {
          await syncDirectory(parent);
          if (parent === dirname(created)) break;
        }
      })();
      directories.set(directory, ready);
      ready.catch(() => directories.delete(directory));
    }
    return ready;
  };

  // Written under a temporary name, flushed, then renamed: a crash leaves at worst a stray temporary file,
  // never a partial blob under its final name. The directory sync makes the rename itself durable.
  const writeAtomically = async (path: string, bytes: Uint8Array): Promise<void> => {
    const directory = dirname(path);
    await ensureDirectory(directory);
    const temporary = `${path}.${randomUUID()}.tmp`;
    try {
      const handle = await open(temporary, 'wx');
      try {
        // One write call where the kernel takes it all (FileHandle.writeFile goes in 512 KiB pieces).
        for (let offset = 0; offset < bytes.byteLength; ) {
          const { bytesWritten } = await handle.write(bytes, offset, bytes.byteLength - offset, offset);
          offset += bytesWritten;
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, path);
    } catch (error) {
      await rm(temporary, { force: true });
      throw error;
    }
    await syncDirectory(directory);
  };

  return {
    async put(bytes) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const path = blobPath(sha256);
      if (!(await exists(path))) await writeAtomically(path, bytes);
      return { sha256, size: bytes.byteLength, location: pathToFileURL(path).href };
    },
    async get(sha256) {
      const hash = normalise(sha256);
      if (hash === null) return null;
      try {
        const buffer = await readFile(blobPath(hash));
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      } catch (error) {
        if (isMissing(error)) return null;
        throw error;
      }
    },
    async has(sha256) {
      const hash = normalise(sha256);
      return hash !== null && (await exists(blobPath(hash)));
    },
  };
};
