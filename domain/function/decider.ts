import type { Decider, Decision } from '../shared/decider.ts';
import { assertNever, conflict, type FieldProblem, notFound, validationError, domainError } from '../shared/errors.ts';
import { runtimeSpec } from '../runtimes.ts';
import type { FunctionConfiguration, FunctionEvent, RoutingConfig } from './events.ts';
import {
  checkAliasName,
  checkDescription,
  checkEnvironment,
  checkFunctionName,
  checkMemorySize,
  checkRouting,
  checkRuntimeAndHandler,
  checkInvocationSettings,
  checkTags,
  checkTimeout,
  DEFAULT_CONFIGURATION,
} from './validation.ts';

export interface VersionState {
  readonly version: number;
  readonly runtime: string;
  readonly handler: string;
}

export interface AliasState {
  readonly aliasName: string;
  readonly version: number;
  readonly routingConfig: RoutingConfig;
  readonly description: string;
}

export interface FunctionState {
  /** `absent`: never created or purged; `deleted`: soft-deleted, name reserved until `purgeAfter`. */
  readonly status: 'absent' | 'active' | 'deleted';
  readonly name: string;
  readonly configuration: FunctionConfiguration | null;
  readonly publishedVersion: number | null;
  /** Highest version number ever published under this name; numbers are never reused. */
  readonly lastVersion: number;
  readonly versions: Readonly<Record<string, VersionState>>;
  readonly aliases: Readonly<Record<string, AliasState>>;
  readonly purgeAfter: string | null;
}

export type ConfigurationChanges = Partial<FunctionConfiguration> & { readonly publishedVersion?: number | null };

export interface CodePackage {
  readonly sha256: string;
  readonly size: number;
  readonly location: string;
  /** Paths of the files inside the ZIP (directories excluded). */
  readonly files: readonly string[];
}

export type FunctionCommand =
  | {
      readonly type: 'CreateFunction';
      readonly name: string;
      readonly ownerId: string;
      readonly configuration: Partial<FunctionConfiguration> & Pick<FunctionConfiguration, 'runtime' | 'handler'>;
    }
  | { readonly type: 'UpdateFunctionConfiguration'; readonly name: string; readonly changes: ConfigurationChanges }
  | { readonly type: 'DeleteFunction'; readonly name: string; readonly purgeAfter: string }
  | { readonly type: 'PurgeFunction'; readonly name: string; readonly now: string }
  | {
      readonly type: 'PublishFunctionVersion';
      readonly name: string;
      readonly description: string;
      readonly environment: Readonly<Record<string, string>>;
      readonly code: CodePackage;
    }
  | { readonly type: 'DeleteFunctionVersion'; readonly name: string; readonly version: number }
  | {
      readonly type: 'CreateFunctionAlias';
      readonly name: string;
      readonly aliasName: string;
      /** Omitted with a routingConfig: the heaviest routed version becomes the primary. */
      readonly version?: number;
      readonly routingConfig?: RoutingConfig;
      readonly description: string;
    }
  | {
      readonly type: 'UpdateFunctionAlias';
      readonly name: string;
      readonly aliasName: string;
      readonly version?: number;
      readonly routingConfig?: RoutingConfig;
      readonly description?: string;
    }
  | { readonly type: 'DeleteFunctionAlias'; readonly name: string; readonly aliasName: string };

export const initialFunctionState: FunctionState = {
  status: 'absent',
  name: '',
  configuration: null,
  publishedVersion: null,
  lastVersion: 0,
  versions: {},
  aliases: {},
  purgeAfter: null,
};

const functionNotFound = (name: string) => notFound(`Function '${name}' not found`);

const invalid = (problems: FieldProblem[]) => validationError('Function validation failed', problems);

const withoutKey = <T>(record: Readonly<Record<string, T>>, key: string): Record<string, T> => {
  const { [key]: _removed, ...rest } = record;
  return rest;
};

/** The primary version of a routing table: the heaviest weight, the lowest version on ties. */
export const primaryOf = (routing: RoutingConfig): number => {
  let best: [number, number] | undefined;
  for (const [key, weight] of Object.entries(routing)) {
    const version = Number(key);
    if (best === undefined || weight > best[1] || (weight === best[1] && version < best[0])) best = [version, weight];
  }
  return best?.[0] ?? 0;
};

const versionInUse = (state: FunctionState, version: number): string | undefined => {
  if (state.publishedVersion === version) return `it is the function's publishedVersion`;
  for (const alias of Object.values(state.aliases)) {
    if (alias.version === version || alias.routingConfig[String(version)] !== undefined) {
      return `alias '${alias.aliasName}' routes to it`;
    }
  }
  return undefined;
};

const decideCreate = (
  command: Extract<FunctionCommand, { type: 'CreateFunction' }>,
  state: FunctionState,
): Decision<FunctionEvent> => {
  const problems: FieldProblem[] = [];
  checkFunctionName(command.name, problems);
  const configuration: FunctionConfiguration = { ...DEFAULT_CONFIGURATION, ...stripUndefined(command.configuration) };
  checkDescription('description', configuration.description, problems);
  checkRuntimeAndHandler(configuration.runtime, configuration.handler, problems);
  checkMemorySize(configuration.memorySize, problems);
  checkTimeout(configuration.timeout, problems);
  checkEnvironment('environment', configuration.environment, problems);
  checkTags(configuration.tags, problems);
  checkInvocationSettings(configuration, problems);
  if (problems.length > 0) return invalid(problems);
  if (state.status === 'active') return conflict(`Function '${command.name}' already exists`);
  if (state.status === 'deleted') {
    return conflict(`Function '${command.name}' was deleted; its name stays reserved until ${state.purgeAfter}`);
  }
  return [{ type: 'FunctionCreated', data: { name: command.name, ownerId: command.ownerId, ...configuration } }];
};

const decideUpdate = (
  command: Extract<FunctionCommand, { type: 'UpdateFunctionConfiguration' }>,
  state: FunctionState,
  current: FunctionConfiguration,
): Decision<FunctionEvent> => {
  const { changes } = command;
  const next: FunctionConfiguration = { ...current, ...stripUndefined(changes) };
  const problems: FieldProblem[] = [];
  if (changes.description !== undefined) checkDescription('description', next.description, problems);
  if (changes.runtime !== undefined || changes.handler !== undefined) {
    checkRuntimeAndHandler(next.runtime, next.handler, problems);
  }
  if (changes.memorySize !== undefined) checkMemorySize(next.memorySize, problems);
  if (changes.timeout !== undefined) checkTimeout(next.timeout, problems);
  if (changes.environment !== undefined) checkEnvironment('environment', next.environment, problems);
  if (changes.tags !== undefined) checkTags(next.tags, problems);
  checkInvocationSettings(changes, problems);
  if (changes.publishedVersion !== undefined && changes.publishedVersion !== null) {
    if (state.versions[String(changes.publishedVersion)] === undefined) {
      problems.push({ field: 'publishedVersion', message: `Version ${changes.publishedVersion} does not exist` });
    }
  }
  if (problems.length > 0) return invalid(problems);
  const effective = stripUndefined(changes);
  if (Object.keys(effective).length === 0) {
    return validationError('Nothing to update', [{ field: 'body', message: 'Give at least one field to change' }]);
  }
  return [{ type: 'FunctionConfigurationUpdated', data: { name: state.name, changes: effective } }];
};

const stripUndefined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined)) as T;

const decidePublish = (
  command: Extract<FunctionCommand, { type: 'PublishFunctionVersion' }>,
  state: FunctionState,
  current: FunctionConfiguration,
): Decision<FunctionEvent> => {
  const problems: FieldProblem[] = [];
  checkDescription('description', command.description, problems);
  const environment = { ...current.environment, ...command.environment };
  checkEnvironment('environment', environment, problems);
  if (problems.length > 0) return invalid(problems);
  const spec = runtimeSpec(current.runtime);
  const candidates = spec?.handlerFiles(current.handler) ?? [];
  const files = new Set(command.code.files);
  if (!candidates.some((file) => files.has(file))) {
    return domainError('INVALID_CODE_PACKAGE', 'Function code ZIP is invalid', [
      {
        field: 'code',
        message: `The ZIP holds no file for handler '${current.handler}': expected ${candidates.join(' or ')}`,
      },
    ]);
  }
  return [
    {
      type: 'FunctionVersionPublished',
      data: {
        name: state.name,
        version: state.lastVersion + 1,
        description: command.description,
        codeSha256: command.code.sha256,
        codeSize: command.code.size,
        codeLocation: command.code.location,
        runtime: current.runtime,
        handler: current.handler,
        memorySize: current.memorySize,
        timeout: current.timeout,
        environment,
      },
    },
  ];
};

const decideAlias = (
  command: Extract<FunctionCommand, { type: 'CreateFunctionAlias' | 'UpdateFunctionAlias' }>,
  state: FunctionState,
): Decision<FunctionEvent> => {
  const problems: FieldProblem[] = [];
  const existing = state.aliases[command.aliasName];
  if (command.type === 'CreateFunctionAlias') checkAliasName(command.aliasName, problems);
  else if (existing === undefined) {
    return notFound(`Alias '${command.aliasName}' of function '${state.name}' not found`);
  }
  const description = command.description ?? existing?.description ?? '';
  checkDescription('description', description, problems);
  const routing =
    command.routingConfig ??
    (command.version !== undefined ? { [String(command.version)]: 100 } : (existing?.routingConfig ?? {}));
  const version =
    command.version ?? (command.routingConfig !== undefined ? primaryOf(routing) : (existing?.version ?? 0));
  const exists = (candidate: number) => state.versions[String(candidate)] !== undefined;
  if (command.version !== undefined && !exists(command.version)) {
    problems.push({ field: 'version', message: `Version ${command.version} does not exist` });
  } else {
    checkRouting(version, routing, exists, problems);
  }
  if (problems.length > 0) return validationError('Alias validation failed', problems);
  if (command.type === 'CreateFunctionAlias') {
    if (existing !== undefined) return conflict(`Alias '${command.aliasName}' already exists`);
    return [
      {
        type: 'FunctionAliasCreated',
        data: { name: state.name, aliasName: command.aliasName, version, routingConfig: routing, description },
      },
    ];
  }
  return [
    {
      type: 'FunctionAliasRoutingChanged',
      data: { name: state.name, aliasName: command.aliasName, version, routingConfig: routing, description },
    },
  ];
};

export const decideFunction = (command: FunctionCommand, state: FunctionState): Decision<FunctionEvent> => {
  if (command.type === 'CreateFunction') return decideCreate(command, state);
  if (command.type === 'PurgeFunction') {
    if (state.status !== 'deleted') return functionNotFound(command.name);
    if (state.purgeAfter !== null && Date.parse(command.now) < Date.parse(state.purgeAfter)) {
      return conflict(`Function '${command.name}' is retained until ${state.purgeAfter}`);
    }
    return [{ type: 'FunctionPurged', data: { name: state.name } }];
  }
  const current = state.configuration;
  if (state.status !== 'active' || current === null) return functionNotFound(command.name);
  switch (command.type) {
    case 'UpdateFunctionConfiguration':
      return decideUpdate(command, state, current);
    case 'DeleteFunction':
      return [{ type: 'FunctionDeleted', data: { name: state.name, purgeAfter: command.purgeAfter } }];
    case 'PublishFunctionVersion':
      return decidePublish(command, state, current);
    case 'DeleteFunctionVersion': {
      if (state.versions[String(command.version)] === undefined) {
        return notFound(`Version ${command.version} of function '${state.name}' not found`);
      }
      const use = versionInUse(state, command.version);
      if (use !== undefined) return conflict(`Version ${command.version} cannot be deleted: ${use}`);
      return [{ type: 'FunctionVersionDeleted', data: { name: state.name, version: command.version } }];
    }
    case 'CreateFunctionAlias':
    case 'UpdateFunctionAlias':
      return decideAlias(command, state);
    case 'DeleteFunctionAlias':
      if (state.aliases[command.aliasName] === undefined) {
        return notFound(`Alias '${command.aliasName}' of function '${state.name}' not found`);
      }
      return [{ type: 'FunctionAliasDeleted', data: { name: state.name, aliasName: command.aliasName } }];
    default:
      return assertNever(command);
  }
};

export const evolveFunction = (state: FunctionState, event: FunctionEvent): FunctionState => {
  switch (event.type) {
    case 'FunctionCreated': {
      const { name, ownerId: _ownerId, ...configuration } = event.data;
      return {
        ...initialFunctionState,
        lastVersion: state.lastVersion,
        status: 'active',
        name,
        configuration: { ...DEFAULT_CONFIGURATION, ...configuration },
      };
    }
    case 'FunctionConfigurationUpdated': {
      const { publishedVersion, ...changes } = event.data.changes;
      return {
        ...state,
        configuration: state.configuration === null ? null : { ...state.configuration, ...changes },
        publishedVersion: publishedVersion === undefined ? state.publishedVersion : publishedVersion,
      };
    }
    case 'FunctionDeleted':
      return { ...state, status: 'deleted', purgeAfter: event.data.purgeAfter };
    case 'FunctionPurged':
      return { ...initialFunctionState, lastVersion: state.lastVersion };
    case 'FunctionVersionPublished':
      return {
        ...state,
        lastVersion: Math.max(state.lastVersion, event.data.version),
        versions: {
          ...state.versions,
          [String(event.data.version)]: {
            version: event.data.version,
            runtime: event.data.runtime,
            handler: event.data.handler,
          },
        },
      };
    case 'FunctionVersionDeleted':
      return { ...state, versions: withoutKey(state.versions, String(event.data.version)) };
    case 'FunctionAliasCreated':
    case 'FunctionAliasRoutingChanged':
      return {
        ...state,
        aliases: {
          ...state.aliases,
          [event.data.aliasName]: {
            aliasName: event.data.aliasName,
            version: event.data.version,
            routingConfig: event.data.routingConfig,
            description: event.data.description,
          },
        },
      };
    case 'FunctionAliasDeleted':
      return { ...state, aliases: withoutKey(state.aliases, event.data.aliasName) };
    default:
      return assertNever(event);
  }
};

export const functionDecider: Decider<FunctionCommand, FunctionEvent, FunctionState> = {
  initialState: initialFunctionState,
  decide: decideFunction,
  evolve: evolveFunction,
};
