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

test('a runner child gets the Kafka settings, and never the node id of the platform that spawned it', (t) => {
  const config = loadConfig({
    STRATA_KAFKA_BROKERS: 'a:9092, b:9092',
    STRATA_KAFKA_NAMESPACE: 'acme.',
    STRATA_KAFKA_PARTITIONS: '12',
    STRATA_NODE_ID: 'api-1',
  });
  const child = loadConfig(runnerEnvironment(config));
  t.deepEqual(child.kafkaBrokers, ['a:9092', 'b:9092']);
  t.is(child.kafkaNamespace, 'acme.');
  t.is(child.kafkaPartitions, 12);
  t.is(child.nodeId, undefined);
});

test('a runner is named by STRATA_RUNNER_ID, else STRATA_NODE_ID', (t) => {
  t.is(loadConfig({ STRATA_NODE_ID: 'node-7' }).runner.nodeId, 'node-7');
  t.is(loadConfig({ STRATA_NODE_ID: 'node-7', STRATA_RUNNER_ID: 'runner-7' }).runner.nodeId, 'runner-7');
});

test('node ids and the Kafka namespace must be safe as topic and group names', (t) => {
  t.throws(() => loadConfig({ STRATA_NODE_ID: 'api 1' }), { message: /STRATA_NODE_ID may hold letters/ });
  t.throws(() => loadConfig({ STRATA_KAFKA_NAMESPACE: 'a/b' }), { message: /STRATA_KAFKA_NAMESPACE may hold/ });
  t.throws(() => loadConfig({ STRATA_KAFKA_PARTITIONS: '0' }), { message: /STRATA_KAFKA_PARTITIONS must be/ });
});
