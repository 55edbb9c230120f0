import type { ReadStore } from '../domain/ports.ts';
import { errorOf } from '../domain/shared/errors.ts';
import { COLLECTIONS } from '../projections/documents.ts';
import type { CommandMetadata } from './execute.ts';
import type { FunctionCommands } from './functions.ts';

export interface PurgerOptions {
  readonly readStore: ReadStore;
  readonly functions: FunctionCommands;
  readonly now: () => Date;
  readonly newId: () => string;
}

/**
 * Purges soft-deleted functions whose retention has run out. Its state is the log (each deletion's
 * `purgeAfter`), so a sweep after any restart finds exactly what is due; returns the names purged.
 */
export const createPurger = (options: PurgerOptions) => ({
  async sweep(): Promise<string[]> {
    const now = options.now();
    const { items } = await options.readStore.find(COLLECTIONS.functions, { where: { status: 'Deleted' } });
    const purged: string[] = [];
    for (const item of items) {
      const purgeAfter = item.purgeAfter as string | null;
      if (purgeAfter === null || Date.parse(purgeAfter) > now.getTime()) continue;
      const id = options.newId();
      const metadata: CommandMetadata = {
        userId: 'system',
        now: now.toISOString(),
        traceId: id,
        correlationId: id,
        causationId: id,
      };
      try {
        await options.functions.purge(item.name as string, metadata);
        purged.push(item.name as string);
      } catch (error) {
        if (errorOf(error) === undefined) throw error;
      }
    }
    return purged;
  },
});
