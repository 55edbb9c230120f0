import { Buffer } from 'node:buffer';
import { type Entry, fromBufferPromise, getFileNameLowLevel } from 'yauzl';
import { normalisedPath, pathProblem } from '../../domain/codePackage.ts';

export interface ZipLimits {
  /** Most entries (files and directories) a package may hold. */
  readonly maxEntries: number;
  /** Most bytes the entries may declare once uncompressed, all together. */
  readonly maxUncompressedBytes: number;
}

export const defaultZipLimits: ZipLimits = { maxEntries: 10_000, maxUncompressedBytes: 250 * 1024 * 1024 };

export type ZipInspection =
  | {
      readonly ok: true;
      /** Paths of the files (directories left out), normalised: `./a//b.js` is listed as `a/b.js`. */
      readonly files: string[];
      readonly entryCount: number;
      /** Sum of the sizes the entries declare once uncompressed. */
      readonly uncompressedSize: number;
    }
  | { readonly ok: false; readonly reason: string };

const refuse = (reason: string): ZipInspection => ({ ok: false, reason });

const errorMessage = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/**
 * Checks a code package from its central directory alone, without inflating anything: a ZIP bomb is refused
 * from the sizes its entries declare. Declared sizes can lie, so extraction must still enforce them while
 * inflating (yauzl's `validateEntrySizes`, on by default, fails a stream that outgrows its declared size).
 */
export const inspectZip = async (bytes: Uint8Array, limits: Partial<ZipLimits> = {}): Promise<ZipInspection> => {
  const { maxEntries, maxUncompressedBytes } = { ...defaultZipLimits, ...limits };
  if (bytes.byteLength === 0) return refuse('not a ZIP archive: the file is empty');
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let zip: Awaited<ReturnType<typeof fromBufferPromise>>;
  try {
    // decodeStrings: false keeps yauzl from rewriting backslashes and from refusing names with its own
    // messages; the names are decoded and checked below.
    zip = await fromBufferPromise(buffer, { lazyEntries: true, decodeStrings: false });
  } catch (error) {
    return refuse(`not a ZIP archive: ${errorMessage(error)}`);
  }
  if (zip.entryCount > maxEntries) {
    zip.close();
    return refuse(`the archive has ${zip.entryCount} entries; at most ${maxEntries} are allowed`);
  }

  const files: string[] = [];
  const seen = new Set<string>();
  let uncompressedSize = 0;
  const entryProblem = (entry: Entry): string | null => {
    const name = getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, true);
    const problem = pathProblem(name);
    if (problem !== null) return problem;
    const isDirectory = name.endsWith('/');
    const path = normalisedPath(name);
    if (path === '' && !isDirectory) return `"${name}" is not a file path`;
    if (entry.isEncrypted()) return `"${name}" is encrypted`;
    if (entry.compressionMethod !== 0 && entry.compressionMethod !== 8) {
      return `"${name}" uses unsupported compression method ${entry.compressionMethod}`;
    }
    if (path !== '' && seen.has(path)) return `"${name}" appears more than once`;
    seen.add(path);
    uncompressedSize += entry.uncompressedSize;
    if (uncompressedSize > maxUncompressedBytes) {
      return `the entries declare more than ${maxUncompressedBytes} bytes uncompressed`;
    }
    if (!isDirectory) files.push(path);
    return null;
  };

  try {
    for await (const entry of zip.eachEntry()) {
      const problem = entryProblem(entry);
      if (problem !== null) return refuse(problem);
    }
  } catch (error) {
    return refuse(`damaged ZIP archive: ${errorMessage(error)}`);
  }
  return { ok: true, files, entryCount: zip.entryCount, uncompressedSize };
};
