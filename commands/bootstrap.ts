import type { ReadStore } from '../domain/ports.ts';
import { COLLECTIONS } from '../projections/documents.ts';
import type { CommandMetadata } from './execute.ts';
import type { UserCommands } from './users.ts';

/** On first start (no user at all), registers the configured Admin; returns whether it did. */
export const ensureFirstAdmin = async (
  readStore: ReadStore,
  users: UserCommands,
  admin: { username: string; password: string },
  metadata: CommandMetadata,
): Promise<boolean> => {
  const { total } = await readStore.find(COLLECTIONS.users, { limit: 1 });
  if (total > 0) return false;
  await users.register({ username: admin.username, password: admin.password, role: 'Admin' }, metadata);
  return true;
};
