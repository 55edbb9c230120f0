#!/usr/bin/env node
import { ConfigError, loadConfig } from '../infra/config.ts';
import { createLogger } from '../infra/logger.ts';
import { startNode } from '../infra/platform.ts';
import { isRole, ROLE_SUMMARIES, ROLES } from '../infra/roles.ts';

const usage = [
  `Usage: strata start [--role ${ROLES.join('|')}]`,
  '',
  ...ROLES.map((role) => `  ${role.padEnd(10)} ${ROLE_SUMMARIES[role]}`),
].join('\n');

const main = async (): Promise<void> => {
  const [command, ...rest] = process.argv.slice(2);
  if (command !== 'start') {
    console.error(usage);
    process.exit(2);
  }
  const roleIndex = rest.findIndex((argument) => argument === '--role' || argument.startsWith('--role='));
  const role =
    roleIndex === -1
      ? 'all'
      : rest[roleIndex]?.startsWith('--role=')
        ? rest[roleIndex]?.slice('--role='.length)
        : rest[roleIndex + 1];
  if (!isRole(role)) {
    console.error(`strata: role '${role ?? ''}' is not available; roles: ${ROLES.join(', ')}`);
    process.exit(2);
  }
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`strata: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel, role === 'all' ? 'strata' : `strata-${role}`);
  const running = await startNode(role, config, logger).catch((error: unknown) => {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`strata: ${error.message}`);
    process.exit(2);
  });
  // A runner the platform spawned goes when the platform goes (even by kill -9), instead of lingering.
  const parent = Number(process.env.STRATA_PARENT_PID);
  if (role === 'runner' && Number.isInteger(parent) && parent > 0) {
    setInterval(() => {
      if (process.ppid !== parent) {
        logger.warn({ parent }, 'the platform process is gone; runner exiting');
        process.exit(0);
      }
    }, 1_000).unref();
  }
  const stop = (signal: string) => {
    logger.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
};

main().catch((error: unknown) => {
  const code = (error as NodeJS.ErrnoException).code;
  // A backing service missing at start (ServiceUnreachableError, infra/serviceErrors.ts) says in one line
  // which service, where, why and which variable points at it: no stack trace.
  if (code === 'SERVICE_UNREACHABLE') console.error(`strata: ${(error as Error).message}`);
  else if (code === 'EADDRINUSE') console.error(`strata: the port is already in use (${(error as Error).message})`);
  else console.error(`strata: failed to start: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
