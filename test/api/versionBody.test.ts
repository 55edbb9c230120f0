import { randomBytes } from 'node:crypto';
import test from 'ava';
import { codeBytes, decodeCode, parseVersionBody } from '../../api/routes/versionBody.ts';

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

test('generated bodies parse exactly as JSON.parse parses them', (t) => {
  const tokens = [
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
  let seed = 7;
  const next = (below: number) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % below;
  };
  for (let sample = 0; sample < 3000; sample += 1) {
    const text = Array.from({ length: next(10) }, () => tokens[next(tokens.length)]).join('');
    const body = next(2) === 0 ? text : `{"code":${tokens[next(tokens.length)]},${text}`;
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
