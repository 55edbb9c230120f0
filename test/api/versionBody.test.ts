import { randomBytes } from 'node:crypto';
import test from 'ava';
import {
  codeBytes,
  codeUpload,
  decodeCode,
  parseVersionBody,
  versionBodyReader,
} from '../../api/routes/versionBody.ts';
import type { CodeUpload } from '../../domain/ports.ts';

const jsonParse = (bytes: Buffer): unknown => {
  const text = new TextDecoder().decode(bytes);
  return text.trim() === '' ? {} : JSON.parse(text);
};

/** The value or the error message of a parse. */
const outcome = (parse: (bytes: Buffer) => unknown, text: string) => {
  try {
    return { value: parse(Buffer.from(text)) };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

const ZIP = randomBytes(3000);
const CODE = ZIP.toString('base64');

const BODIES = [
  `{"code":"${CODE}"}`,
  ` \n{ "description" : "first", "code" :\t"${CODE}" , "environment": {"A": "b", "code": "QUJD"} }\r\n`,
  `{"environment":{"nested":[1,{"code":"}"}]},"code":"${CODE}","description":"a \\"quoted\\" \\\\ text"}`,
  `{"code":"QUJD","code":"${CODE}"}`,
  `{"co\\u0064e":"${CODE}"}`,
  `{"code":"QU\\/D"}`,
  `{"code":"QUJ D"}`,
  `{"code":"Q-_D"}`,
  `{"code":"QQ=="}`,
  `{"code":"QR=="}`,
  `{"code":""}`,
  `{"code":123}`,
  `{"code":["${CODE}"]}`,
  `{"description":"x"}`,
  `["${CODE}"]`,
  `"${CODE}"`,
  `\ufeff{"code":"${CODE}"}`,
  '',
  '  ',
  `{"code":"${CODE}"}x`,
  `{"code":"${CODE}",}`,
  `{"code":"${CODE}" "description":"x"}`,
  `{"code":"${CODE}`,
  `{"code":"${CODE}","description":}`,
  `{"description":"x\\","code":"${CODE}"}`,
  `{"description":"\u0001","code":"${CODE}"}`,
  `{"code":"QUJD\u0001"}`,
  `{"code":"QUJD\u00e9"}`,
  `{"__proto__":{"x":1},"code":"${CODE}"}`,
  `{code:"${CODE}"}`,
];

test('a publish body parses exactly as JSON.parse parses it, errors included', (t) => {
  for (const text of BODIES) {
    t.deepEqual(outcome(parseVersionBody, text), outcome(jsonParse, text), text.slice(0, 80));
  }
});

/**
 * 3,000 bodies built from JSON tokens (valid or not), half of them starting with a `code` member, from a
 * seeded generator; `next` draws from the same sequence.
 */
const generatedBodies = function* (seed: number, tokens: readonly string[]) {
  let state = seed;
  const next = (below: number) => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state % below;
  };
  for (let sample = 0; sample < 3000; sample += 1) {
    const text = Array.from({ length: next(10) }, () => tokens[next(tokens.length)]).join('');
    yield { body: next(2) === 0 ? text : `{"code":${tokens[next(tokens.length)]},${text}`, next };
  }
};
const TOKENS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  ' ',
  '"code"',
  '"x"',
  `"${CODE}"`,
  '"QUJD"',
  '"\\""',
  '"\\\\"',
  '1',
  'null',
];

test('generated bodies parse exactly as JSON.parse parses them', (t) => {
  for (const { body } of generatedBodies(7, TOKENS)) {
    t.deepEqual(outcome(parseVersionBody, body), outcome(jsonParse, body), body.slice(0, 80));
  }
});

test('the code of a parsed body decodes to the ZIP, whichever way it was parsed', (t) => {
  for (const text of [
    `{"code":"${CODE}"}`,
    `{"co\\u0064e":"${CODE}"}`,
    `{"code":"${CODE.slice(0, 40)}\\/${CODE.slice(41)}"}`,
  ]) {
    const body = parseVersionBody(Buffer.from(text)) as { code: string };
    t.deepEqual(Buffer.from(codeBytes(body)), Buffer.from(body.code, 'base64'));
  }
  t.deepEqual(Buffer.from(codeBytes(parseVersionBody(Buffer.from(`{"code":"${CODE}"}`)) as { code: string })), ZIP);
});

test('code must be strict base64', (t) => {
  for (const code of ['QUJD', 'QUJDRA==', 'QUJDREU=', 'QR==', '']) {
    t.deepEqual(Buffer.from(decodeCode(code)), Buffer.from(code, 'base64'), code);
  }
  for (const code of [
    'QUJ',
    'QUJD\nREVG',
    'QUJ DREV',
    'QU-D',
    'QU_D',
    'Q=JD',
    'QU=D',
    'QUJ=====',
    'QUJé',
    'QUJ\u0100',
    'QUJ\0',
  ]) {
    const error = t.throws(() => decodeCode(code), undefined, JSON.stringify(code)) as { code?: string };
    t.is(error.code, 'INVALID_CODE_PACKAGE', JSON.stringify(code));
  }
});

/** The outcome of reading `text` in pieces of `piece` bytes, with the Content-Length given or not. */
const readInPieces = (text: string, piece: number, withLength: boolean) => {
  const bytes = Buffer.from(text);
  const parser = versionBodyReader();
  if (typeof parser === 'function') throw new Error('not a reader');
  const reader = parser.begin(withLength ? bytes.byteLength : undefined);
  for (let offset = 0; offset < bytes.byteLength; offset += piece) {
    // A copy, as the socket hands over pieces of their own.
    reader.write(Buffer.from(bytes.subarray(offset, offset + piece)));
  }
  try {
    return { value: reader.end() };
  } catch (error) {
    return { error: (error as Error).message };
  }
};

/** What a user can tell from a parsed body: its members but `code`, and the ZIP `code` decodes to (or why not). */
const observed = (outcome: { value?: unknown; error?: string }) => {
  if (outcome.error !== undefined || typeof outcome.value !== 'object' || outcome.value === null) return outcome;
  const { code, ...others } = outcome.value as { code?: unknown };
  if (typeof code !== 'string') return { value: outcome.value };
  try {
    return { others, zip: Buffer.from(codeBytes(outcome.value as { code: string })).toString('hex') };
  } catch (error) {
    return { others, codeError: (error as Error).message };
  }
};

test('a publish body read in pieces gives what JSON.parse gives, and the same ZIP or error for code', (t) => {
  const long = randomBytes(70_000).toString('base64');
  const bodies = [
    ...BODIES,
    `{"code":"${long}"}`,
    `{"description":"d","code":"${long}","environment":{"A":"1"}}`,
    `{"code":"${long}","code":"QUJD"}`,
    `{"code":"${long.slice(0, 1000)}=${long.slice(1001)}"}`,
    `{"code":"${long.slice(0, 1000)} ${long.slice(1001)}"}`,
    `{"code":"${long}"}}`,
    `{"code":"${long}",}`,
    `{"environment":{"code":"QUJD"},"code":"${long}"}`,
  ];
  for (const text of bodies) {
    const expected = observed(outcome(jsonParse, text));
    for (const piece of [1, 2, 3, 5, 7, 64, 4096, 65_536, 1 << 20]) {
      for (const withLength of [true, false]) {
        t.deepEqual(observed(readInPieces(text, piece, withLength)), expected, `${text.slice(0, 60)} in ${piece}`);
      }
    }
  }
});

test('generated bodies read in pieces give what JSON.parse gives', (t) => {
  for (const { body, next } of generatedBodies(11, [...TOKENS, '"QQ=="'])) {
    const piece = 1 + next(600);
    t.deepEqual(
      observed(readInPieces(body, piece, next(2) === 0)),
      observed(outcome(jsonParse, body)),
      body.slice(0, 80),
    );
  }
});

test('the code of a body read in pieces is decoded as it arrives, its text not kept', (t) => {
  const zip = randomBytes(100_000);
  const { value } = readInPieces(`{"description":"d","code":"${zip.toString('base64')}"}`, 65_536, true);
  t.deepEqual(value, { description: 'd', code: '' });
  t.deepEqual(Buffer.from(codeBytes(value as { code: string })), zip);
});

/** An upload that keeps what it is sent, and whether it was discarded. */
const fakeUpload = () => {
  const chunks: Buffer[] = [];
  let discarded = false;
  const upload: CodeUpload = {
    write: (chunk) => void chunks.push(Buffer.from(chunk)),
    commit: () => Promise.reject(new Error('not here')),
    discard: async () => {
      discarded = true;
    },
  };
  return { upload, bytes: () => Buffer.concat(chunks), discarded: () => discarded };
};

test('the decoded code goes to an upload as it arrives; a body read whole discards it', (t) => {
  const zip = randomBytes(200_000);
  const text = `{"code":"${zip.toString('base64')}","description":"d"}`;
  for (const [body, streamed] of [
    [text, true],
    [`{"code":"${zip.toString('base64')}","code":"QUJD"}`, false],
    [`{"code":"${zip.toString('base64')} "}`, false],
  ] as const) {
    const fake = fakeUpload();
    const parser = versionBodyReader(() => fake.upload);
    if (typeof parser === 'function') throw new Error('not a reader');
    const reader = parser.begin(undefined);
    const bytes = Buffer.from(body);
    for (let offset = 0; offset < bytes.byteLength; offset += 65_536)
      reader.write(bytes.subarray(offset, offset + 65_536));
    const value = reader.end() as { code: string };
    if (streamed) {
      t.deepEqual(fake.bytes(), zip);
      t.is(codeUpload(value), fake.upload);
      t.false(fake.discarded());
    } else {
      t.is(codeUpload(value), undefined);
      t.true(fake.discarded(), body.slice(-20));
    }
    reader.close?.();
    t.true(fake.discarded());
  }
});
