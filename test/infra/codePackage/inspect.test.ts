import { deflateRawSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { type Zippable, Zip, ZipPassThrough, strToU8, zipSync } from 'fflate';
import { inspectZip } from '../../../infra/codePackage/inspect.ts';

const text = strToU8;

const centralDirectorySignature = [0x50, 0x4b, 0x01, 0x02];

/** Offsets of the central directory headers, to forge fields that zip writers would never produce. */
const centralDirectoryHeaders = (zip: Uint8Array): number[] => {
  const offsets: number[] = [];
  for (let i = 0; i + 4 <= zip.length; i++) {
    if (centralDirectorySignature.every((byte, j) => zip[i + j] === byte)) offsets.push(i);
  }
  return offsets;
};

const patchHeaders = (zip: Uint8Array, patch: (header: DataView) => void): Uint8Array => {
  const copy = zip.slice();
  for (const offset of centralDirectoryHeaders(copy)) patch(new DataView(copy.buffer, offset, 46));
  return copy;
};

const replaceBytes = (zip: Uint8Array, from: string, to: string): Uint8Array => {
  const copy = zip.slice();
  const [needle, replacement] = [text(from), text(to)];
  for (let i = 0; i + needle.length <= copy.length; i++) {
    if (needle.every((byte, j) => copy[i + j] === byte)) copy.set(replacement, i);
  }
  return copy;
};

const refusal = async (t: ExecutionContext, zip: Uint8Array): Promise<string> => {
  const result = await inspectZip(zip);
  t.is(result.ok, false);
  return result.ok ? '' : result.reason;
};

/** Deflates with node's zlib: a genuine 260 MiB bomb is built in about a second instead of several. */
class NativeDeflate extends ZipPassThrough {
  constructor(filename: string) {
    super(filename);
    this.compression = 8;
  }
  protected override process(chunk: Uint8Array<ArrayBuffer>, final: boolean): void {
    this.ondata(null, deflateRawSync(chunk, { level: 9 }), final);
  }
}

const bomb = (size: number): Uint8Array => {
  const chunks: Uint8Array[] = [];
  const zip = new Zip((error, chunk) => {
    if (error) throw error;
    chunks.push(chunk);
  });
  const file = new NativeDeflate('zeros.bin');
  zip.add(file);
  file.push(new Uint8Array(size), true);
  zip.end();
  return Buffer.concat(chunks);
};

const validFiles: Zippable = {
  'index.js': text('export const handler = () => 42;\n'),
  lib: { 'util.js': text('export {};\n'), deep: { 'data.json': text('{"a":1}') } },
  'src/ü.js': text('// unicode name\n'),
  'empty-dir': {},
};

test('a valid archive lists its files, leaves out directories and sums the declared sizes', async (t) => {
  const result = await inspectZip(zipSync(validFiles));
  t.deepEqual(result, {
    ok: true,
    files: ['index.js', 'lib/util.js', 'lib/deep/data.json', 'src/ü.js'],
    entryCount: 7,
    uncompressedSize: 33 + 11 + 7 + 16,
  });
});

test('file paths are listed normalised', async (t) => {
  const result = await inspectZip(zipSync({ './a//b.js': text('x'), 'c.js': text('y') }, { level: 0 }));
  t.deepEqual(result, { ok: true, files: ['a/b.js', 'c.js'], entryCount: 2, uncompressedSize: 2 });
});

test('bytes that are not a ZIP archive are refused', async (t) => {
  const random = new Uint8Array(4096);
  crypto.getRandomValues(random);
  t.regex(await refusal(t, random), /^not a ZIP archive/);
  t.regex(await refusal(t, new Uint8Array()), /^not a ZIP archive: the file is empty/);
  t.regex(await refusal(t, text('PK not really')), /^not a ZIP archive/);
});

test('a truncated archive is refused', async (t) => {
  const zip = zipSync(validFiles);
  t.regex(await refusal(t, zip.subarray(0, zip.length - 10)), /^not a ZIP archive/);
  t.regex(await refusal(t, zip.subarray(0, zip.length / 2)), /^not a ZIP archive/);
  t.regex(await refusal(t, zip.subarray(40)), /^damaged ZIP archive/);
});

test('entries that would land outside the extraction directory are refused', async (t) => {
  const refuse = async (name: string) => refusal(t, zipSync({ 'ok.js': text('x'), [name]: text('y') }));
  t.is(await refuse('../evil.js'), '"../evil.js" contains a ".." segment');
  t.is(await refuse('lib/../../evil.js'), '"lib/../../evil.js" contains a ".." segment');
  t.is(await refuse('/abs.js'), '"/abs.js" is an absolute path');
  t.is(await refuse('/etc/passwd'), '"/etc/passwd" is an absolute path');
  t.is(await refuse('C:\\x'), '"C:\\x" is an absolute path');
  t.is(await refuse('lib\\..\\evil.js'), '"lib\\..\\evil.js" contains a backslash');
});

test('an archive with more entries than allowed is refused before its entries are read', async (t) => {
  const files: Zippable = {};
  for (let i = 0; i < 10_001; i++) files[`f${i}.txt`] = new Uint8Array();
  const zip = zipSync(files, { level: 0 });
  t.is(await refusal(t, zip), 'the archive has 10001 entries; at most 10000 are allowed');
  const [firstHeader = 0] = centralDirectoryHeaders(zip);
  const unreadable = zip.slice().fill(0, firstHeader, firstHeader + 4);
  t.is(await refusal(t, unreadable), 'the archive has 10001 entries; at most 10000 are allowed');
  const allowed = await inspectZip(zip, { maxEntries: 10_001 });
  t.true(allowed.ok);
  t.is(allowed.ok && allowed.files.length, 10_001);
});

test('an archive of many entries is read while other work goes on: the server is not held up', async (t) => {
  const files: Zippable = {};
  for (let i = 0; i < 1_000; i++) files[`lib/f${i}.js`] = text(`module.exports = ${i};`);
  const zip = zipSync(files, { level: 0 });
  let turns = 0;
  let counting = true;
  const count = () => {
    turns += 1;
    if (counting) setImmediate(count);
  };
  setImmediate(count);
  const inspection = await inspectZip(zip);
  counting = false;
  t.true(inspection.ok);
  t.true(turns > 1, `the event loop turned ${turns} time(s) while 1,000 entries were read`);
});

test('a genuine ZIP bomb is refused from its declared size', async (t) => {
  const zip = bomb(260 * 1024 * 1024);
  t.true(zip.length < 1024 * 1024);
  t.is(await refusal(t, zip), `the entries declare more than ${250 * 1024 * 1024} bytes uncompressed`);
});

test('declared sizes are summed over all entries', async (t) => {
  const zip = zipSync({ 'a.bin': text('a'), 'b.bin': text('b'), 'c.bin': text('c') });
  const forged = patchHeaders(zip, (header) => header.setUint32(24, 100 * 1024 * 1024, true));
  t.is(await refusal(t, forged), `the entries declare more than ${250 * 1024 * 1024} bytes uncompressed`);
  const small = await inspectZip(zip, { maxUncompressedBytes: 2 });
  t.deepEqual(small, { ok: false, reason: 'the entries declare more than 2 bytes uncompressed' });
});

test('inspection reads only the central directory: corrupt compressed data goes unnoticed', async (t) => {
  const corrupt = zipSync({ 'a.txt': text('x'.repeat(1000)) });
  const localHeader = new DataView(corrupt.buffer);
  const dataStart = 30 + localHeader.getUint16(26, true) + localHeader.getUint16(28, true);
  corrupt.fill(0xff, dataStart, dataStart + localHeader.getUint32(18, true));
  t.deepEqual(await inspectZip(corrupt), { ok: true, files: ['a.txt'], entryCount: 1, uncompressedSize: 1000 });
});

test('encrypted entries are refused', async (t) => {
  const zip = patchHeaders(zipSync({ 'secret.js': text('x'.repeat(100)) }), (header) =>
    header.setUint16(8, header.getUint16(8, true) | 1, true),
  );
  t.is(await refusal(t, zip), '"secret.js" is encrypted');
});

test('entries compressed with a method other than store or deflate are refused', async (t) => {
  const zip = patchHeaders(zipSync({ 'a.js': text('x'.repeat(100)) }), (header) => header.setUint16(10, 12, true));
  t.is(await refusal(t, zip), '"a.js" uses unsupported compression method 12');
});

test('duplicate paths are refused', async (t) => {
  const zip = replaceBytes(zipSync({ 'a.js': text('1'), 'b.js': text('2') }), 'b.js', 'a.js');
  t.is(await refusal(t, zip), '"a.js" appears more than once');
  t.is(
    await refusal(t, zipSync({ 'lib/a.js': text('1'), './lib//a.js': text('2') })),
    '"./lib//a.js" appears more than once',
  );
});
