import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import test from 'ava';
import kafkajs, { type Admin } from 'kafkajs';
import { MongoClient } from 'mongodb';

// kafkajs is CommonJS whose exports Node cannot detect statically: named imports fail at run time.
const { ConfigResourceTypes, Kafka, logLevel } = kafkajs;

// The backing services that scripts/services.sh runs (.ci/run starts them and exports these variables).
const brokers = process.env.STRATA_KAFKA_BROKERS;
const mongoUrl = process.env.STRATA_MONGODB_URL;
const run = promisify(execFile);

// STRATA_SERVICES_REQUIRED=1 (set by .ci/run) turns a missing variable into a failure instead of a skip.
const required = process.env.STRATA_SERVICES_REQUIRED === '1';

function unset(value: string | undefined): value is undefined {
  return value === undefined || value === '';
}

function missing(variable: string, what: string, titles: string[]): void {
  if (required) {
    test(`${what} (${variable} is not set but STRATA_SERVICES_REQUIRED=1)`, (t) => {
      t.fail(`${variable} is not set: run scripts/services.sh start and eval "$(scripts/services.sh env)"`);
    });
    return;
  }
  console.warn(`NOTICE: ${what} checks skipped: ${variable} is not set (scripts/services.sh start)`);
  for (const title of titles) test.skip(title, () => {});
}

if (unset(brokers)) {
  missing('STRATA_KAFKA_BROKERS', 'Kafka service', [
    'Kafka answers a metadata request (set STRATA_KAFKA_BROKERS, e.g. 127.0.0.1:9092)',
    'kcat reads the broker metadata (set STRATA_KAFKA_BROKERS, e.g. 127.0.0.1:9092)',
  ]);
} else {
  const brokerList = brokers.split(',').map((b) => b.trim());
  const kafka = new Kafka({
    clientId: 'strata-services-test',
    brokers: brokerList,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    retry: { retries: 3 },
  });

  // kafkajs's createTopics({ waitForLeaders: true }) polls metadata but only retries LEADER_NOT_AVAILABLE;
  // a KRaft broker can answer UNKNOWN_TOPIC_OR_PARTITION for a moment after CreateTopics returns
  // (tulios/kafkajs#1563), so wait for the topic's metadata here.
  async function createTopic(admin: Admin, topic: string, numPartitions: number): Promise<void> {
    await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: false });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        const partitions = meta.topics[0]?.partitions ?? [];
        if (partitions.length === numPartitions && partitions.every((p) => p.leader >= 0)) return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      if (Date.now() > deadline) throw new Error(`topic ${topic} has no leaders after 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  test('Kafka answers a metadata request, creates a topic and does not create topics by itself', async (t) => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      t.true(cluster.brokers.length >= 1, 'at least one broker');
      t.true(cluster.controller !== null && cluster.controller >= 0, 'a controller');

      const configs = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.BROKER, name: String(cluster.brokers[0]?.nodeId ?? 1) }],
      });
      const entries = configs.resources[0]?.configEntries ?? [];
      const setting = (name: string) => entries.find((e) => e.configName === name)?.configValue;
      t.is(setting('auto.create.topics.enable'), 'false', 'the application must create its own topics');
      t.is(setting('group.initial.rebalance.delay.ms'), '0');

      const topic = `strata-services-test-${randomBytes(4).toString('hex')}`;
      await createTopic(admin, topic, 2);
      try {
        const meta = await admin.fetchTopicMetadata({ topics: [topic] });
        t.is(meta.topics[0]?.partitions.length, 2);
      } finally {
        await admin.deleteTopics({ topics: [topic] });
      }
    } finally {
      await admin.disconnect();
    }
  });

  test('a message produced with kafkajs is read back with acks=-1', async (t) => {
    const topic = `strata-services-rt-${randomBytes(4).toString('hex')}`;
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    try {
      await createTopic(admin, topic, 1);
      await producer.connect();
      const [sent] = await producer.send({ topic, acks: -1, messages: [{ key: 'k', value: 'v1' }] });
      t.is(sent?.errorCode, 0);
      const offsets = await admin.fetchTopicOffsets(topic);
      t.is(offsets[0]?.high, '1');
    } finally {
      await producer.disconnect();
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  });

  test('kcat reads the broker metadata', async (t) => {
    let out: string;
    try {
      ({ stdout: out } = await run('kcat', ['-L', '-J', '-b', brokerList.join(','), '-m', '10'], { timeout: 20_000 }));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') {
        t.fail('kcat is not installed: scripts/services.sh start installs it (Debian package kcat)');
        return;
      }
      throw err;
    }
    const meta = JSON.parse(out) as { brokers: { id: number; name: string }[] };
    t.true(meta.brokers.length >= 1);
  });
}

if (unset(mongoUrl)) {
  missing('STRATA_MONGODB_URL', 'MongoDB service', [
    'FerretDB answers ping and an insert/find round trip (set STRATA_MONGODB_URL, e.g. mongodb://127.0.0.1:27017/strata)',
  ]);
} else {
  test('FerretDB answers ping and an insert/find round trip', async (t) => {
    const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 10_000 });
    await client.connect();
    try {
      const ping = await client.db('admin').command({ ping: 1 });
      t.is(ping.ok, 1);

      const collection = client
        .db()
        .collection<{ _id: string; n: number; tags: string[] }>(`services_test_${randomBytes(4).toString('hex')}`);
      try {
        await collection.insertOne({ _id: 'a', n: 1, tags: ['x', 'y'] });
        await collection.updateOne({ _id: 'a' }, { $inc: { n: 1 } });
        const found = await collection.findOne({ _id: 'a' });
        t.deepEqual(found, { _id: 'a', n: 2, tags: ['x', 'y'] });
      } finally {
        await collection.drop().catch(() => {});
      }
    } finally {
      await client.close();
    }
  });
}
