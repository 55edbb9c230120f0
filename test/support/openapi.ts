import type { ExecutionContext } from 'ava';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { OpenApiDocument } from '../../api/openapi.ts';
import type { Response } from './platform.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const DOCUMENT_ID = 'urn:strata:openapi';

type Node = Record<string, unknown>;

/** A deep copy whose local `$ref`s point into the document registered as DOCUMENT_ID. */
const anchored = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(anchored);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [
      key,
      key === '$ref' && typeof item === 'string' && item.startsWith('#') ? `${DOCUMENT_ID}${item}` : anchored(item),
    ]),
  );
};

export interface Conformance {
  /**
   * Asserts that the response is one the document promises for `method` on the path template: a
   * documented status, a documented content type, every required header, and a body its schema accepts.
   */
  check(t: ExecutionContext, method: string, template: string, response: Response<unknown>): void;
  /** `METHOD template status` of every response checked so far. */
  readonly seen: Set<string>;
}

/** Validates responses against the OpenAPI document with ajv (JSON Schema 2020-12, as OpenAPI 3.1 uses). */
export const createConformance = (document: OpenApiDocument): Conformance => {
  const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
  ajv.addSchema({ $id: DOCUMENT_ID, components: anchored(document.components) });
  const validators = new Map<string, ValidateFunction>();
  const components = document.components as Record<string, Record<string, Node>>;

  const resolve = (node: Node): Node => {
    const ref = node.$ref;
    if (typeof ref !== 'string') return node;
    const [, , kind, name] = ref.split('/');
    const target = components[kind ?? '']?.[name ?? ''];
    if (target === undefined) throw new Error(`unresolvable ${ref}`);
    return resolve(target);
  };

  const seen = new Set<string>();
  return {
    seen,
    check(t, method, template, response) {
      const operation = document.paths[template]?.[method.toLowerCase()];
      if (operation === undefined) {
        t.fail(`${method} ${template} is not documented`);
        return;
      }
      const label = `${method} ${template} ${response.status}`;
      seen.add(label);
      const documented = (operation.responses as Record<string, Node>)[String(response.status)];
      if (documented === undefined) {
        t.fail(`${label} is not a documented status: ${String(JSON.stringify(response.body)).slice(0, 2000)}`);
        return;
      }
      const expected = resolve(documented);
      for (const [name, header] of Object.entries((expected.headers ?? {}) as Record<string, Node>)) {
        if (resolve(header).required === true) t.not(response.headers.get(name), null, `${label}: header ${name}`);
      }
      const content = expected.content as Record<string, Node> | undefined;
      if (content === undefined) {
        t.is(response.body, undefined, `${label} documents no body`);
        return;
      }
      const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim() ?? '';
      const media = content[mediaType];
      if (media === undefined) {
        t.fail(`${label}: content type '${mediaType}' is not documented (${Object.keys(content).join(', ')})`);
        return;
      }
      if (mediaType !== 'application/json') return;
      const key = `${label} ${mediaType}`;
      let validate = validators.get(key);
      if (validate === undefined) {
        validate = ajv.compile(anchored(media.schema) as object);
        validators.set(key, validate);
      }
      t.true(
        validate(response.body),
        `${label}: ${ajv.errorsText(validate.errors)} in ${String(JSON.stringify(response.body)).slice(0, 2000)}`,
      );
    },
  };
};

/** `{name}` style template filled with values (each URI-encoded). */
export const fill = (template: string, values: Readonly<Record<string, string | number>> = {}): string =>
  template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for {${name}} in ${template}`);
    return encodeURIComponent(String(value));
  });
