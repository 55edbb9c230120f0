import test from 'ava';
import { loadConfig, runnerEnvironment } from '../../infra/config.ts';

test('a runner child started from runnerEnvironment has the runner settings of the configuration', (t) => {
  const config = loadConfig({
    STRATA_DATA_DIR: '/tmp/strata-config-test',
    STRATA_LOG_LEVEL: 'warn',
    STRATA_RUNNER_MAX_CONTAINERS: '7',
    STRATA_RUNNER_CONCURRENCY: '3',
    STRATA_RUNNER_IDLE_TTL: 'PT90S',
    STRATA_HEARTBEAT_INTERVAL: 'PT0.2S',
    STRATA_RETRY_BASE_DELAY: 'PT0.05S',
    STRATA_MAX_EVENT_AGE: 'PT2H',
  });
  const child = loadConfig({ ...runnerEnvironment(config), STRATA_RUNNER_ID: 'runner-1' });
  t.is(child.dataDir, config.dataDir);
  t.is(child.logLevel, 'warn');
  t.deepEqual(child.runner, { ...config.runner, nodeId: 'runner-1' });
  t.is(child.retryBaseDelayMs, 50);
  t.is(child.maxEventAgeMs, 7_200_000);
});
