import { Buffer } from 'node:buffer';
import { type Entry, fromBuffer, getFileNameLowLevel, type ZipFile } from 'yauzl';
import { normalisedPath, pathProblem } from '../domain/codePackage.ts';

export interface ArchiveLimits {
  /** Most entries (files and directories) the archive may hold. Default 10,000. */
  readonly maxEntries?: number;
  /** Most bytes all files may inflate to, together. Default 250 MB. */
  readonly maxTotalBytes?: number;
  /** Most bytes one file may inflate to. Default: `maxTotalBytes`. */
  readonly maxFileBytes?: number;
}

export const defaultArchiveLimits = { maxEntries: 10_000, maxTotalBytes: 250 * 1024 * 1024 } as const;

/** A code package that cannot be extracted: damaged, over a limit, or with an unsafe path. */
export class CodeArchiveError extends Error {
  readonly code = 'InvalidArchive';
  constructor(message: string) {
    super(message);
    this.name = 'CodeArchiveError';
  }
}

const openZip = (buffer: Buffer): Promise<ZipFile> =>
  new Promise((resolve, reject) => {
    // decodeStrings: false keeps yauzl from rewriting backslashes; names are decoded and checked here.
    fromBuffer(buffer, { lazyEntries: true, validateEntrySizes: true, decodeStrings: false }, (error, zip) =>
      error ? reject(error) : resolve(zip),
    );
  });

/**
 * Inflates a code package into memory: file path (normalised, `./a//b.js` → `a/b.js`) → bytes; directories
 * are left out. Sizes are enforced while inflating, not only from the headers, so a bomb with lying headers
 * is stopped as soon as it passes a limit. Rejects with a `CodeArchiveError`.
 */
export const extractZip = async (bytes: Uint8Array, limits: ArchiveLimits = {}): Promise<Map<string, Uint8Array>> => {
  const maxEntries = limits.maxEntries ?? defaultArchiveLimits.maxEntries;
  const maxTotalBytes = limits.maxTotalBytes ?? defaultArchiveLimits.maxTotalBytes;
  const maxFileBytes = Math.min(limits.maxFileBytes ?? maxTotalBytes, maxTotalBytes);
  if (bytes.byteLength === 0) throw new CodeArchiveError('not a ZIP archive: the file is empty');
  let zip: ZipFile;
  try {
    zip = await openZip(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new CodeArchiveError(`not a ZIP archive: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (zip.entryCount > maxEntries) {
    zip.close();
    throw new CodeArchiveError(`the archive has ${zip.entryCount} entries; at most ${maxEntries} are allowed`);
  }

  return new Promise((resolve, reject) => {
    const files = new Map<string, Uint8Array>();
    let totalBytes = 0;
    let finished = false;
    const fail = (message: string): void => {
      if (finished) return;
      finished = true;
      zip.close();
      reject(new CodeArchiveError(message));
    };
    const overLimit = (name: string, fileBytes: number): string | null => {
      if (fileBytes > maxFileBytes) return `"${name}" inflates to more than ${maxFileBytes} bytes`;
      if (totalBytes > maxTotalBytes) return `the archive inflates to more than ${maxTotalBytes} bytes`;
      return null;
    };

    const readFile = (entry: Entry, name: string, path: string): void => {
      zip.openReadStream(entry, (error, stream) => {
        if (finished) return;
        if (error) return fail(`"${name}" cannot be read: ${error.message}`);
        const chunks: Buffer[] = [];
        let fileBytes = 0;
        stream.on('data', (chunk: Buffer) => {
          if (finished) return;
          fileBytes += chunk.length;
          totalBytes += chunk.length;
          const problem = overLimit(name, fileBytes);
          if (problem !== null) {
            stream.destroy();
            return fail(problem);
          }
          chunks.push(chunk);
        });
        stream.on('error', (streamError: Error) => fail(`"${name}" is damaged: ${streamError.message}`));
        stream.on('end', () => {
          if (finished) return;
          files.set(path, chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks, fileBytes));
          zip.readEntry();
        });
      });
    };

    zip.on('entry', (entry: Entry) => {
      if (finished) return;
      const name = getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
      const problem = pathProblem(name);
      if (problem !== null) return fail(problem);
      const path = normalisedPath(name);
      if (name.endsWith('/')) return zip.readEntry();
      if (path === '') return fail(`"${name}" is not a file path`);
      if (files.has(path)) return fail(`"${name}" appears more than once`);
      // The declared size refuses an honest bomb before inflating anything; the stream check catches liars.
      const declared = overLimit(name, entry.uncompressedSize);
      if (declared !== null || totalBytes + entry.uncompressedSize > maxTotalBytes) {
        return fail(declared ?? `the archive inflates to more than ${maxTotalBytes} bytes`);
      }
      readFile(entry, name, path);
    });
    zip.on('error', (error: Error) => fail(`damaged ZIP archive: ${error.message}`));
    zip.on('end', () => {
      if (finished) return;
      finished = true;
      resolve(files);
    });
    zip.readEntry();
  });
};
