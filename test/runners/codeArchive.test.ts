import { deflateRawSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { strToU8, Zip, ZipPassThrough, type Zippable, zipSync } from 'fflate';
import { CodeArchiveError, extractZip } from '../../runners/codeArchive.ts';

const text = strToU8;
const decode = (bytes: Uint8Array | undefined): string => new TextDecoder().decode(bytes);

/** Rewrites every central directory header, to forge fields a ZIP writer would never produce. */
const patchCentralDirectory = (zip: Uint8Array, patch: (header: DataView) => void): Uint8Array => {
  const copy = new Uint8Array(zip); // a copy: Buffer#slice would be a view of the shared bomb
  for (let i = 0; i + 46 <= copy.length; i++) {
    if (copy[i] === 0x50 && copy[i + 1] === 0x4b && copy[i + 2] === 0x01 && copy[i + 3] === 0x02) {
      patch(new DataView(copy.buffer, i, 46));
    }
  }
  return copy;
};

class NativeDeflate extends ZipPassThrough {
  constructor(filename: string) {
    super(filename);
    this.compression = 8;
  }
  protected override process(chunk: Uint8Array<ArrayBuffer>, final: boolean): void {
    this.ondata(null, deflateRawSync(chunk, { level: 9 }), final);
  }
}

const deflated = (files: Record<string, number>): Uint8Array => {
  const chunks: Uint8Array[] = [];
  const zip = new Zip((error, chunk) => {
    if (error) throw error;
    chunks.push(chunk);
  });
  for (const [name, size] of Object.entries(files)) {
    const file = new NativeDeflate(name);
    zip.add(file);
    file.push(new Uint8Array(size), true);
  }
  zip.end();
  return Buffer.concat(chunks);
};

let bomb: Uint8Array | undefined;
/** 260 MiB of zeros in under 1 MiB, built once (deflating it takes a second). */
const zipBomb = (): Uint8Array => {
  bomb ??= deflated({ 'zeros.bin': 260 * 1024 * 1024 });
  return bomb;
};

const refusal = async (t: ExecutionContext, promise: Promise<unknown>): Promise<string> => {
  const error = await t.throwsAsync(promise, { instanceOf: CodeArchiveError });
  t.is(error?.code, 'InvalidArchive');
  return error?.message ?? '';
};

test('files are extracted under normalised paths, directories left out', async (t) => {
  const files: Zippable = {
    'index.js': text('exports.handler = () => 1;'),
    lib: { 'util.js': text('module.exports = {};'), deep: { 'data.json': text('{"a":1}') } },
    'src/ü.js': text('// unicode'),
    'empty-dir': {},
    './odd//path.js': text('x'),
  };
  const extracted = await extractZip(zipSync(files));
  t.deepEqual([...extracted.keys()].sort(), [
    'index.js',
    'lib/deep/data.json',
    'lib/util.js',
    'odd/path.js',
    'src/ü.js',
  ]);
  t.is(decode(extracted.get('lib/deep/data.json')), '{"a":1}');
  t.is(decode(extracted.get('src/ü.js')), '// unicode');
});

test('stored and deflated entries both extract', async (t) => {
  const content = 'x'.repeat(10_000);
  for (const level of [0, 9] as const) {
    const extracted = await extractZip(zipSync({ 'a.txt': text(content) }, { level }));
    t.is(decode(extracted.get('a.txt')), content);
  }
});

test('an empty archive extracts to no files', async (t) => {
  t.is((await extractZip(zipSync({}))).size, 0);
});

test('bytes that are not a ZIP archive are refused', async (t) => {
  t.regex(await refusal(t, extractZip(new Uint8Array())), /^not a ZIP archive: the file is empty/);
  t.regex(await refusal(t, extractZip(text('PK not really'))), /^not a ZIP archive/);
});

test('absolute paths and ".." segments are refused', async (t) => {
  const refuse = (name: string) => refusal(t, extractZip(zipSync({ 'ok.js': text('x'), [name]: text('y') })));
  t.is(await refuse('../evil.js'), '"../evil.js" contains a ".." segment');
  t.is(await refuse('lib/../../evil.js'), '"lib/../../evil.js" contains a ".." segment');
  t.is(await refuse('/etc/passwd'), '"/etc/passwd" is an absolute path');
  t.is(await refuse('C:\\x'), '"C:\\x" is an absolute path');
  t.is(await refuse('lib\\..\\evil.js'), '"lib\\..\\evil.js" contains a backslash');
});

test('duplicate paths are refused', async (t) => {
  const zip = zipSync({ 'lib/a.js': text('1'), './lib//a.js': text('2') });
  t.is(await refusal(t, extractZip(zip)), '"./lib//a.js" appears more than once');
});

test('more entries than allowed are refused', async (t) => {
  const files: Zippable = {};
  for (let i = 0; i < 11; i++) files[`f${i}.txt`] = text('x');
  const zip = zipSync(files, { level: 0 });
  t.is(await refusal(t, extractZip(zip, { maxEntries: 10 })), 'the archive has 11 entries; at most 10 are allowed');
  t.is((await extractZip(zip, { maxEntries: 11 })).size, 11);
});

test('an honest ZIP bomb is refused from its declared size before inflating', async (t) => {
  const zip = zipBomb();
  t.true(zip.length < 1024 * 1024);
  t.regex(await refusal(t, extractZip(zip)), /inflates to more than 262144000 bytes/);
});

test('a bomb whose headers understate its size is stopped while inflating', async (t) => {
  const zip = patchCentralDirectory(zipBomb(), (header) => header.setUint32(24, 1000, true));
  t.regex(await refusal(t, extractZip(zip)), /zeros\.bin.*(too many bytes|more than)/);
});

test('the total inflated size is capped across files', async (t) => {
  const zip = deflated({ 'a.bin': 600_000, 'b.bin': 600_000 });
  t.regex(await refusal(t, extractZip(zip, { maxTotalBytes: 1_000_000 })), /inflates to more than 1000000 bytes/);
  t.is((await extractZip(zip, { maxTotalBytes: 1_200_000 })).size, 2);
});

test('one file’s inflated size is capped', async (t) => {
  const zip = deflated({ 'small.bin': 10, 'big.bin': 600_000 });
  t.is(await refusal(t, extractZip(zip, { maxFileBytes: 500_000 })), '"big.bin" inflates to more than 500000 bytes');
});

test('corrupt compressed data is refused', async (t) => {
  const corrupt = zipSync({ 'a.txt': text('x'.repeat(1000)) });
  const localHeader = new DataView(corrupt.buffer);
  const dataStart = 30 + localHeader.getUint16(26, true) + localHeader.getUint16(28, true);
  corrupt.fill(0xff, dataStart, dataStart + localHeader.getUint32(18, true));
  t.regex(await refusal(t, extractZip(corrupt)), /"a\.txt"/);
});

test('encrypted entries are refused', async (t) => {
  const zip = patchCentralDirectory(zipSync({ 'secret.js': text('x'.repeat(100)) }), (header) =>
    header.setUint16(8, header.getUint16(8, true) | 1, true),
  );
  t.regex(await refusal(t, extractZip(zip)), /"secret\.js" cannot be read/);
});
