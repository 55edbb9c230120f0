import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { createFileCodeStore } from '../../../infra/codeStore/files/index.ts';
import { codeStoreContract } from '../../contracts/codeStore.ts';

const temporaryDirectory = () => mkdtemp(join(tmpdir(), 'strata-code-store-'));

const countFiles = async (directory: string, sha256: string): Promise<number> => {
  try {
    return (await readdir(join(directory, 'sha256', sha256.slice(0, 2)))).filter((name) => name.startsWith(sha256))
      .length;
  } catch {
    return 0;
  }
};

/** A store in a directory of its own, removed with it. */
const contractStore = (options: { directWrites?: boolean }) => async () => {
  const directory = await temporaryDirectory();
  const store = createFileCodeStore({ directory, ...options });
  return {
    store,
    copies: (sha256: string) => countFiles(directory, sha256),
    cleanup: async () => {
      await store.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
};

codeStoreContract(test, 'files', contractStore({}));
codeStoreContract(test, 'files (buffered writes)', contractStore({ directWrites: false }));

const setup = async (t: ExecutionContext) => {
  const directory = await temporaryDirectory();
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  const store = createFileCodeStore({ directory });
  t.teardown(() => store.close());
  return { directory, store };
};

/**
 * The temporary files under the root, but for the one the store prepares for its next upload (empty, as it
 * is never written before an upload takes it).
 */
const leftovers = async (directory: string): Promise<string[]> => {
  const root = join(directory, 'sha256');
  const temporaries = (await readdir(root)).filter((name) => name.endsWith('.tmp'));
  const sizes = await Promise.all(temporaries.map(async (name) => (await stat(join(root, name))).size));
  const empty = temporaries.filter((_, index) => sizes[index] === 0);
  return temporaries.filter((name) => !(empty.length === 1 && name === empty[0]));
};

const bytes = new TextEncoder().encode('PK fake zip bytes');
const sha256 = createHash('sha256').update(bytes).digest('hex');

test('files: the location is a file: URL of the blob, under sha256/<first two hex digits>/', async (t) => {
  const { directory, store } = await setup(t);
  const stored = await store.put(bytes);
  t.is(stored.location, pathToFileURL(join(directory, 'sha256', sha256.slice(0, 2), `${sha256}.zip`)).href);
  t.deepEqual(new Uint8Array(await readFile(fileURLToPath(stored.location))), bytes);
});

test('files: concurrent puts of the same bytes leave one file and no temporary files', async (t) => {
  const { directory, store } = await setup(t);
  await Promise.all([store.put(bytes), store.put(bytes), store.put(bytes)]);
  t.deepEqual(await readdir(join(directory, 'sha256', sha256.slice(0, 2))), [`${sha256}.zip`]);
  t.deepEqual(await leftovers(directory), []);
});

test('files: uploads leave no temporary files, whether committed, discarded or already stored', async (t) => {
  const { directory, store } = await setup(t);
  const discarded = store.upload();
  discarded.write(bytes);
  await discarded.discard();
  for (let copy = 0; copy < 2; copy += 1) {
    const upload = store.upload();
    upload.write(bytes.subarray(0, 5));
    upload.write(bytes.subarray(5));
    await upload.commit();
  }
  const files = await readdir(join(directory, 'sha256'), { recursive: true });
  t.deepEqual(files.filter((name) => !name.endsWith('.tmp')).sort(), [
    sha256.slice(0, 2),
    join(sha256.slice(0, 2), `${sha256}.zip`),
  ]);
  t.deepEqual(await leftovers(directory), []);
  await store.close();
  t.deepEqual(
    (await readdir(join(directory, 'sha256'))).filter((name) => name.endsWith('.tmp')),
    [],
    'closing the store removes the file it prepared',
  );
});

test('files: temporary files an hour old, left by a stopped process, are removed by the next one', async (t) => {
  const { directory, store } = await setup(t);
  await store.put(bytes);
  const root = join(directory, 'sha256');
  const prepared = join(root, 'upload-prepared-by-a-stopped-process.tmp');
  const recent = join(root, 'upload-of-another-process.tmp');
  await writeFile(prepared, '');
  await writeFile(recent, 'in progress');
  const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
  await utimes(prepared, hourAgo, hourAgo);
  const next = createFileCodeStore({ directory });
  await next.put(new TextEncoder().encode('another package'));
  await next.close();
  const names = await readdir(root);
  t.false(names.includes('upload-prepared-by-a-stopped-process.tmp'));
  t.true(names.includes('upload-of-another-process.tmp'), 'a recent one may be an upload still running');
});

/** Puts a package, then undoes its rename as a crash before the directory's flush could: the bytes are left under a temporary name. */
const loseRename = async (directory: string, store: ReturnType<typeof createFileCodeStore>, content: Uint8Array) => {
  const stored = await store.put(content);
  await store.close();
  const temporary = join(directory, 'sha256', 'upload-committed-before-a-crash.tmp');
  await rename(fileURLToPath(stored.location), temporary);
  return { stored, temporary };
};

test('files: a package whose rename a crash lost is found again by its hash among the temporary files', async (t) => {
  const { directory, store } = await setup(t);
  const content = randomBytes(300_000);
  const { stored } = await loseRename(directory, store, content);
  const restarted = createFileCodeStore({ directory });
  t.teardown(() => restarted.close());
  t.true(await restarted.has(stored.sha256));
  t.deepEqual(Buffer.from((await restarted.get(stored.sha256)) ?? []), content);
  t.deepEqual(await readFile(fileURLToPath(stored.location)), content, 'the blob is back under its own name');
  t.is(await restarted.get(createHash('sha256').update('never stored').digest('hex')), null);
});

test('files: a lost rename an hour old is put in place before its temporary file is removed', async (t) => {
  const { directory, store } = await setup(t);
  const content = randomBytes(70_000);
  const { stored, temporary } = await loseRename(directory, store, content);
  const hourAgo = new Date(Date.now() - 61 * 60 * 1000);
  await utimes(temporary, hourAgo, hourAgo);
  const next = createFileCodeStore({ directory });
  t.teardown(() => next.close());
  await next.put(new TextEncoder().encode('another package'));
  t.deepEqual(await leftovers(directory), []);
  t.deepEqual(await readFile(fileURLToPath(stored.location)), content);
});

test('files: packages of every size around the block and scratch sizes are stored byte for byte', async (t) => {
  const { directory, store } = await setup(t);
  const mib = 1024 * 1024;
  const segment = 256 * 1024;
  for (const size of [
    1,
    511,
    4095,
    4096,
    4097,
    segment - 1,
    segment,
    segment + 1,
    3 * segment + 4095,
    mib - 1,
    mib,
    mib + 1,
    2 * mib + 4096,
    2.5 * mib + 7,
  ]) {
    const payload = new Uint8Array(randomBytes(size));
    const hash = createHash('sha256').update(payload).digest('hex');
    const upload = store.upload();
    for (let offset = 0; offset < size; offset += 65_536) upload.write(payload.subarray(offset, offset + 65_536));
    const uploaded = await upload.commit();
    t.is(uploaded.sha256, hash, `upload of ${size}`);
    t.is(uploaded.size, size);
    t.deepEqual(new Uint8Array(await readFile(fileURLToPath(uploaded.location))), payload, `upload of ${size}`);
    const copy = new Uint8Array(randomBytes(size));
    const put = await store.put(copy);
    t.deepEqual(await store.get(put.sha256), copy, `put of ${size}`);
  }
  t.deepEqual(await leftovers(directory), []);
});
