import { type ConfigurationChanges, functionDecider, type FunctionCommand } from '../domain/function/decider.ts';
import {
  FUNCTION_EVENT_SCHEMA_VERSIONS,
  type FunctionConfiguration,
  type FunctionEvent,
  functionStreamId,
  type RoutingConfig,
} from '../domain/function/events.ts';
import type { CodeStore, CodeUpload, EventStore, InspectCodePackage } from '../domain/ports.ts';
import { DomainFailure, domainError } from '../domain/shared/errors.ts';
import { type CommandMetadata, execute } from './execute.ts';

export interface FunctionCommandsOptions {
  readonly eventStore: EventStore;
  readonly codeStore: CodeStore;
  readonly inspectCodePackage: InspectCodePackage;
  /** How long a deleted function's name stays reserved. */
  readonly retentionMs: number;
  /** Resolves once the read models reflect the log up to `position` (read-your-writes). */
  readonly awaitProjection: (position: bigint) => Promise<void>;
}

export type CreateFunctionInput = Partial<FunctionConfiguration> &
  Pick<FunctionConfiguration, 'runtime' | 'handler'> & { readonly name: string };

export interface PublishVersionInput {
  readonly code: Uint8Array;
  /** The same bytes, already sent to the code store as they arrived (`uploadCode`): committed, or discarded. */
  readonly upload?: CodeUpload;
  readonly description?: string;
  readonly environment?: Readonly<Record<string, string>>;
}

export interface AliasInput {
  readonly aliasName: string;
  readonly version?: number;
  readonly routingConfig?: RoutingConfig;
  readonly description?: string;
}

export type FunctionCommands = ReturnType<typeof createFunctionCommands>;

/** The write side of functions, versions and aliases: validate, decide, append, wait for the read side. */
export const createFunctionCommands = (options: FunctionCommandsOptions) => {
  const { eventStore, codeStore, inspectCodePackage } = options;

  const run = async (command: FunctionCommand, metadata: CommandMetadata) => {
    const result = await execute(
      eventStore,
      functionDecider,
      FUNCTION_EVENT_SCHEMA_VERSIONS,
      functionStreamId(command.name),
      command,
      metadata,
    );
    if (result.position !== null) await options.awaitProjection(result.position);
    return result;
  };

  const firstEvent = <T extends FunctionEvent['type']>(events: readonly FunctionEvent[], type: T) =>
    events.find((event): event is Extract<FunctionEvent, { type: T }> => event.type === type);

  return {
    create: (input: CreateFunctionInput, metadata: CommandMetadata) => {
      const { name, ...configuration } = input;
      return run({ type: 'CreateFunction', name, ownerId: metadata.userId, configuration }, metadata);
    },

    update: (name: string, changes: ConfigurationChanges, metadata: CommandMetadata) =>
      run({ type: 'UpdateFunctionConfiguration', name, changes }, metadata),

    delete: (name: string, metadata: CommandMetadata) =>
      run(
        {
          type: 'DeleteFunction',
          name,
          purgeAfter: new Date(Date.parse(metadata.now) + options.retentionMs).toISOString(),
        },
        metadata,
      ),

    purge: (name: string, metadata: CommandMetadata) =>
      run({ type: 'PurgeFunction', name, now: metadata.now }, metadata),

    /** Starts a code package that arrives in pieces, written to the code store meanwhile; see publishVersion. */
    uploadCode: (): CodeUpload => codeStore.upload(),

    /**
     * Inspects the ZIP without inflating it while it is written to the code store, then stores it by content
     * (durably, before the event is appended) and publishes; returns the version number. The upload, given
     * or started here, is committed only when the package passed inspection, and discarded otherwise.
     */
    publishVersion: async (name: string, input: PublishVersionInput, metadata: CommandMetadata): Promise<number> => {
      const upload = input.upload ?? codeStore.upload();
      if (input.upload === undefined) upload.write(input.code);
      try {
        // The package is flushed while it is inspected, and stored only if it passes.
        const inspected = inspectCodePackage(input.code).then((inspection) => {
          if (inspection.ok) return inspection;
          throw new DomainFailure(
            domainError('INVALID_CODE_PACKAGE', 'Function code ZIP is invalid', [
              { field: 'code', message: inspection.reason },
            ]),
          );
        });
        const [inspection, stored] = await Promise.all([inspected, upload.commit(inspected)]);
        const result = await run(
          {
            type: 'PublishFunctionVersion',
            name,
            description: input.description ?? '',
            environment: input.environment ?? {},
            code: { ...stored, files: inspection.files },
          },
          metadata,
        );
        const published = firstEvent(result.events, 'FunctionVersionPublished');
        if (published === undefined) throw new Error('Publishing decided no version');
        return published.data.version;
      } finally {
        await upload.discard();
      }
    },

    deleteVersion: (name: string, version: number, metadata: CommandMetadata) =>
      run({ type: 'DeleteFunctionVersion', name, version }, metadata),

    createAlias: (name: string, input: AliasInput, metadata: CommandMetadata) =>
      run(
        {
          type: 'CreateFunctionAlias',
          name,
          aliasName: input.aliasName,
          ...(input.version === undefined ? {} : { version: input.version }),
          ...(input.routingConfig === undefined ? {} : { routingConfig: input.routingConfig }),
          description: input.description ?? '',
        },
        metadata,
      ),

    updateAlias: (name: string, input: AliasInput, metadata: CommandMetadata) =>
      run({ type: 'UpdateFunctionAlias', name, ...input }, metadata),

    deleteAlias: (name: string, aliasName: string, metadata: CommandMetadata) =>
      run({ type: 'DeleteFunctionAlias', name, aliasName }, metadata),
  };
};
