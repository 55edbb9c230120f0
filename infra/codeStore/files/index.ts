import { createHash, randomUUID } from 'node:crypto';
import { access, type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodeStore, CodeUpload } from '../../../domain/ports.ts';

export interface FileCodeStoreOptions {
  /** Root directory; blobs live at `<directory>/sha256/<first two hex digits>/<hex>.zip`. */
  readonly directory: string;
}

const sha256Pattern = /^[0-9a-f]{64}$/;

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** Writes every byte of `chunks` at `position`, however much each call takes. */
const writeFully = async (handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> => {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const { bytesWritten } = await handle.writev(chunks, position);
  if (bytesWritten === total) return;
  const rest = Buffer.concat(chunks).subarray(bytesWritten);
  for (let offset = 0; offset < rest.byteLength; ) {
    const written = await handle.write(rest, offset, rest.byteLength - offset, position + bytesWritten + offset);
    offset += written.bytesWritten;
  }
};

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
    const handle = await open(temporary, 'wx');
    try {
      await writeFully(handle, [bytes], 0);
      await handle.sync();
      await rename(temporary, path);
    } catch (error) {
      await handle.close();
      await rm(temporary, { force: true });
      throw error;
    }
    // The name is durable once the directory is synced; the handle may close meanwhile.
    await Promise.all([handle.close(), syncDirectory(directory)]);
  };

  // The bytes go to a temporary file under the root as they arrive, one write (of all that queued meanwhile)
  // at a time, and are hashed on the way; commit then flushes and renames as put does, or drops the file
  // when the blob is already there.
  const upload = (): CodeUpload => {
    const temporary = join(root, `upload-${randomUUID()}.tmp`);
    const hash = createHash('sha256');
    const opened = ensureDirectory(root).then(() => open(temporary, 'wx'));
    opened.catch(() => {});
    let queued: Uint8Array[] = [];
    let size = 0;
    let written = 0;
    let writing: Promise<void> = Promise.resolve();
    let state: 'open' | 'committing' | 'finished' = 'open';
    let closed = false;
    const close = async (handle: FileHandle | undefined): Promise<void> => {
      if (closed || handle === undefined) return;
      closed = true;
      await handle.close();
    };
    const drain = async (): Promise<void> => {
      const handle = await opened;
      while (queued.length > 0) {
        const chunks = queued;
        queued = [];
        const position = written;
        written += chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
        await writeFully(handle, chunks, position);
      }
    };
    const finish = async (): Promise<void> => {
      state = 'finished';
      await writing.catch(() => {});
      await close(await opened.catch(() => undefined));
      await rm(temporary, { force: true });
    };
    return {
      write(chunk) {
        if (state !== 'open') throw new Error('The upload is finished');
        hash.update(chunk);
        size += chunk.byteLength;
        queued.push(chunk);
        if (queued.length === 1) {
          writing = writing.then(drain);
          writing.catch(() => {});
        }
      },
      async commit() {
        if (state !== 'open') throw new Error('The upload is finished');
        state = 'committing';
        try {
          await writing;
          await drain();
          const sha256 = hash.digest('hex');
          const path = blobPath(sha256);
          const handle = await opened;
          const directory = dirname(path);
          const [stored] = await Promise.all([exists(path), ensureDirectory(directory)]);
          if (stored) {
            await finish();
          } else {
            await handle.sync();
            await rename(temporary, path);
            state = 'finished';
            await Promise.all([close(handle), syncDirectory(directory)]);
          }
          return { sha256, size, location: pathToFileURL(path).href };
        } catch (error) {
          if (state !== 'finished') await finish().catch(() => {});
          throw error;
        }
      },
      async discard() {
        if (state === 'open') await finish();
      },
    };
  };

  return {
    async put(bytes) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const path = blobPath(sha256);
      if (!(await exists(path))) await writeAtomically(path, bytes);
      return { sha256, size: bytes.byteLength, location: pathToFileURL(path).href };
    },
    upload,
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
