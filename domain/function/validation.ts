import type { FieldProblem } from '../shared/errors.ts';
import { RUNTIME_NAMES, runtimeSpec } from '../runtimes.ts';
import type { RoutingConfig } from './events.ts';

export const FUNCTION_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const ALIAS_NAME_PATTERN = /^(?!\d+$)[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;
export const ENVIRONMENT_KEY_PATTERN = /^[A-Za-z][A-Za-z0-9_]*$/;
export const TAG_PATTERN = /^[\p{L}\p{N} _.:/=+\-@]*$/u;

export const LIMITS = {
  nameLength: 64,
  descriptionLength: 256,
  memoryMin: 128,
  memoryMax: 10240,
  memoryStep: 64,
  timeoutMin: 1,
  timeoutMax: 900,
  environmentBytes: 4096,
  tagCount: 50,
  tagKeyLength: 128,
  tagValueLength: 256,
  concurrencyMax: 10_000,
  asyncRetriesMax: 10,
  maxEventAgeMin: 60,
  maxEventAgeMax: 21_600,
} as const;

export const DEFAULT_CONFIGURATION = {
  description: '',
  memorySize: 128,
  timeout: 3,
  environment: {},
  tags: {},
  concurrencyLimit: null,
  asyncRetries: 2,
  maxEventAgeSeconds: 21_600,
} as const;

const utf8Length = (text: string): number => Buffer.byteLength(text, 'utf8');

export const checkFunctionName = (name: string, problems: FieldProblem[]): void => {
  if (!FUNCTION_NAME_PATTERN.test(name)) {
    problems.push({
      field: 'name',
      message: `Name must be 1-${LIMITS.nameLength} characters: letters, digits, '-' and '_', starting with a letter or digit`,
    });
  }
};

export const checkDescription = (field: string, description: string, problems: FieldProblem[]): void => {
  if (description.length > LIMITS.descriptionLength) {
    problems.push({ field, message: `Description must be at most ${LIMITS.descriptionLength} characters` });
  }
};

export const checkRuntimeAndHandler = (runtime: string, handler: string, problems: FieldProblem[]): void => {
  const spec = runtimeSpec(runtime);
  if (spec === undefined) {
    problems.push({ field: 'runtime', message: `Runtime must be one of: ${RUNTIME_NAMES.join(', ')}` });
    return;
  }
  if (!spec.handlerPattern.test(handler)) {
    problems.push({ field: 'handler', message: `Handler for ${runtime} must be ${spec.handlerFormat}` });
  }
};

export const checkMemorySize = (memorySize: number, problems: FieldProblem[]): void => {
  if (
    !Number.isInteger(memorySize) ||
    memorySize < LIMITS.memoryMin ||
    memorySize > LIMITS.memoryMax ||
    memorySize % LIMITS.memoryStep !== 0
  ) {
    problems.push({
      field: 'memorySize',
      message: `MemorySize must be ${LIMITS.memoryMin}-${LIMITS.memoryMax} MB in ${LIMITS.memoryStep} MB increments`,
    });
  }
};

export const checkTimeout = (timeout: number, problems: FieldProblem[]): void => {
  if (!Number.isInteger(timeout) || timeout < LIMITS.timeoutMin || timeout > LIMITS.timeoutMax) {
    problems.push({
      field: 'timeout',
      message: `Timeout must be a whole number of seconds from ${LIMITS.timeoutMin} to ${LIMITS.timeoutMax}`,
    });
  }
};

export const checkEnvironment = (
  field: string,
  environment: Readonly<Record<string, string>>,
  problems: FieldProblem[],
): void => {
  let size = 0;
  for (const [key, value] of Object.entries(environment)) {
    if (!ENVIRONMENT_KEY_PATTERN.test(key)) {
      problems.push({
        field: `${field}.${key}`,
        message: 'Environment variable names must start with a letter and hold only letters, digits and _',
      });
    }
    if (typeof value !== 'string') {
      problems.push({ field: `${field}.${key}`, message: 'Environment variable values must be strings' });
      continue;
    }
    size += utf8Length(key) + utf8Length(value);
  }
  if (size > LIMITS.environmentBytes) {
    problems.push({
      field,
      message: `Environment variables must total at most ${LIMITS.environmentBytes} bytes (keys and values); got ${size}`,
    });
  }
};

export const checkTags = (tags: Readonly<Record<string, string>>, problems: FieldProblem[]): void => {
  const entries = Object.entries(tags);
  if (entries.length > LIMITS.tagCount) {
    problems.push({ field: 'tags', message: `At most ${LIMITS.tagCount} tags are allowed` });
  }
  for (const [key, value] of entries) {
    if (key.length < 1 || key.length > LIMITS.tagKeyLength || !TAG_PATTERN.test(key) || key.includes(':')) {
      problems.push({
        field: `tags.${key}`,
        message: `Tag keys must be 1-${LIMITS.tagKeyLength} characters of letters, digits, spaces and _ . / = + - @ (no ':')`,
      });
    }
    if (typeof value !== 'string' || value.length > LIMITS.tagValueLength || !TAG_PATTERN.test(value)) {
      problems.push({
        field: `tags.${key}`,
        message: `Tag values must be 0-${LIMITS.tagValueLength} characters of letters, digits, spaces and _ . : / = + - @`,
      });
    }
  }
};

export const checkAliasName = (aliasName: string, problems: FieldProblem[]): void => {
  if (!ALIAS_NAME_PATTERN.test(aliasName)) {
    problems.push({
      field: 'aliasName',
      message:
        'Alias names must be 1-128 letters, digits, - and _, starting with a letter or digit, and not all digits',
    });
  }
};

/**
 * Routing weights: integer percentages 0-100 over existing versions, summing to exactly 100, and the
 * alias's primary version among them.
 */
export const checkRouting = (
  primary: number,
  routing: RoutingConfig,
  versionExists: (version: number) => boolean,
  problems: FieldProblem[],
): void => {
  const entries = Object.entries(routing);
  if (entries.length === 0) {
    problems.push({ field: 'routingConfig', message: 'Routing must name at least one version' });
    return;
  }
  let sum = 0;
  for (const [key, weight] of entries) {
    const version = Number(key);
    if (!/^[1-9]\d*$/.test(key) || !Number.isSafeInteger(version)) {
      problems.push({ field: `routingConfig.${key}`, message: 'Routing keys must be version numbers' });
      continue;
    }
    if (!versionExists(version)) {
      problems.push({ field: `routingConfig.${key}`, message: `Version ${key} does not exist` });
    }
    if (!Number.isInteger(weight) || weight < 0 || weight > 100) {
      problems.push({ field: `routingConfig.${key}`, message: 'Weights must be whole percentages from 0 to 100' });
      continue;
    }
    sum += weight;
  }
  if (sum !== 100 && problems.every((problem) => !problem.field.startsWith('routingConfig.'))) {
    problems.push({ field: 'routingConfig', message: `Weights must sum to 100; they sum to ${sum}` });
  }
  if (routing[String(primary)] === undefined) {
    problems.push({ field: 'version', message: `The alias's version ${primary} must be one of the routed versions` });
  }
};

export const checkInvocationSettings = (
  settings: { concurrencyLimit?: number | null; asyncRetries?: number; maxEventAgeSeconds?: number },
  problems: FieldProblem[],
): void => {
  const { concurrencyLimit, asyncRetries, maxEventAgeSeconds } = settings;
  if (
    concurrencyLimit !== undefined &&
    concurrencyLimit !== null &&
    (!Number.isInteger(concurrencyLimit) || concurrencyLimit < 1 || concurrencyLimit > LIMITS.concurrencyMax)
  ) {
    problems.push({
      field: 'concurrencyLimit',
      message: `concurrencyLimit must be 1-${LIMITS.concurrencyMax}, or null for the platform default`,
    });
  }
  if (
    asyncRetries !== undefined &&
    (!Number.isInteger(asyncRetries) || asyncRetries < 0 || asyncRetries > LIMITS.asyncRetriesMax)
  ) {
    problems.push({
      field: 'asyncRetries',
      message: `asyncRetries must be a whole number from 0 to ${LIMITS.asyncRetriesMax}`,
    });
  }
  if (
    maxEventAgeSeconds !== undefined &&
    (!Number.isInteger(maxEventAgeSeconds) ||
      maxEventAgeSeconds < LIMITS.maxEventAgeMin ||
      maxEventAgeSeconds > LIMITS.maxEventAgeMax)
  ) {
    problems.push({
      field: 'maxEventAgeSeconds',
      message: `maxEventAgeSeconds must be a whole number from ${LIMITS.maxEventAgeMin} to ${LIMITS.maxEventAgeMax}`,
    });
  }
};
