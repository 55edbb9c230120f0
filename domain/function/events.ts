/** Configuration a function has and each version snapshots. */
export interface FunctionConfiguration {
  readonly description: string;
  readonly runtime: string;
  readonly handler: string;
  readonly memorySize: number;
  readonly timeout: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly tags: Readonly<Record<string, string>>;
  /** Invocations of the function running at once through one API node; null: the platform default. */
  readonly concurrencyLimit: number | null;
  /** Retries of a failed async invocation. */
  readonly asyncRetries: number;
  /** Oldest an async invocation may be when it (re)starts; older ones go to the dead-letter topic. */
  readonly maxEventAgeSeconds: number;
}

/** Version weights of an alias: version number (as a string key) → integer percent; sums to 100. */
export type RoutingConfig = Readonly<Record<string, number>>;

export type FunctionEvent =
  | {
      readonly type: 'FunctionCreated';
      readonly data: FunctionConfiguration & { readonly name: string; readonly ownerId: string };
    }
  | {
      readonly type: 'FunctionConfigurationUpdated';
      readonly data: {
        readonly name: string;
        readonly changes: Partial<FunctionConfiguration> & { readonly publishedVersion?: number | null };
      };
    }
  | {
      readonly type: 'FunctionDeleted';
      readonly data: { readonly name: string; readonly purgeAfter: string };
    }
  | { readonly type: 'FunctionPurged'; readonly data: { readonly name: string } }
  | {
      readonly type: 'FunctionVersionPublished';
      readonly data: {
        readonly name: string;
        readonly version: number;
        readonly description: string;
        readonly codeSha256: string;
        readonly codeSize: number;
        readonly codeLocation: string;
        readonly runtime: string;
        readonly handler: string;
        readonly memorySize: number;
        readonly timeout: number;
        readonly environment: Readonly<Record<string, string>>;
      };
    }
  | { readonly type: 'FunctionVersionDeleted'; readonly data: { readonly name: string; readonly version: number } }
  | {
      readonly type: 'FunctionAliasCreated';
      readonly data: {
        readonly name: string;
        readonly aliasName: string;
        readonly version: number;
        readonly routingConfig: RoutingConfig;
        readonly description: string;
      };
    }
  | {
      readonly type: 'FunctionAliasRoutingChanged';
      readonly data: {
        readonly name: string;
        readonly aliasName: string;
        readonly version: number;
        readonly routingConfig: RoutingConfig;
        readonly description: string;
      };
    }
  | { readonly type: 'FunctionAliasDeleted'; readonly data: { readonly name: string; readonly aliasName: string } };

export type FunctionEventType = FunctionEvent['type'];

/** Schema version of each event type's `data`; bump with an upcaster when a shape changes. */
export const FUNCTION_EVENT_SCHEMA_VERSIONS: Readonly<Record<FunctionEventType, number>> = {
  FunctionCreated: 1,
  FunctionConfigurationUpdated: 1,
  FunctionDeleted: 1,
  FunctionPurged: 1,
  FunctionVersionPublished: 1,
  FunctionVersionDeleted: 1,
  FunctionAliasCreated: 1,
  FunctionAliasRoutingChanged: 1,
  FunctionAliasDeleted: 1,
};

export const functionStreamId = (name: string): string => `function-${name}`;
export const FUNCTION_STREAM_PREFIX = 'function-';
