import { createHash, randomBytes } from 'node:crypto';
import type { ExecutionContext, TestFn } from 'ava';
import type { CodeStore } from '../../domain/ports.ts';

export interface CodeStoreUnderTest {
  readonly store: CodeStore;
  /** How many copies of the blob with this hash the adapter holds (files on disk, GridFS files…). */
  readonly copies: (sha256: string) => Promise<number>;
  readonly cleanup: () => Promise<void>;
}

export type CodeStoreFactory = () => Promise<CodeStoreUnderTest>;

const sha256Of = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The behaviour every CodeStore adapter must show; runs against a fresh, empty store per test. */
export const codeStoreContract = (test: TestFn, name: string, factory: CodeStoreFactory): void => {
  const open = async (t: ExecutionContext): Promise<CodeStoreUnderTest> => {
    const opened = await factory();
    t.teardown(opened.cleanup);
    return opened;
  };

  const bytes = new TextEncoder().encode('PK fake zip bytes');
  const sha256 = sha256Of(bytes);

  test(`${name}: put stores the bytes under their sha256 and get returns them`, async (t) => {
    const { store } = await open(t);
    const stored = await store.put(bytes);
    t.is(stored.sha256, sha256);
    t.is(stored.size, bytes.byteLength);
    t.is(typeof stored.location, 'string');
    t.true(stored.location.length > 0);
    t.deepEqual(await store.get(sha256), bytes);
    t.deepEqual(await store.get(sha256.toUpperCase()), bytes);
    t.true(await store.has(sha256));
    t.true(await store.has(sha256.toUpperCase()));
  });

  test(`${name}: get answers a plain Uint8Array`, async (t) => {
    const { store } = await open(t);
    await store.put(bytes);
    const read = await store.get(sha256);
    t.true(read instanceof Uint8Array);
    t.is(read?.constructor, Uint8Array);
  });

  test(`${name}: storing the same bytes twice, at once or later, keeps one copy`, async (t) => {
    const { store, copies } = await open(t);
    const [first, second] = await Promise.all([store.put(bytes), store.put(bytes)]);
    const third = await store.put(bytes.slice());
    t.deepEqual(second, first);
    t.deepEqual(third, first);
    t.is(await copies(sha256), 1);
    t.deepEqual(await store.get(sha256), bytes);
  });

  test(`${name}: many concurrent puts of a large package end with one readable copy`, async (t) => {
    const { store, copies } = await open(t);
    const large = new Uint8Array(randomBytes(1_500_000));
    const hash = sha256Of(large);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.put(large)));
    for (const result of results) t.deepEqual(result, results[0]);
    t.is(await copies(hash), 1);
    t.true(await store.has(hash));
    t.deepEqual(await store.get(hash), large);
  });

  test(`${name}: different bytes are stored separately`, async (t) => {
    const { store } = await open(t);
    const other = new Uint8Array([1, 2, 3]);
    const a = await store.put(bytes);
    const b = await store.put(other);
    t.not(a.sha256, b.sha256);
    t.not(a.location, b.location);
    t.deepEqual(await store.get(b.sha256), other);
    t.deepEqual(await store.get(a.sha256), bytes);
  });

  test(`${name}: a view into a larger buffer stores only the viewed bytes`, async (t) => {
    const { store } = await open(t);
    const backing = new Uint8Array([9, 9, ...bytes, 9]);
    const view = backing.subarray(2, 2 + bytes.byteLength);
    const stored = await store.put(view);
    t.is(stored.sha256, sha256);
    t.is(stored.size, bytes.byteLength);
    t.deepEqual(await store.get(sha256), bytes);
  });

  test(`${name}: changing the caller's buffer after put leaves the stored package alone`, async (t) => {
    const { store } = await open(t);
    const mine = bytes.slice();
    await store.put(mine);
    mine.fill(0);
    t.deepEqual(await store.get(sha256), bytes);
  });

  test(`${name}: get and has answer null and false for an unknown hash`, async (t) => {
    const { store } = await open(t);
    t.is(await store.get('0'.repeat(64)), null);
    t.false(await store.has('0'.repeat(64)));
  });

  test(`${name}: hashes that are not 64 hex digits are refused`, async (t) => {
    const { store } = await open(t);
    await store.put(bytes);
    for (const bad of ['', sha256.slice(1), `${sha256}0`, `../${sha256.slice(3)}`, `${sha256.slice(0, 63)}g`]) {
      t.is(await store.get(bad), null, bad);
      t.false(await store.has(bad), bad);
    }
  });

  test(`${name}: an empty package round-trips`, async (t) => {
    const { store } = await open(t);
    const stored = await store.put(new Uint8Array());
    t.is(stored.size, 0);
    t.is(stored.sha256, sha256Of(new Uint8Array()));
    t.true(await store.has(stored.sha256));
    t.deepEqual(await store.get(stored.sha256), new Uint8Array());
  });
  /** Sends `bytes` through an upload in pieces of `piece` bytes. */
  const uploadInPieces = (store: CodeStore, payload: Uint8Array, piece: number) => {
    const upload = store.upload();
    for (let offset = 0; offset < payload.byteLength; offset += piece) {
      upload.write(payload.subarray(offset, offset + piece));
    }
    return upload;
  };

  test(`${name}: an upload in pieces is stored as put stores the same bytes`, async (t) => {
    const { store, copies } = await open(t);
    const large = new Uint8Array(randomBytes(1_500_000));
    const hash = sha256Of(large);
    const upload = uploadInPieces(store, large, 65_536);
    t.false(await store.has(hash), 'nothing is visible before commit');
    const stored = await upload.commit();
    t.is(stored.sha256, hash);
    t.is(stored.size, large.byteLength);
    t.deepEqual(await store.get(hash), large);
    t.deepEqual(await store.put(large), stored);
    t.is(await copies(hash), 1);
  });

  test(`${name}: uploads of bytes already stored, or of the same bytes at once, keep one copy`, async (t) => {
    const { store, copies } = await open(t);
    const put = await store.put(bytes);
    t.deepEqual(await uploadInPieces(store, bytes, 3).commit(), put);
    const large = new Uint8Array(randomBytes(300_000));
    const results = await Promise.all(Array.from({ length: 4 }, () => uploadInPieces(store, large, 10_000).commit()));
    for (const result of results) t.deepEqual(result, results[0]);
    t.is(await copies(sha256), 1);
    t.is(await copies(sha256Of(large)), 1);
    t.deepEqual(await store.get(sha256Of(large)), large);
  });

  test(`${name}: a discarded upload stores nothing, and an upload is committed once`, async (t) => {
    const { store, copies } = await open(t);
    const discarded = uploadInPieces(store, bytes, 4);
    await discarded.discard();
    await discarded.discard();
    t.false(await store.has(sha256));
    t.is(await copies(sha256), 0);
    t.throws(() => discarded.write(bytes));
    await t.throwsAsync(() => discarded.commit());

    const committed = uploadInPieces(store, bytes, 4);
    await committed.commit();
    await committed.discard();
    t.deepEqual(await store.get(sha256), bytes);
    t.throws(() => committed.write(bytes));
    await t.throwsAsync(() => committed.commit());
  });

  test(`${name}: an upload committed with an approval is stored once it resolves, and not at all when it rejects`, async (t) => {
    const { store, copies } = await open(t);
    let approve = () => {};
    const approval = new Promise<void>((resolve) => {
      approve = resolve;
    });
    const pending = uploadInPieces(store, bytes, 5).commit(approval);
    await new Promise((resolve) => setTimeout(resolve, 20));
    t.false(await store.has(sha256), 'nothing is visible while the approval is pending');
    approve();
    t.is((await pending).sha256, sha256);
    t.deepEqual(await store.get(sha256), bytes);

    const other = new Uint8Array(randomBytes(70_000));
    const refusal = new Error('refused');
    const refused = uploadInPieces(store, other, 4096);
    await t.throwsAsync(() => refused.commit(Promise.reject(refusal)), { is: refusal });
    await refused.discard();
    t.false(await store.has(sha256Of(other)));
    t.is(await copies(sha256Of(other)), 0);
  });

  test(`${name}: an empty upload round-trips`, async (t) => {
    const { store } = await open(t);
    const stored = await store.upload().commit();
    t.is(stored.size, 0);
    t.is(stored.sha256, sha256Of(new Uint8Array()));
    t.deepEqual(await store.get(stored.sha256), new Uint8Array());
  });
};
