import { createHash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import { GridFSBucket, type MongoClient, ObjectId } from 'mongodb';
import type { CodeStore } from '../../../domain/ports.ts';
import {
  isDuplicateKeyError,
  type MongoLogger,
  openDatabase,
  translateMongoError,
} from '../../readStore/mongo/connection.ts';

export interface GridFsCodeStoreOptions {
  /** e.g. `mongodb://127.0.0.1:27017/strata`. */
  readonly url: string;
  /** Database to use; defaults to the one named in `url`, else `strata`. */
  readonly database?: string;
  /** GridFS bucket: files in `<bucket>.files`, chunks in `<bucket>.chunks`. Default `code`. */
  readonly bucketName?: string;
  /** How long an operation waits for a reachable server before failing with `UNAVAILABLE`. Default 5 s. */
  readonly serverSelectionTimeoutMs?: number;
  /** How long an operation waits for the answer of a server that hangs. Default 20 s. */
  readonly socketTimeoutMs?: number;
  /** A client to share (e.g. with the MongoDB read store); `close` then leaves it open. */
  readonly client?: MongoClient;
  readonly logger?: MongoLogger;
}

export interface GridFsCodeStore extends CodeStore {
  /**
   * Reaches the server once (a `ping`, within `serverSelectionTimeoutMs`); rejects with one
   * `ServiceUnreachableError` naming MongoDB and the address. Optional: operations connect by themselves.
   */
  connect(): Promise<void>;
  close(): Promise<void>;
}

interface FilesDocument {
  _id: ObjectId;
  filename: string;
  length: number;
}

const sha256Pattern = /^[0-9a-f]{64}$/;
const bucketPattern = /^[A-Za-z0-9_]+$/;

const normalise = (sha256: string): string | null => {
  const lower = sha256.toLowerCase();
  return sha256Pattern.test(lower) ? lower : null;
};

/**
 * Code packages in a GridFS bucket, named by their sha256. Each upload goes to a fresh ObjectId and the
 * files collection holds a unique index on `filename`, so the files document (written by GridFS after the
 * last chunk) is what publishes a package, and at most one is ever published per hash: a put that loses a
 * race drops its own chunks and answers with the winner's. A crash mid-upload leaves chunks nothing refers
 * to, never a half-readable package. The client connects lazily: the first operation reaches the server
 * (or `connect`, to fail start-up early); an outage fails operations with `StoreError` `UNAVAILABLE`.
 */
export const createGridFsCodeStore = (options: GridFsCodeStoreOptions): GridFsCodeStore => {
  const bucketName = options.bucketName ?? 'code';
  if (!bucketPattern.test(bucketName)) throw new Error(`Invalid bucket name: ${JSON.stringify(bucketName)}`);
  const { client, db, ownsClient, address, connect, ping } = openDatabase(options);
  const bucket = new GridFSBucket(db, { bucketName });
  const files = db.collection<FilesDocument>(`${bucketName}.files`);
  const chunks = db.collection(`${bucketName}.chunks`);
  const location = (sha256: string): string => `gridfs://${bucketName}/${sha256}`;
  let closed = false;

  let indexed: Promise<void> | undefined;
  const ensureUniqueNames = (): Promise<void> => {
    indexed ??= files
      .createIndex({ filename: 1 }, { unique: true, name: 'filename_unique' })
      .then(() => undefined)
      .catch((error: unknown) => {
        indexed = undefined;
        throw error;
      });
    return indexed;
  };

  const run = async <T>(operation: () => Promise<T>): Promise<T> => {
    if (closed) throw new Error('The GridFS code store is closed');
    try {
      await connect();
      return await operation();
    } catch (error) {
      throw translateMongoError(error, address);
    }
  };

  const find = (sha256: string) => files.findOne({ filename: sha256 }, { projection: { _id: 1, length: 1 } });

  const upload = async (sha256: string, bytes: Uint8Array): Promise<void> => {
    const id = new ObjectId();
    const stream = bucket.openUploadStreamWithId(id, sha256, { metadata: { contentType: 'application/zip' } });
    try {
      stream.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      await finished(stream);
    } catch (error) {
      await chunks.deleteMany({ files_id: id }).catch(() => {});
      // Another put published the same bytes first: theirs is the copy.
      if (isDuplicateKeyError(error)) return;
      throw error;
    }
  };

  const store: GridFsCodeStore = {
    async connect() {
      if (closed) throw new Error('The GridFS code store is closed');
      await ping();
    },
    put: (bytes) =>
      run(async () => {
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        await ensureUniqueNames();
        if ((await find(sha256)) === null) await upload(sha256, bytes);
        return { sha256, size: bytes.byteLength, location: location(sha256) };
      }),
    // GridFS takes a package in one piece: the upload keeps the bytes and puts them on commit.
    upload() {
      let chunks: Uint8Array[] | undefined = [];
      return {
        write(chunk) {
          if (chunks === undefined) throw new Error('The upload is finished');
          chunks.push(chunk);
        },
        async commit(approval) {
          if (chunks === undefined) throw new Error('The upload is finished');
          const bytes = Buffer.concat(chunks);
          chunks = undefined;
          await approval;
          return store.put(bytes);
        },
        async discard() {
          chunks = undefined;
        },
      };
    },
    get: (sha256) =>
      run(async () => {
        const hash = normalise(sha256);
        if (hash === null) return null;
        const file = await find(hash);
        if (file === null) return null;
        const parts: Buffer[] = [];
        for await (const part of bucket.openDownloadStream(file._id)) parts.push(part as Buffer);
        const buffer = Buffer.concat(parts);
        return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      }),
    has: (sha256) =>
      run(async () => {
        const hash = normalise(sha256);
        return hash !== null && (await find(hash)) !== null;
      }),
    async close() {
      if (closed) return;
      closed = true;
      if (ownsClient) await client.close();
    },
  };
  return store;
};
