import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import anyTest, { type TestFn } from 'ava';
import { MongoClient } from 'mongodb';
import { uniqueName } from '../api/support.ts';
import { awaitHealthyRunners, deploy, eventually, finalRecord, handlerCode } from '../invocations/support.ts';
import { ADMIN, type Client, createClient } from '../support/platform.ts';

// Two API nodes, a projector and two runner nodes, each its own `strata start --role …` process, on the
// Kafka and FerretDB that scripts/services.sh runs (.ci/run starts them and exports both variables).
const brokers = process.env.STRATA_KAFKA_BROKERS;
const mongoUrl = process.env.STRATA_MONGODB_URL;
const required = process.env.STRATA_SERVICES_REQUIRED === '1';
const STRATA_BIN = fileURLToPath(new URL('../../bin/strata.ts', import.meta.url));

interface Node {
  readonly name: string;
  readonly child: ChildProcess;
  /** What it wrote to stdout and stderr, for the failure message. */
  readonly output: string[];
}

interface Context {
  readonly nodes: Map<string, Node>;
  readonly apis: readonly Client[];
  /** The invoke-only gateway node. */
  readonly gateway: Client;
  readonly dataDir: string;
  readonly database: string;
}

const test = anyTest as TestFn<Context>;

const withDatabase = (url: string, database: string): string => {
  const match = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(url);
  if (match === null) throw new Error(`not a MongoDB connection string: ${url}`);
  return `${match[1]}/${database}${match[2] ?? ''}`;
};

const startNode = (name: string, role: string, env: Record<string, string>): Node => {
  const child = spawn(process.execPath, [STRATA_BIN, 'start', '--role', role], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { name, child, output };
};

/** Waits until the node's /health answers 200 (or fails with what the node printed, if it died). */
const awaitHealth = (node: Node, url: string) =>
  eventually(
    `${node.name} to serve ${url}/health`,
    async () => {
      if (node.child.exitCode !== null) {
        throw new Error(`${node.name} exited with ${node.child.exitCode}: ${node.output.join('').slice(-2000)}`);
      }
      const response = await fetch(`${url}/health`).catch(() => undefined);
      return response?.status === 200 ? true : undefined;
    },
    60_000,
  );

const freePort = async (): Promise<number> => {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject()));
    });
  });
};

const unset = (value: string | undefined): value is undefined => value === undefined || value === '';

if (unset(brokers) || unset(mongoUrl)) {
  const variable = unset(brokers) ? 'STRATA_KAFKA_BROKERS' : 'STRATA_MONGODB_URL';
  if (required) {
    test(`multi-node platform (${variable} is not set but STRATA_SERVICES_REQUIRED=1)`, (t) => {
      t.fail(`${variable} must point at the services scripts/services.sh runs`);
    });
  } else {
    test.skip('multi-node platform on Kafka and MongoDB (set STRATA_KAFKA_BROKERS and STRATA_MONGODB_URL)', () => {});
  }
} else {
  test.before(async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'strata-multinode-'));
    const database = `strata_multinode_${randomBytes(6).toString('hex')}`;
    const shared = {
      STRATA_KAFKA_BROKERS: brokers,
      STRATA_KAFKA_NAMESPACE: `multinode-${randomBytes(4).toString('hex')}.`,
      STRATA_KAFKA_PARTITIONS: '8',
      STRATA_MONGODB_URL: withDatabase(mongoUrl, database),
      // One machine: the nodes share the embedded event log (and the JWT secret) in one data directory.
      STRATA_DATA_DIR: dataDir,
      STRATA_LOG_LEVEL: 'warn',
      STRATA_RATE_LIMITS: 'off',
      STRATA_HEARTBEAT_INTERVAL: 'PT0.5S',
      STRATA_PYTHON_POOL: '0',
      HOST: '127.0.0.1',
    };
    const nodes = new Map<string, Node>();
    t.context = { nodes, apis: [], gateway: createClient('http://127.0.0.1:1'), dataDir, database };
    const ports = [await freePort(), await freePort()];
    const gatewayPort = await freePort();
    nodes.set('gateway', startNode('gateway', 'gateway', { ...shared, PORT: String(gatewayPort) }));
    nodes.set('projector', startNode('projector', 'projector', shared));
    for (const [index, port] of ports.entries()) {
      nodes.set(`api-${index + 1}`, startNode(`api-${index + 1}`, 'api', { ...shared, PORT: String(port) }));
    }
    for (const id of ['runner-1', 'runner-2']) {
      nodes.set(id, startNode(id, 'runner', { ...shared, STRATA_RUNNER_ID: id }));
    }
    const urls = ports.map((port) => `http://127.0.0.1:${port}`);
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await Promise.all([
      ...urls.map((url, index) => awaitHealth(nodes.get(`api-${index + 1}`) as Node, url)),
      awaitHealth(nodes.get('gateway') as Node, gatewayUrl),
    ]);
    // The first Admin is registered by an API node once the projector has caught up.
    const token = await eventually(
      'the first Admin',
      () =>
        createClient(urls[0] as string)
          .login(ADMIN.username, ADMIN.password)
          .catch(() => undefined),
      60_000,
    );
    t.context = {
      nodes,
      apis: urls.map((url) => createClient(url, token)),
      gateway: createClient(gatewayUrl, token),
      dataDir,
      database,
    };
    await awaitHealthyRunners(t.context.apis[0] as Client, 2);
  });

  test.after.always(async (t) => {
    const { nodes, dataDir, database } = t.context;
    await Promise.all(
      [...(nodes?.values() ?? [])].map(
        (node) =>
          new Promise<void>((resolve) => {
            if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve();
            node.child.once('exit', () => resolve());
            node.child.kill('SIGTERM');
            setTimeout(() => node.child.kill('SIGKILL'), 10_000).unref();
          }),
      ),
    );
    if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true });
    if (database === undefined || unset(mongoUrl)) return;
    const client = new MongoClient(mongoUrl, { serverSelectionTimeoutMS: 10_000 });
    try {
      await client.db(database).dropDatabase();
    } finally {
      await client.close();
    }
  });

  test('two API nodes and two runner nodes: work spreads over both runners, and killing one mid-load loses no accepted async invocation', async (t) => {
    t.timeout(5 * 60_000);
    const { apis, nodes } = t.context;
    const [first, second] = apis as [Client, Client];

    // A change made through one API node is seen at once through the other (shared projector checkpoint).
    const names = Array.from({ length: 12 }, () => uniqueName('multi'));
    for (const [index, name] of names.entries()) {
      await deploy(
        t,
        index % 2 === 0 ? first : second,
        name,
        handlerCode(
          'await new Promise((r) => setTimeout(r, 20)); return { statusCode: 200, body: JSON.stringify({ n: event.n }) };',
        ),
      );
      const seen = await (index % 2 === 0 ? second : first).request('GET', `/api/v1/functions/${name}`);
      t.is(seen.status, 200, `${name} created through one API node is visible through the other`);
    }

    // Sync invokes through both API nodes, keyed by function name over 8 partitions: both runners work.
    const syncRunners = new Set<string>();
    for (const [index, name] of names.entries()) {
      const api = index % 2 === 0 ? first : second;
      const invoked = await api.request<{ statusCode: number; requestId: string }>(
        'POST',
        `/api/v1/functions/${name}/invoke`,
        {
          body: { payload: { n: index } },
        },
      );
      t.is(invoked.status, 200, `sync invoke of ${name}: ${JSON.stringify(invoked.body)}`);
      const record = await finalRecord(api, name, invoked.body.requestId);
      syncRunners.add((record as unknown as { runnerId: string }).runnerId);
    }
    t.deepEqual([...syncRunners].sort(), ['runner-1', 'runner-2'], 'sync invocations ran on both runner nodes');

    // The gateway invokes with a token an API node issued, and serves nothing of the control plane.
    const { gateway } = t.context;
    const viaGateway = await gateway.request<{ statusCode: number; body: string }>(
      'POST',
      `/api/v1/functions/${names[0]}/invoke`,
      { body: { payload: { n: 'gateway' } } },
    );
    t.is(viaGateway.status, 200, JSON.stringify(viaGateway.body));
    t.is(viaGateway.body.body, JSON.stringify({ n: 'gateway' }));
    t.is((await gateway.request('GET', `/api/v1/functions/${names[0]}`)).status, 404);
    t.is((await gateway.request('POST', '/api/v1/functions', { body: { name: uniqueName('no') } })).status, 404);

    // Async load through both API nodes; runner-1 is killed (SIGKILL) a third of the way in.
    const accepted: Array<{ name: string; requestId: string; api: Client }> = [];
    const total = 150;
    const victim = nodes.get('runner-1') as Node;
    for (let index = 0; index < total; index += 1) {
      const name = names[index % names.length] as string;
      const api = index % 2 === 0 ? first : second;
      const response = await api.request<{ requestId: string }>('POST', `/api/v1/functions/${name}/invoke-async`, {
        body: { payload: { n: index } },
      });
      t.is(response.status, 202, `invoke-async ${index}: ${JSON.stringify(response.body)}`);
      if (response.status === 202) accepted.push({ name, requestId: response.body.requestId, api });
      if (index === Math.floor(total / 3)) victim.child.kill('SIGKILL');
      if (index % 10 === 0) await sleep(20);
    }
    t.is(accepted.length, total);

    // Every accepted invocation succeeds: what runner-1 held is redelivered to runner-2 after the rebalance.
    const records = await Promise.all(
      accepted.map(({ name, requestId, api }) => finalRecord(api, name, requestId, 120_000)),
    );
    const failed = records.filter((record) => record.status !== 'Succeeded');
    t.deepEqual(
      failed.map((record) => `${record.requestId}: ${record.status}`),
      [],
      'every accepted async invocation succeeded',
    );
    const ranOn = new Set(records.map((record) => (record as unknown as { runnerId: string }).runnerId));
    t.true(ranOn.has('runner-2'), 'the surviving runner took over');

    // The dead runner turns unhealthy in /runners; the survivor stays healthy.
    const runners = await eventually('runner-1 to turn unhealthy', async () => {
      const response = await first.request<{ runners: Array<{ nodeId: string; health: { isHealthy: boolean } }> }>(
        'GET',
        '/api/v1/runners',
      );
      const dead = response.body.runners.find((runner) => runner.nodeId === 'runner-1');
      return dead !== undefined && !dead.health.isHealthy ? response.body.runners : undefined;
    });
    t.true(runners.find((runner) => runner.nodeId === 'runner-2')?.health.isHealthy);
  });
}
