import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FieldProblem } from '../domain/shared/errors.ts';
import { ApiError } from './errors.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** `x-message` on a schema is the message a client gets when a value breaks it (api/schemas.ts). */
const withMessages = (ajv: Ajv): Ajv => {
  ajv.addKeyword({ keyword: 'x-message', schemaType: 'string' });
  return addFormats(ajv);
};

// verbose: errors carry the schema that failed, and so its `x-message`.
const bodies = withMessages(
  new Ajv({ allErrors: true, strict: true, strictRequired: false, useDefaults: true, verbose: true }),
);
const queries = withMessages(
  new Ajv({ allErrors: true, strict: true, useDefaults: true, coerceTypes: true, verbose: true }),
);

/** The failing schema's `x-message`; a wrong type keeps ajv's own message. */
const customMessage = (error: ErrorObject): string | undefined => {
  if (error.keyword === 'type') return undefined;
  const message = (error.parentSchema as Record<string, unknown> | undefined)?.['x-message'];
  return typeof message === 'string' ? message : undefined;
};

const fieldOf = (error: ErrorObject): string => {
  const path = error.instancePath.replace(/^\//, '').replaceAll('/', '.');
  const params = error.params as Record<string, unknown>;
  const child =
    (params.missingProperty as string | undefined) ??
    (params.additionalProperty as string | undefined) ??
    (params.propertyName as string | undefined) ??
    (error as { propertyName?: string }).propertyName;
  if (child !== undefined) return path === '' ? child : `${path}.${child}`;
  return path === '' ? 'body' : path;
};

const messageOf = (error: ErrorObject): string => {
  const custom = customMessage(error);
  if (custom !== undefined) return custom;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return `${String(params.missingProperty)} is required`;
    case 'additionalProperties':
      return `Unknown field '${String(params.additionalProperty)}'`;
    case 'enum':
      return `Must be one of: ${(params.allowedValues as unknown[]).join(', ')}`;
    case 'minProperties':
      return 'Give at least one field';
    default:
      return error.message ?? 'Invalid value';
  }
};

export const problemsOf = (errors: readonly ErrorObject[]): FieldProblem[] => {
  const seen = new Set<string>();
  const problems: FieldProblem[] = [];
  for (const error of errors) {
    // `if` only says which `then` failed, and `propertyNames` which name: the errors inside say why.
    if (error.keyword === 'if' || error.keyword === 'propertyNames' || error.schemaPath.includes('/anyOf/')) continue;
    if (error.keyword === 'anyOf' && customMessage(error) === undefined) {
      const alternatives = errors
        .filter((branch) => branch.schemaPath.startsWith(`${error.schemaPath}/`) && branch.keyword === 'required')
        .map((branch) => String((branch.params as Record<string, unknown>).missingProperty));
      problems.push({
        field: alternatives[0] ?? fieldOf(error),
        message: alternatives.length > 0 ? `Give ${alternatives.join(' or ')}` : 'Matches none of the allowed forms',
      });
      continue;
    }
    const problem = { field: fieldOf(error), message: messageOf(error) };
    const key = `${problem.field}\u0000${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  if (problems.length === 0 && errors.length > 0) problems.push({ field: 'body', message: 'Invalid request' });
  return problems;
};

export type Validator = (value: unknown) => unknown;

const compiled = (ajv: Ajv, schema: object, what: string): Validator => {
  const validate: ValidateFunction = ajv.compile(schema);
  return (value) => {
    if (!validate(value))
      throw new ApiError('VALIDATION_ERROR', `Request ${what} validation failed`, problemsOf(validate.errors ?? []));
    return value;
  };
};

export const bodyValidator = (schema: object): Validator => compiled(bodies, schema, 'body');
export const queryValidator = (schema: object): Validator => compiled(queries, schema, 'query');
