import { readFileSync } from 'node:fs';
import test from 'ava';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { INVOCATION_REQUEST_SCHEMA, RUNNER_GROUP, TOPICS } from '../../domain/invocation/messages.ts';

// The README documents the invocation request schema for producers outside Strata: it must be the schema
// the runners validate with, so that the documentation cannot drift from the code.

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** The README's section under the given `## ` heading, up to the next one. */
const section = (heading: string): string => {
  const start = README.indexOf(`\n## ${heading}\n`);
  if (start === -1) throw new Error(`the README has no section "## ${heading}"`);
  const end = README.indexOf('\n## ', start + 1);
  return README.slice(start, end === -1 ? undefined : end);
};

const KAFKA = section('Invoking from Kafka directly');

test('the README shows the invocation request schema exactly as the runners validate it', (t) => {
  const block = /```json\n([\s\S]*?)\n```/.exec(KAFKA)?.[1];
  if (block === undefined) {
    t.fail('no ```json block in the README section "Invoking from Kafka directly"');
    return;
  }
  t.deepEqual(JSON.parse(block), JSON.parse(JSON.stringify(INVOCATION_REQUEST_SCHEMA)));
});

test('the README names the topics and the runners’ consumer group', (t) => {
  for (const topic of [
    TOPICS.invocations,
    TOPICS.results,
    TOPICS.deadLetters,
    TOPICS.syncInvocations,
    TOPICS.heartbeats,
  ]) {
    t.true(KAFKA.includes(`\`${topic}\``), topic);
  }
  t.true(KAFKA.includes(`\`${TOPICS.replies('<api node>')}\``));
  t.true(KAFKA.includes(`\`${RUNNER_GROUP}\``));
});

test('the README’s kcat example produces a valid request, then an invalid one', (t) => {
  const validate = addFormats(new Ajv({ allErrors: true, strict: true })).compile(INVOCATION_REQUEST_SCHEMA);
  const produced = [...KAFKA.matchAll(/printf '[^']*' '(\{[^']*\})'/g)].map((match) => JSON.parse(match[1] ?? ''));
  t.is(produced.length, 2);
  t.true(validate(produced[0]), JSON.stringify(validate.errors));
  t.false(validate(produced[1]));
});
