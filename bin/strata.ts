#!/usr/bin/env node
import { ConfigError, loadConfig } from '../infra/config.ts';
import { createLogger } from '../infra/logger.ts';
import { startPlatform } from '../infra/platform.ts';
import { startRunner } from '../infra/runner.ts';

const usage = 'Usage: strata start [--role all|runner]';
const ROLES = ['all', 'runner'];

const main = async (): Promise<void> => {
  const [command, ...rest] = process.argv.slice(2);
  if (command !== 'start') {
    console.error(usage);
    process.exit(2);
  }
  const roleIndex = rest.indexOf('--role');
  const role = roleIndex === -1 ? 'all' : rest[roleIndex + 1];
  if (role === undefined || !ROLES.includes(role)) {
    console.error(`strata: role '${role}' is not available; roles: ${ROLES.join(', ')}`);
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
  const running = role === 'runner' ? await startRunner(config, logger) : await startPlatform(config, logger);
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
  if (code === 'EADDRINUSE') console.error(`strata: the port is already in use (${(error as Error).message})`);
  else console.error(`strata: failed to start: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});
