import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { createFileCodeStore } from '../../../infra/codeStore/files/index.ts';

const setup = async (t: ExecutionContext) => {
  const directory = await mkdtemp(join(tmpdir(), 'strata-code-store-'));
  t.teardown(() => rm(directory, { recursive: true, force: true }));
  return { directory, store: createFileCodeStore({ directory }) };
};

const bytes = new TextEncoder().encode('PK fake zip bytes');
const sha256 = createHash('sha256').update(bytes).digest('hex');

test('put stores the bytes under their sha256 and get returns them', async (t) => {
  const { directory, store } = await setup(t);
  const stored = await store.put(bytes);
  t.deepEqual(stored, {
    sha256,
    size: bytes.byteLength,
    location: pathToFileURL(join(directory, 'sha256', sha256.slice(0, 2), `${sha256}.zip`)).href,
  });
  t.deepEqual(new Uint8Array(await readFile(fileURLToPath(stored.location))), bytes);
  t.deepEqual(await store.get(sha256), bytes);
  t.deepEqual(await store.get(sha256.toUpperCase()), bytes);
  t.true(await store.has(sha256));
});

test('storing the same bytes twice keeps one file', async (t) => {
  const { directory, store } = await setup(t);
  const [first, second] = await Promise.all([store.put(bytes), store.put(bytes)]);
  const third = await store.put(bytes.slice());
  t.deepEqual(second, first);
  t.deepEqual(third, first);
  t.deepEqual(await readdir(join(directory, 'sha256', sha256.slice(0, 2))), [`${sha256}.zip`]);
});

test('different bytes are stored separately', async (t) => {
  const { store } = await setup(t);
  const other = new Uint8Array([1, 2, 3]);
  const a = await store.put(bytes);
  const b = await store.put(other);
  t.not(a.sha256, b.sha256);
  t.deepEqual(await store.get(b.sha256), other);
  t.deepEqual(await store.get(a.sha256), bytes);
});

test('get and has answer null and false for an unknown hash', async (t) => {
  const { store } = await setup(t);
  t.is(await store.get('0'.repeat(64)), null);
  t.false(await store.has('0'.repeat(64)));
});

test('hashes that are not 64 hex digits are refused without touching the disk', async (t) => {
  const { store } = await setup(t);
  await store.put(bytes);
  for (const bad of ['', sha256.slice(1), `${sha256}0`, `../${sha256.slice(3)}`, `${sha256.slice(0, 63)}g`]) {
    t.is(await store.get(bad), null, bad);
    t.false(await store.has(bad), bad);
  }
});

test('an empty package round-trips', async (t) => {
  const { store } = await setup(t);
  const stored = await store.put(new Uint8Array());
  t.is(stored.size, 0);
  t.deepEqual(await store.get(stored.sha256), new Uint8Array());
});
