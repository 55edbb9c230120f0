import { createHash, randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, type FileHandle, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { CodeStore, CodeUpload } from '../../../domain/ports.ts';
import { createPending } from '../../pending.ts';
import { createRecovery } from './recovery.ts';

export interface FileCodeStoreOptions {
  /** Root directory; blobs live at `<directory>/sha256/<first two hex digits>/<hex>.zip`. */
  readonly directory: string;
  /**
   * Write blobs with O_DIRECT where the file system takes it (default true): a package is written once and
   * flushed at once, so the page cache only costs a copy, and on some virtual disks several times the time
   * of the write itself (1 MiB written, flushed and renamed on the bench:control machine: 2.6 ms direct,
   * 7.3 ms through the page cache).
   */
  readonly directWrites?: boolean;
}

const sha256Pattern = /^[0-9a-f]{64}$/;

/** Age past which a temporary file under the root can only be a stopped process's. */
const STRAY_AGE_MS = 60 * 60 * 1000;

const isMissing = (error: unknown): boolean => (error as NodeJS.ErrnoException).code === 'ENOENT';

/** O_DIRECT wants the memory, the file offset and the length aligned; a page covers every usual block size. */
const DIRECT_ALIGNMENT = 4096;
/** Aligned memory each upload copies its package into, in segments written as they fill. */
const SCRATCH_BYTES = 1024 * 1024;
/**
 * How much of a package each direct write takes: small enough that the writes follow a body as it arrives,
 * leaving one short write after its end (on the bench:control machine, 1 MiB takes 1.07 ms in one write, 256
 * KiB 0.43 ms).
 */
const SEGMENT_BYTES = 256 * 1024;
const WASM_PAGE_BYTES = 65_536;
/** Scratch memory kept for the next uploads once one finishes. */
const IDLE_SCRATCH = 4;
/**
 * Most scratch memories at once: each reserves gigabytes of address space (V8's guard regions), of which a
 * process has about a terabyte; uploads beyond this many go through the page cache.
 */
const MAX_SCRATCH = 16;

// Not in the es2024 lib that tsconfig names; only the memory's pages are used.
declare const WebAssembly: { Memory: new (descriptor: { initial: number }) => { readonly buffer: ArrayBuffer } };

/** Page-aligned memory: a WebAssembly memory is mapped in whole pages, a Buffer's memory is not aligned. */
const alignedScratch = (): Buffer =>
  Buffer.from(new WebAssembly.Memory({ initial: SCRATCH_BYTES / WASM_PAGE_BYTES }).buffer);

/** Writes `length` bytes of `buffer` at `position`, however much each call takes. */
const writeAll = async (handle: FileHandle, buffer: Uint8Array, length: number, position: number): Promise<void> => {
  for (let offset = 0; offset < length; ) {
    const { bytesWritten } = await handle.write(buffer, offset, length - offset, position + offset);
    offset += bytesWritten;
  }
};

/** Writes every byte of `chunks` at `position`, however much each call takes. */
const writeChunks = async (handle: FileHandle, chunks: readonly Uint8Array[], position: number): Promise<void> => {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const { bytesWritten } = await handle.writev(chunks, position);
  if (bytesWritten === total) return;
  const rest = Buffer.concat(chunks).subarray(bytesWritten);
  await writeAll(handle, rest, rest.byteLength, position + bytesWritten);
};

const syncDirectory = async (directory: string): Promise<void> => {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
};

/**
 * A new file written in order from the pieces handed to `write`; `finish` writes what is left and resolves
 * once every byte, and the file's size, are durable.
 */
interface BlobWriter {
  write(chunks: readonly Uint8Array[]): Promise<void>;
  finish(): Promise<void>;
}

const bufferedWriter = (handle: FileHandle): BlobWriter => {
  let position = 0;
  return {
    async write(chunks) {
      const writing = writeChunks(handle, chunks, position);
      position += chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
      await writing;
    },
    finish: () => handle.datasync(),
  };
};

/**
 * Copies the pieces into aligned memory, a segment at a time, and starts the write of each segment as soon
 * as it is full, without waiting for the writes before it: they run while the body still arrives, and none
 * waits for the event loop (busy with the body) to see its predecessor end. The last segment, not a whole
 * number of blocks, goes through `tail`, a handle on the same file without O_DIRECT, beside the segments
 * still being written: no padding to cut off afterwards, and one flush for all (on the bench:control
 * machine, 0.9 ms from the last byte to the flushed file, against 1.26 ms to write the last segment padded,
 * truncate and flush). O_DSYNC writes, each durable when it completes, were no faster: each flushes, and
 * the flushes queue behind each other.
 */
const directWriter = (handle: FileHandle, tail: FileHandle, scratch: Buffer): BlobWriter => {
  const segments = scratch.byteLength / SEGMENT_BYTES;
  /** The write of each segment still running, by segment. */
  const inFlight: Array<Promise<void> | undefined> = [];
  let segment = 0;
  let filled = 0;
  let position = 0;
  const start = (length: number) => {
    const base = segment * SEGMENT_BYTES;
    const writing = writeAll(handle, scratch.subarray(base, base + length), length, position);
    // A failure surfaces when the segment is filled again, or at finish.
    writing.catch(() => {});
    inFlight[segment] = writing;
    position += length;
    segment = (segment + 1) % segments;
    filled = 0;
  };
  return {
    async write(chunks) {
      for (const chunk of chunks) {
        for (let offset = 0; offset < chunk.byteLength; ) {
          // A segment is filled again only once its last write is over.
          if (filled === 0 && inFlight[segment] !== undefined) {
            await inFlight[segment];
            inFlight[segment] = undefined;
          }
          const piece = chunk.subarray(offset, offset + SEGMENT_BYTES - filled);
          scratch.set(piece, segment * SEGMENT_BYTES + filled);
          filled += piece.byteLength;
          offset += piece.byteLength;
          if (filled === SEGMENT_BYTES) start(filled);
        }
      }
    },
    async finish() {
      const base = segment * SEGMENT_BYTES;
      await Promise.all([...inFlight, writeAll(tail, scratch.subarray(base, base + filled), filled, position)]);
      await handle.datasync();
    },
  };
};

export const createFileCodeStore = (options: FileCodeStoreOptions): CodeStore & { close(): Promise<void> } => {
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

  const idleScratch: Buffer[] = [];
  let scratchCount = 0;
  const takeScratch = (): Buffer | undefined => {
    const idle = idleScratch.pop();
    if (idle !== undefined || scratchCount >= MAX_SCRATCH) return idle;
    try {
      const scratch = alignedScratch();
      scratchCount += 1;
      return scratch;
    } catch {
      return undefined;
    }
  };
  const giveBack = (scratch: Buffer) => {
    if (idleScratch.length < IDLE_SCRATCH) idleScratch.push(scratch);
    else scratchCount -= 1;
  };

  // Whether the file system under the root takes aligned O_DIRECT writes (tmpfs refuses the flag, some
  // systems have none): found once, with a file of one block.
  let direct: Promise<boolean> | undefined;
  const directSupported = (): Promise<boolean> => {
    direct ??= (async () => {
      if (options.directWrites === false || constants.O_DIRECT === undefined) return false;
      const probe = join(root, `probe-${randomUUID()}.tmp`);
      const scratch = takeScratch();
      if (scratch === undefined) return false;
      try {
        const handle = await open(
          probe,
          constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT,
        );
        try {
          await writeAll(handle, scratch, DIRECT_ALIGNMENT, 0);
        } finally {
          await handle.close();
        }
        return true;
      } catch {
        return false;
      } finally {
        giveBack(scratch);
        await rm(probe, { force: true });
      }
    })();
    return direct;
  };

  // The bytes go to a temporary file under the root as they arrive (see the writers), and are hashed as they
  // are handed in; commit then makes them durable and renames the file to its hash, or drops it when the blob
  // is already there. A crash leaves at worst a stray temporary file, never a partial blob under its final
  // name.
  //
  // The temporary file's name is made durable when it is created, ahead of its upload, so that a committed
  // package is durable, under one name or the other, as soon as its bytes are: commit renames it and answers
  // without waiting for the directory to be flushed (which follows in the background), and the caller
  // appends its event meanwhile. If a crash loses the rename, `get` finds the bytes again by their hash among
  // the temporary files, and so does the sweep of old temporary files before it removes one (recovery.ts).
  //
  // The temporary file of the next upload is created ahead, while the one before it is received: created
  // when an upload starts, it would open only once most of the body has come (its completion waits behind
  // the body's reads), and so would its first write.
  interface Temporary {
    readonly path: string;
    readonly handle: FileHandle;
    /** The same file without O_DIRECT, for the end of a direct upload. */
    readonly tail?: FileHandle;
    readonly writer: BlobWriter;
    readonly scratch?: Buffer;
  }
  /** Temporary files of this store not yet renamed or removed: never recovered from, being written. */
  const ownTemporaries = new Set<string>();
  /** What follows a rename (the directory's flush, closing the file), awaited by close. */
  const settling = createPending();
  const settleInBackground = (work: Promise<unknown>) => {
    // A failed flush leaves the rename as durable as the file system makes it unasked, and the bytes
    // recoverable from the temporary file while it lasts; nothing waits on it to report.
    settling.track(work).catch(() => {});
  };
  const { recover, sweep: sweepStrays } = createRecovery({
    root,
    blobPath,
    ensureDirectory,
    syncDirectory,
    own: ownTemporaries,
    strayAgeMs: STRAY_AGE_MS,
  });
  // Old temporary files are swept once, before this store makes its first; younger ones may belong to a
  // process still running on the same directory.
  let swept: Promise<void> | undefined;
  const sweep = async (): Promise<void> => {
    await ensureDirectory(root);
    await sweepStrays();
  };
  const closeHandles = async ({ handle, tail }: Temporary): Promise<void> => {
    await Promise.all([handle.close(), tail?.close()]);
  };
  const createTemporary = async (): Promise<Temporary> => {
    const path = join(root, `upload-${randomUUID()}.tmp`);
    swept ??= sweep();
    await swept;
    ownTemporaries.add(path);
    try {
      const temporary = await openTemporary(path);
      try {
        await syncDirectory(root);
      } catch (error) {
        if (temporary.scratch !== undefined) giveBack(temporary.scratch);
        await closeHandles(temporary);
        await rm(path, { force: true });
        throw error;
      }
      return temporary;
    } catch (error) {
      ownTemporaries.delete(path);
      throw error;
    }
  };
  const openTemporary = async (path: string): Promise<Temporary> => {
    if (await directSupported()) {
      const scratch = takeScratch();
      if (scratch !== undefined) {
        const handles: FileHandle[] = [];
        try {
          const handle = await open(
            path,
            constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT,
          );
          handles.push(handle);
          const tail = await open(path, constants.O_WRONLY);
          return { path, handle, tail, writer: directWriter(handle, tail, scratch), scratch };
        } catch (error) {
          giveBack(scratch);
          await Promise.all(handles.map((handle) => handle.close()));
          await rm(path, { force: true });
          throw error;
        }
      }
    }
    const handle = await open(path, 'wx');
    return { path, handle, writer: bufferedWriter(handle) };
  };
  let spare: Promise<Temporary> | undefined;
  let storeClosed = false;
  const takeTemporary = (): Promise<Temporary> => {
    const taken = spare ?? createTemporary();
    spare = undefined;
    if (!storeClosed) {
      const next = createTemporary();
      next.catch(() => {
        if (spare === next) spare = undefined;
      });
      spare = next;
    }
    return taken;
  };
  /** Removes the file prepared for the next upload. */
  const dropSpare = async (): Promise<void> => {
    const prepared = await spare?.catch(() => undefined);
    spare = undefined;
    if (prepared === undefined) return;
    if (prepared.scratch !== undefined) giveBack(prepared.scratch);
    await closeHandles(prepared);
    await rm(prepared.path, { force: true });
    ownTemporaries.delete(prepared.path);
  };

  const upload = (): CodeUpload => {
    const hash = createHash('sha256');
    const opened = takeTemporary();
    let queued: Uint8Array[] = [];
    let size = 0;
    let writing: Promise<void> = Promise.resolve();
    /** The writer's finish, once commit started it. */
    let flushed: Promise<void> = Promise.resolve();
    let state: 'open' | 'committing' | 'finished' = 'open';
    let closed = false;
    const close = async (taken: Temporary): Promise<void> => {
      if (closed) return;
      closed = true;
      await closeHandles(taken);
    };
    let scratchReturned = false;
    const releaseScratch = ({ scratch }: Temporary) => {
      if (scratch === undefined || scratchReturned) return;
      scratchReturned = true;
      giveBack(scratch);
    };
    const drain = async (): Promise<void> => {
      const { writer } = await opened;
      while (queued.length > 0) {
        const chunks = queued;
        queued = [];
        await writer.write(chunks);
      }
    };
    const finish = async (): Promise<void> => {
      state = 'finished';
      await writing.catch(() => {});
      await flushed.catch(() => {});
      const taken = await opened.catch(() => undefined);
      if (taken === undefined) return;
      releaseScratch(taken);
      await close(taken);
      await rm(taken.path, { force: true });
      ownTemporaries.delete(taken.path);
    };
    return {
      write(chunk) {
        if (state !== 'open') throw new Error('The upload is finished');
        size += chunk.byteLength;
        // Hashed as it comes, while the body still arrives.
        hash.update(chunk);
        queued.push(chunk);
        if (queued.length === 1) {
          writing = writing.then(drain);
          writing.catch(() => {});
        }
      },
      async commit(approval) {
        if (state !== 'open') throw new Error('The upload is finished');
        state = 'committing';
        try {
          await writing;
          await drain();
          const taken = await opened;
          const sha256 = hash.digest('hex');
          const path = blobPath(sha256);
          const directory = dirname(path);
          flushed = taken.writer.finish();
          const [stored] = await Promise.all([exists(path), ensureDirectory(directory), flushed, approval]);
          releaseScratch(taken);
          if (stored) {
            await finish();
          } else {
            // The bytes are durable under the temporary name already (see above): the rename's own flush
            // is not waited for.
            await rename(taken.path, path);
            ownTemporaries.delete(taken.path);
            state = 'finished';
            settleInBackground(Promise.all([syncDirectory(directory), close(taken)]));
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
    // A package already stored costs a temporary file.
    put(bytes) {
      const pending = upload();
      pending.write(bytes);
      return pending.commit();
    },
    upload,
    async get(sha256) {
      const hash = normalise(sha256);
      if (hash === null) return null;
      const read = async () => {
        const buffer = await readFile(blobPath(hash));
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      };
      try {
        return await read();
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      return (await recover(hash)) ? await read() : null;
    },
    async has(sha256) {
      const hash = normalise(sha256);
      return hash !== null && ((await exists(blobPath(hash))) || (await recover(hash)));
    },
    async close() {
      storeClosed = true;
      await dropSpare();
      await settling.settled();
    },
  };
};
