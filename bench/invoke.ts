// The invocation plane end to end: a hello-world Node24 function invoked through the REST API of a real
// `strata start` (the API and its runner are separate processes, as in production), next to a bare
// node:http server measured in the same run by the same load generator. `npm run bench:invoke [-- --quick]`.
// A hello-world Python311 function is measured on the same server (warm, cold from the pre-started pool), and
// on a second server started with STRATA_PYTHON_POOL=0 (cold with the pool empty). `-- --kafka` adds a third
// server whose bus is Kafka (STRATA_KAFKA_BROKERS when set, else a private broker from scripts/services.sh,
// stopped at the end), measured in the same rounds.
//
// Every load measurement runs in a child process (this file again, with `--load`): the lean generator of
// bench/loadgen.ts, one keep-alive socket per concurrent caller, so the generator never shares a core's event
// loop with the bench itself, costs Strata and the bare server the same, and takes as little CPU from them as
// it can (node:http's client took ~150 µs per request, as much as the bare server itself).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { strToU8, zipSync } from 'fflate';
import { NODE_FLAGS } from '../infra/nodeFlags.ts';
import { type Connection, openConnection } from './loadgen.ts';
import { percentile, table } from './stats.ts';

const BENCH = fileURLToPath(import.meta.url);
const STRATA_BIN = fileURLToPath(new URL('../bin/strata.ts', import.meta.url));
const SERVICES = fileURLToPath(new URL('../scripts/services.sh', import.meta.url));

const TARGET_WARM_P50_MS = 1;
const TARGET_SHARE_OF_BARE = 0.2;
const TARGET_LOADED_P99_MS = 20;
const TARGET_COLD_P50_MS = 5;
const TARGET_IDLE_MB = 4;
const TARGET_PYTHON_WARM_P50_MS = 2;
const TARGET_PYTHON_COLD_POOL_P50_MS = 15;
const TARGET_PYTHON_COLD_EMPTY_P50_MS = 80;
const TARGET_KAFKA_P50_MS = 10;
/** Between two Python cold starts: the pool (2) tops itself up after each one, as between occasional cold starts. */
const PYTHON_COLD_SPACING_MS = 400;
const LOADED = 64;
const RUNNER_ID = 'runner-1';
const ADMIN = { username: 'admin@example.com', password: 'bench-Admin-1' };
/** The same handler as the tests' HELLO_NODE; `marker` makes each package (and so each cold start) distinct. */
const helloCode = (marker: string): string =>
  Buffer.from(
    zipSync({
      'index.js': strToU8(
        `// ${marker}\nexports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({ hello: event.name ?? "world" }) });\n`,
      ),
    }),
  ).toString('base64');
/** The same answer from Python311: handler `index.handler` → `handler(event, context)` in index.py. */
const pythonCode = (marker: string): string =>
  Buffer.from(
    zipSync({
      'index.py': strToU8(
        `# ${marker}\nimport json\n\n\ndef handler(event, context):\n    return {"statusCode": 200, "body": json.dumps({"hello": event.get("name", "world")})}\n`,
      ),
    }),
  ).toString('base64');
const INVOKE_BODY = JSON.stringify({ payload: JSON.stringify({ name: 'bench' }) });

// ---- numbers ---------------------------------------------------------------------------------------------

const median = (values: readonly number[]): number =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );
const latencies = (samples: readonly number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
};

// ---- the load generator (child process) -------------------------------------------------------------------

interface LoadSpec {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly expectStatus: number;
}

interface LoadResult {
  /** Requests answered in the measured window. */
  readonly requests: number;
  /** Requests answered in all, warm-up included. */
  readonly sent: number;
  /** The generator's own CPU per request, µs: near 1e6 / (requests per second) it is the bottleneck. */
  readonly generatorCpuUs: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses by status, measured window only. */
  readonly statuses: Readonly<Record<string, number>>;
  /** The first body with an unexpected status, if any. */
  readonly unexpected?: string;
}

const generateLoad = async (spec: LoadSpec): Promise<LoadResult> => {
  const connections = await Promise.all(Array.from({ length: spec.concurrency }, () => openConnection(spec)));
  let unexpected: string | undefined;

  const send = async (connection: Connection): Promise<number> => {
    const keep = unexpected === undefined;
    const response = await connection.send(keep);
    if (response.status !== spec.expectStatus && keep)
      unexpected ??= `${response.status} ${response.body?.slice(0, 300)}`;
    return response.status;
  };

  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const measureFrom = started + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  let lastDone = measureFrom;
  let answered = 0;
  const caller = async (connection: Connection) => {
    for (;;) {
      const sent = performance.now();
      if (sent >= stopAt) return;
      const status = await send(connection);
      const done = performance.now();
      answered += 1;
      if (sent < measureFrom) continue;
      samples.push(done - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (done > lastDone) lastDone = done;
    }
  };
  await Promise.all(connections.map(caller));
  const cpu = process.cpuUsage(cpuBefore);
  for (const connection of connections) connection.close();
  const { count, p50, p99 } = latencies(samples);
  return {
    requests: count,
    sent: answered,
    generatorCpuUs: (cpu.user + cpu.system) / answered,
    perSecond: count / ((lastDone - measureFrom) / 1000),
    p50Ms: p50,
    p99Ms: p99,
    statuses,
    ...(unexpected === undefined ? {} : { unexpected }),
  };
};

/** Runs one load measurement in a child process: the generator gets an event loop (and a core) of its own. */
const measureLoad = async (spec: LoadSpec): Promise<LoadResult> => {
  const child = spawn(process.execPath, [BENCH, '--load', JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk: string) => {
    output += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${code}`);
  const result = JSON.parse(output) as LoadResult;
  const wrong = Object.entries(result.statuses).filter(([status]) => Number(status) !== spec.expectStatus);
  if (wrong.length > 0) {
    console.error(`bench:invoke: unexpected statuses ${JSON.stringify(result.statuses)}: ${result.unexpected ?? ''}`);
  }
  return result;
};

// ---- the servers under test --------------------------------------------------------------------------------

const serveBare = async () => {
  const server = createServer((_request, response) => {
    response.end('{"hello":"world"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address !== null ? address.port : 0}\n`);
};

interface Server {
  readonly process: ChildProcess;
  readonly url: string;
}

const firstLine = async (child: ChildProcess, match: (line: string) => string | undefined): Promise<string> => {
  if (child.stdout === null) throw new Error('no stdout');
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    const found = match(line);
    if (found !== undefined) {
      // Keeps draining, so a chatty child never blocks on a full pipe; warnings and errors are shown.
      lines.on('line', (next) => {
        if (/"level":(4|5|6)\d/.test(next)) console.error(`strata: ${next}`);
      });
      return found;
    }
  }
  throw new Error('the process exited before it was ready');
};

const startBare = async (): Promise<Server> => {
  const child = spawn(process.execPath, [BENCH, '--bare-server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await firstLine(child, (line) => line);
  return { process: child, url: `http://127.0.0.1:${port}` };
};

/** Backing services the shell may point at: each server gets only those it is meant to use. */
const SERVICE_VARIABLES = [
  'STRATA_KAFKA_BROKERS',
  'STRATA_KAFKA_NAMESPACE',
  'STRATA_MONGODB_URL',
  'STRATA_EVENTSTORE_URL',
];

const startStrata = async (
  dataDir: string,
  nodeOptions: string | undefined,
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<Server> => {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !SERVICE_VARIABLES.includes(name)),
  );
  const child = spawn(process.execPath, [...NODE_FLAGS, STRATA_BIN, 'start'], {
    env: {
      ...inherited,
      ...extraEnv,
      PORT: '0',
      HOST: '127.0.0.1',
      STRATA_DATA_DIR: dataDir,
      STRATA_RATE_LIMITS: 'off',
      STRATA_LOG_LEVEL: 'info',
      STRATA_ADMIN_USER: ADMIN.username,
      STRATA_ADMIN_PASSWORD: ADMIN.password,
      ...(nodeOptions === undefined ? {} : { NODE_OPTIONS: nodeOptions }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await firstLine(child, (line) => {
    try {
      const entry = JSON.parse(line) as { msg?: string; url?: string };
      return entry.msg === 'Strata API listening' ? entry.url : undefined;
    } catch {
      return undefined;
    }
  });
  return { process: child, url };
};

const stop = async (child: ChildProcess, graceMs: number) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
};

interface KafkaBroker {
  readonly brokers: string;
  /** The broker's JVM, when this bench started it (its CPU is then counted). */
  readonly pid: number | undefined;
  readonly started: boolean;
  stop(): Promise<void>;
}

const runServices = (command: 'start' | 'stop', env: NodeJS.ProcessEnv): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = execFile(SERVICES, [command], { env, maxBuffer: 1 << 20 }, (error, stdout) =>
      error === null ? resolve(stdout) : reject(new Error(`scripts/services.sh ${command} failed: ${error.message}`)),
    );
    child.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  });

/** STRATA_KAFKA_BROKERS when set; else a private broker (scripts/services.sh, its own state file and free ports). */
const kafkaBroker = async (): Promise<KafkaBroker> => {
  const given = process.env.STRATA_KAFKA_BROKERS;
  if (given !== undefined && given !== '') {
    return { brokers: given, pid: undefined, started: false, stop: async () => undefined };
  }
  const stateDir = await mkdtemp(join(tmpdir(), 'strata-bench-services-'));
  const env = { ...process.env, STRATA_SERVICES_STATE: join(stateDir, 'state'), STRATA_SERVICES_NO_KCAT: '1' };
  const stop = async () => {
    await runServices('stop', env).catch((error: unknown) => console.error(`bench:invoke: ${String(error)}`));
    await rm(stateDir, { recursive: true, force: true });
  };
  // A broker left running would outlive an interrupted bench: ^C stops it first.
  const interrupted = () => void stop().finally(() => process.exit(130));
  process.once('SIGINT', interrupted);
  try {
    const printed = await runServices('start', env);
    const brokers = /^STRATA_KAFKA_BROKERS=(.+)$/m.exec(printed)?.[1];
    if (brokers === undefined) throw new Error(`scripts/services.sh start printed no STRATA_KAFKA_BROKERS: ${printed}`);
    const state = readFileSync(env.STRATA_SERVICES_STATE, 'utf8');
    const pid = Number(/^KAFKA_PID=(\d+)$/m.exec(state)?.[1]);
    return {
      brokers,
      pid: Number.isInteger(pid) && pid > 0 ? pid : undefined,
      started: true,
      async stop() {
        process.removeListener('SIGINT', interrupted);
        await stop();
      },
    };
  } catch (error) {
    process.removeListener('SIGINT', interrupted);
    await stop();
    throw error;
  }
};

/** The runner the API supervises: the server's child running `start --role runner`. */
const runnerPid = (serverPid: number): number => {
  const cmdline = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      return [];
    }
  };
  let children: string[];
  try {
    children = readFileSync(`/proc/${serverPid}/task/${serverPid}/children`, 'utf8').trim().split(/\s+/);
  } catch {
    children = [];
  }
  const pid = children.find((child) => cmdline(child).includes('runner'));
  if (pid === undefined) throw new Error(`no runner process under pid ${serverPid}`);
  return Number(pid);
};

/** Every process below `pid` (a runner's containers), found through /proc. */
const descendants = (pid: number): number[] => {
  let children: number[];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    children = [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
};

/** CPU time (user + system) a process has used, ms. */
const cpuMs = (pid: number): number => {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return 0; // gone (a container disposed meanwhile)
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command name; in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 10;
};

const rssBytes = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (match?.[1] === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
};

// ---- single requests (setup, cold starts) -----------------------------------------------------------------

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly ms: number;
}

const createClient = (baseUrl: string) => {
  const { hostname, port } = new URL(baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let token: string | undefined;
  const send = (method: string, path: string, body?: unknown): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = {};
      if (token !== undefined) headers.authorization = `Bearer ${token}`;
      if (payload !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.byteLength;
      }
      const started = performance.now();
      const request = httpRequest({ host: hostname, port, method, path, agent, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString();
          resolve({ status: response.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text), ms });
        });
      });
      request.on('error', reject);
      request.end(payload);
    });
  const expect = async (method: string, path: string, status: number, body?: unknown): Promise<Reply> => {
    const reply = await send(method, path, body);
    if (reply.status !== status) {
      throw new Error(`${method} ${path}: expected ${status}, got ${reply.status} ${JSON.stringify(reply.body)}`);
    }
    return reply;
  };
  return {
    send,
    expect,
    async login() {
      token = (await expect('POST', '/api/v1/authentication/login', 200, ADMIN)).body.token as string;
      return token;
    },
    close: () => agent.destroy(),
  };
};

type Client = ReturnType<typeof createClient>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const waitForRunner = async (client: Client, attempts = 100) => {
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const { body } = await client.expect('GET', '/api/v1/runners', 200);
    const runners = body.runners as { nodeId: string; health: { isHealthy: boolean } }[];
    if (runners.some((runner) => runner.nodeId === RUNNER_ID && runner.health.isHealthy)) return;
    await sleep(100);
  }
  throw new Error('the runner never reported');
};

const publish = async (client: Client, name: string, marker: string, code = helloCode): Promise<number> =>
  (await client.expect('POST', `/api/v1/functions/${name}/versions`, 201, { code: code(marker) })).body
    .version as number;

/** Null when the function answers; else why not (a runtime this machine cannot start, say). */
const firstInvoke = async (client: Client, name: string, attempts = 1): Promise<string | null> => {
  let problem = '';
  for (let attempt = 0; attempt < attempts; attempt += 1) {
    const reply = await client.send('POST', `/api/v1/functions/${name}/invoke`, JSON.parse(INVOKE_BODY));
    if (reply.status === 200 && reply.body.outcome === undefined) return null;
    problem = `${reply.status} ${JSON.stringify(reply.body.error ?? reply.body)}`;
    await sleep(500);
  }
  return problem;
};

const invokeVersion = (client: Client, name: string, version: number) =>
  client.expect('POST', `/api/v1/functions/${name}/invoke`, 200, {
    payload: JSON.stringify({ name: 'bench' }),
    version,
  });

// ---- the measurements --------------------------------------------------------------------------------------

interface IdleMemory {
  readonly containers: number;
  readonly rssGrowthMb: number;
  readonly rssBeforeMb: number;
  readonly rssAfterMb: number;
  /** `memoryUsed` of the invoke responses (each isolate's heap, MB rounded up). */
  readonly reportedHeapMb: number;
  readonly activeContainersReported: number;
}

const steadyRss = async (pid: number): Promise<number> => {
  await sleep(2_000);
  const reads: number[] = [];
  for (let read = 0; read < 5; read += 1) {
    reads.push(rssBytes(pid));
    await sleep(200);
  }
  return median(reads);
};

const measureIdleMemory = async (client: Client, pid: number, containers: number): Promise<IdleMemory> => {
  await client.expect('POST', '/api/v1/functions', 201, { name: 'idle', runtime: 'Node24', handler: 'index.handler' });
  // A few containers first, so what the first ones bring (compiled host code, allocator arenas) is in the baseline.
  for (let index = 0; index < 5; index += 1)
    await invokeVersion(client, 'idle', await publish(client, 'idle', `w${index}`));
  const before = await steadyRss(pid);
  const heaps: number[] = [];
  for (let index = 0; index < containers; index += 1) {
    const reply = await invokeVersion(client, 'idle', await publish(client, 'idle', `idle-${index}`));
    heaps.push(reply.body.memoryUsed as number);
  }
  const after = await steadyRss(pid);
  // The runners view is fed by heartbeats (every 2 s): wait for one sent after the last container started.
  await sleep(2_500);
  const details = await client.expect('GET', `/api/v1/runners/${RUNNER_ID}`, 200);
  const health = details.body.health as { activeContainers: number };
  return {
    containers,
    rssBeforeMb: before / 2 ** 20,
    rssAfterMb: after / 2 ** 20,
    rssGrowthMb: (after - before) / containers / 2 ** 20,
    reportedHeapMb: heaps.reduce((sum, heap) => sum + heap, 0) / heaps.length,
    activeContainersReported: health.activeContainers,
  };
};

interface ColdStartSpec {
  readonly name: string;
  readonly runtime: 'Node24' | 'Python311';
  readonly code: (marker: string) => string;
  readonly samples: number;
  /** Pause before each cold invoke (after publishing). */
  readonly spacingMs: number;
}

const measureColdStarts = async (client: Client, spec: ColdStartSpec) => {
  const { name, samples } = spec;
  await client.expect('POST', '/api/v1/functions', 201, { name, runtime: spec.runtime, handler: 'index.handler' });
  const reported: number[] = [];
  const endToEnd: number[] = [];
  // The first three are not counted: they warm the host's code for cold starts of this function.
  for (let index = -3; index < samples; index += 1) {
    const version = await publish(client, name, `${name}-${index}`, spec.code);
    if (spec.spacingMs > 0) await sleep(spec.spacingMs);
    const reply = await invokeVersion(client, name, version);
    if (reply.body.wasColdStart !== true) throw new Error(`version ${version} was not a cold start`);
    if (index < 0) continue;
    reported.push(reply.body.coldStartDuration as number);
    endToEnd.push(reply.ms);
  }
  return { reported: latencies(reported), endToEnd: latencies(endToEnd) };
};

// ---- the table -------------------------------------------------------------------------------------------

const count = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (value: number) => value.toFixed(2);

const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const cpuText = (cpuUs: readonly number[]) => cpuUs.map((us) => count(us)).join(' + ');

interface Measured extends LoadResult {
  /** CPU per request of each process measured, µs. */
  readonly cpuUs: readonly number[];
}

// ---- main ------------------------------------------------------------------------------------------------

interface Options {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  readonly coldSamples: number;
  readonly pythonColdSamples: number;
  readonly idleContainers: number;
  readonly serverNodeOptions: string | undefined;
  readonly kafka: boolean;
}

/** A second server with STRATA_PYTHON_POOL=0: every Python container starts when it is needed. */
const measureEmptyPoolColdStarts = async (options: Options) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-invoke-nopool-'));
  const server = await startStrata(dataDir, options.serverNodeOptions, { STRATA_PYTHON_POOL: '0' });
  const client = createClient(server.url);
  try {
    await client.login();
    await waitForRunner(client);
    return await measureColdStarts(client, {
      name: 'pycold',
      runtime: 'Python311',
      code: pythonCode,
      samples: options.pythonColdSamples,
      spacingMs: 0,
    });
  } finally {
    client.close();
    await stop(server.process, 15_000);
    await rm(dataDir, { recursive: true, force: true });
  }
};

interface KafkaSide {
  readonly broker: KafkaBroker;
  readonly server: Server;
  readonly client: Client;
  readonly token: string;
  readonly runner: number;
  readonly dataDir: string;
}

/** The platform on Kafka (API and runner processes as in embedded mode), with the same hello function. */
const startKafkaSide = async (options: Options): Promise<KafkaSide> => {
  const broker = await kafkaBroker();
  console.error(
    `bench:invoke: Kafka at ${broker.brokers}${broker.started ? ` (started here, pid ${broker.pid ?? '?'})` : ''}`,
  );
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-invoke-kafka-'));
  let server: Server | undefined;
  let client: Client | undefined;
  try {
    server = await startStrata(dataDir, options.serverNodeOptions, {
      STRATA_KAFKA_BROKERS: broker.brokers,
      // Topics and groups of its own: earlier runs may have left messages and committed groups on a shared broker.
      STRATA_KAFKA_NAMESPACE: `bench-${randomUUID().slice(0, 8)}.`,
      STRATA_PYTHON_POOL: '0',
    });
    client = createClient(server.url);
    const token = await client.login();
    // Heartbeats travel through Kafka too: the runner shows once its producer and consumers are up.
    await waitForRunner(client, 600);
    await client.expect('POST', '/api/v1/functions', 201, {
      name: 'hello',
      runtime: 'Node24',
      handler: 'index.handler',
    });
    await publish(client, 'hello', 'hello');
    const problem = await firstInvoke(client, 'hello', 60);
    if (problem !== null) throw new Error(`no sync invoke through Kafka answered: ${problem}`);
    // As bench/kafka.ts does: the broker's JIT and the clients' connections warm up before any measurement.
    for (let index = 0; index < 200; index += 1)
      await client.expect('POST', '/api/v1/functions/hello/invoke', 200, JSON.parse(INVOKE_BODY));
    const pid = server.process.pid;
    if (pid === undefined) throw new Error('the Kafka server has no pid');
    return { broker, server, client, token, runner: runnerPid(pid), dataDir };
  } catch (error) {
    client?.close();
    if (server !== undefined) await stop(server.process, 15_000);
    await rm(dataDir, { recursive: true, force: true });
    await broker.stop();
    throw error;
  }
};

const stopKafkaSide = async (side: KafkaSide) => {
  side.client.close();
  await stop(side.server.process, 15_000);
  await rm(side.dataDir, { recursive: true, force: true });
  await side.broker.stop();
};

const main = async (options: Options) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-invoke-'));
  const bare = await startBare();
  const strata = await startStrata(dataDir, options.serverNodeOptions);
  const client = createClient(strata.url);
  let kafka: KafkaSide | undefined;
  try {
    const token = await client.login();
    await waitForRunner(client);
    const serverPid = strata.process.pid;
    if (serverPid === undefined) throw new Error('the server has no pid');
    const runner = runnerPid(serverPid);

    await client.expect('POST', '/api/v1/functions', 201, {
      name: 'hello',
      runtime: 'Node24',
      handler: 'index.handler',
    });
    await publish(client, 'hello', 'hello');
    await client.expect('POST', '/api/v1/functions/hello/invoke', 200, JSON.parse(INVOKE_BODY));

    await client.expect('POST', '/api/v1/functions', 201, {
      name: 'pyhello',
      runtime: 'Python311',
      handler: 'index.handler',
    });
    await publish(client, 'pyhello', 'pyhello', pythonCode);
    const pythonProblem = await firstInvoke(client, 'pyhello', 3);
    if (pythonProblem !== null) console.error(`bench:invoke: Python311 is not measured: ${pythonProblem}`);

    if (options.kafka) kafka = await startKafkaSide(options);

    console.error(`bench:invoke: ${options.idleContainers} idle containers in runner pid ${runner}`);
    const idle = await measureIdleMemory(client, runner, options.idleContainers);

    const load = (url: string, bearer: string, path: string, concurrency: number, expectStatus: number): LoadSpec => ({
      url: `${url}${path}`,
      method: 'POST',
      headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
      body: INVOKE_BODY,
      concurrency,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      expectStatus,
    });
    const invokePath = '/api/v1/functions/hello/invoke';
    const bareProcess = bare.process.pid;
    if (bareProcess === undefined) throw new Error('the bare server has no pid');
    /**
     * A load measurement and the CPU the processes under test spent on it (warm-up included), µs per
     * request: one figure per group of processes (a group is summed: a runner's containers, say).
     */
    const measure = async (spec: LoadSpec, groups: readonly (readonly number[])[]): Promise<Measured> => {
      const before = groups.map((pids) => pids.map(cpuMs));
      const result = await measureLoad(spec);
      const cpuUs = groups.map(
        (pids, group) =>
          (pids.reduce((sum, pid, index) => sum + Math.max(0, cpuMs(pid) - (before[group]?.[index] ?? 0)), 0) * 1000) /
          result.sent,
      );
      return { ...result, cpuUs };
    };
    const runs = new Map<string, Measured[]>();
    const keep = (label: string, result: Measured) => {
      runs.set(label, [...(runs.get(label) ?? []), result]);
      console.error(
        `bench:invoke: ${label.padEnd(18)} ${count(result.perSecond).padStart(7)}/s  p50 ${ms(result.p50Ms)}  p99 ${ms(result.p99Ms)} ms  cpu µs/req ${cpuText(result.cpuUs)} (generator ${count(result.generatorCpuUs)})`,
      );
    };
    // Interleaved, so drift on a noisy machine falls on every server alike.
    for (let round = 1; round <= options.rounds; round += 1) {
      console.error(`bench:invoke: round ${round} of ${options.rounds}`);
      for (const concurrency of [1, LOADED]) {
        keep(
          `bare c=${concurrency}`,
          await measure(load(bare.url, token, invokePath, concurrency, 200), [[bareProcess]]),
        );
        keep(
          `sync c=${concurrency}`,
          await measure(load(strata.url, token, invokePath, concurrency, 200), [[serverPid], [runner]]),
        );
        if (kafka !== undefined) {
          const pid = kafka.server.process.pid ?? 0;
          keep(
            `kafka c=${concurrency}`,
            await measure(load(kafka.server.url, kafka.token, invokePath, concurrency, 200), [
              [pid],
              [kafka.runner],
              ...(kafka.broker.pid === undefined ? [] : [[kafka.broker.pid]]),
            ]),
          );
        }
      }
      if (pythonProblem === null) {
        keep(
          'python c=1',
          await measure(load(strata.url, token, '/api/v1/functions/pyhello/invoke', 1, 200), [
            [serverPid],
            [runner],
            descendants(runner),
          ]),
        );
      }
    }

    console.error(`bench:invoke: ${options.coldSamples} cold starts`);
    const cold = await measureColdStarts(client, {
      name: 'cold',
      runtime: 'Node24',
      code: helloCode,
      samples: options.coldSamples,
      spacingMs: 0,
    });
    let pythonCold: { pool: Awaited<ReturnType<typeof measureColdStarts>>; empty: typeof cold } | undefined;
    if (pythonProblem === null) {
      console.error(`bench:invoke: ${options.pythonColdSamples} Python311 cold starts from the pool`);
      const pool = await measureColdStarts(client, {
        name: 'pycold',
        runtime: 'Python311',
        code: pythonCode,
        samples: options.pythonColdSamples,
        spacingMs: PYTHON_COLD_SPACING_MS,
      });
      console.error(`bench:invoke: ${options.pythonColdSamples} Python311 cold starts, pool empty (second server)`);
      pythonCold = { pool, empty: await measureEmptyPoolColdStarts(options) };
    }

    // Last: the runner works off the queued invocations long after the measurement ends (its CPU is not counted).
    const asyncPath = '/api/v1/functions/hello/invoke-async';
    keep(`async c=${LOADED}`, await measure(load(strata.url, token, asyncPath, LOADED, 202), [[serverPid]]));

    const summary = (label: string) => {
      const results = runs.get(label) ?? [];
      return {
        perSecond: median(results.map((result) => result.perSecond)),
        p50: median(results.map((result) => result.p50Ms)),
        p99: median(results.map((result) => result.p99Ms)),
        cpuUs: (results[0]?.cpuUs ?? []).map((_, index) => median(results.map((result) => result.cpuUs[index] ?? 0))),
        requests: results.reduce((sum, result) => sum + result.requests, 0),
      };
    };
    const strata1 = summary('sync c=1');
    const strata64 = summary(`sync c=${LOADED}`);
    const bare64 = summary(`bare c=${LOADED}`);
    const share = strata64.perSecond / bare64.perSecond;
    const loadRow = (
      label: string,
      figures: ReturnType<typeof summary>,
      value: string,
      target: string,
      ok?: boolean,
    ) => [
      label,
      count(figures.requests),
      count(figures.perSecond),
      ms(figures.p50),
      ms(figures.p99),
      cpuText(figures.cpuUs),
      value,
      target,
      ok === undefined ? '' : met(ok),
    ];
    const row = (
      label: string,
      samples: number,
      p50: string,
      p99: string,
      value: string,
      target: string,
      ok?: boolean,
    ) => [label, count(samples), '', p50, p99, '', value, target, ok === undefined ? '' : met(ok)];
    /** A cold-start measurement: the reported coldStartDuration against its target, then the whole invoke. */
    const coldRows = (
      startLabel: string,
      invokeLabel: string,
      figures: {
        reported: { count: number; p50: number; p99: number };
        endToEnd: { count: number; p50: number; p99: number };
      },
      targetP50Ms: number,
    ) => [
      row(
        startLabel,
        figures.reported.count,
        ms(figures.reported.p50),
        ms(figures.reported.p99),
        '',
        `p50 < ${targetP50Ms} ms`,
        figures.reported.p50 < targetP50Ms,
      ),
      row(invokeLabel, figures.endToEnd.count, ms(figures.endToEnd.p50), ms(figures.endToEnd.p99), '', ''),
    ];
    const unmeasured = (label: string, target: string) => [label, '', '', '', '', '', 'not measured', target, 'n/a'];

    const pythonWarmTarget = `p50 < ${TARGET_PYTHON_WARM_P50_MS} ms`;
    const pythonPoolTarget = `p50 < ${TARGET_PYTHON_COLD_POOL_P50_MS} ms`;
    const pythonEmptyTarget = `p50 < ${TARGET_PYTHON_COLD_EMPTY_P50_MS} ms`;
    const pythonRows = (() => {
      if (pythonProblem !== null || pythonCold === undefined) {
        return [
          unmeasured('Python311 warm sync invoke, c=1', pythonWarmTarget),
          unmeasured('Python311 cold start, pool: coldStartDuration', pythonPoolTarget),
          unmeasured('Python311 cold start, no pool: coldStartDuration', pythonEmptyTarget),
        ];
      }
      const warm = summary('python c=1');
      const { pool, empty } = pythonCold;
      return [
        loadRow(
          'Python311 warm sync invoke, c=1',
          warm,
          `${(warm.perSecond / strata1.perSecond).toFixed(2)}× Node24 req/s`,
          pythonWarmTarget,
          warm.p50 < TARGET_PYTHON_WARM_P50_MS,
        ),
        ...coldRows(
          'Python311 cold start, pool: coldStartDuration',
          'Python311 cold invoke, pool, end to end',
          pool,
          TARGET_PYTHON_COLD_POOL_P50_MS,
        ),
        ...coldRows(
          'Python311 cold start, no pool: coldStartDuration',
          'Python311 cold invoke, no pool, end to end',
          empty,
          TARGET_PYTHON_COLD_EMPTY_P50_MS,
        ),
      ];
    })();
    const kafkaRows = (() => {
      if (kafka === undefined) return [];
      const kafka1 = summary('kafka c=1');
      const kafka64 = summary(`kafka c=${LOADED}`);
      return [
        loadRow(
          'warm sync invoke via Kafka, c=1',
          kafka1,
          `${(kafka1.perSecond / strata1.perSecond).toFixed(2)}× embedded req/s`,
          `p50 < ${TARGET_KAFKA_P50_MS} ms`,
          kafka1.p50 < TARGET_KAFKA_P50_MS,
        ),
        loadRow(
          `warm sync invoke via Kafka, c=${LOADED}`,
          kafka64,
          `${(kafka64.perSecond / strata64.perSecond).toFixed(2)}× embedded req/s`,
          '',
        ),
      ];
    })();

    console.log(
      `\nStrata invocations: hello-world Node24 and Python311, embedded mode (API pid ${serverPid}, runner pid ${runner})` +
        `${kafka === undefined ? '' : `, and Node24 through Kafka at ${kafka.broker.brokers}`}, node ${process.version}, ${cpus().length} cores`,
    );
    console.log(
      `${options.rounds} round(s) of ${options.durationMs / 1000} s per load measurement after ${options.warmupMs / 1000} s of warm-up; medians over rounds\n`,
    );
    console.log(
      table([
        ['measurement', 'samples', 'per s', 'p50 ms', 'p99 ms', 'cpu µs/req', 'value', 'target', 'met'],
        loadRow(
          'warm sync invoke, c=1',
          strata1,
          '',
          `p50 < ${TARGET_WARM_P50_MS} ms`,
          strata1.p50 < TARGET_WARM_P50_MS,
        ),
        loadRow(
          `warm sync invoke, c=${LOADED}`,
          strata64,
          `${(share * 100).toFixed(1)}% of bare`,
          `>= ${TARGET_SHARE_OF_BARE * 100}% of bare, p99 < ${TARGET_LOADED_P99_MS} ms`,
          share >= TARGET_SHARE_OF_BARE && strata64.p99 < TARGET_LOADED_P99_MS,
        ),
        ...kafkaRows,
        loadRow('bare node:http, c=1', summary('bare c=1'), '', 'ceiling'),
        loadRow(`bare node:http, c=${LOADED}`, bare64, '', 'ceiling'),
        ...coldRows('cold start: coldStartDuration', 'cold invoke, end to end', cold, TARGET_COLD_P50_MS),
        ...pythonRows,
        loadRow(`async accept (202), c=${LOADED}`, summary(`async c=${LOADED}`), '', ''),
        row(
          'runner RSS growth per warm idle isolate',
          idle.containers,
          '',
          '',
          `${idle.rssGrowthMb.toFixed(2)} MB`,
          `< ${TARGET_IDLE_MB} MB`,
          idle.rssGrowthMb < TARGET_IDLE_MB,
        ),
        row('isolate heap (invoke memoryUsed)', idle.containers, '', '', `${idle.reportedHeapMb.toFixed(2)} MB`, ''),
      ]),
    );
    console.log(
      '\ncpu µs/req: CPU time of the API process + the runner process per request, warm-up included (bare: the server;' +
        ' async: the API only; Python311: + its containers; Kafka: + the broker when this bench started it).',
    );
    console.log(
      `Python311 cold starts: a new version each, invoked ${PYTHON_COLD_SPACING_MS} ms after publishing, so the pre-started pool` +
        ' (STRATA_PYTHON_POOL, 2) has topped itself up, as between occasional cold starts; "no pool" is a second server' +
        ' started with STRATA_PYTHON_POOL=0, where each container starts its interpreter when needed.',
    );
    if (kafka !== undefined) {
      console.log(
        'Kafka: a third server started with STRATA_KAFKA_BROKERS (API and runner on the broker, everything else embedded),' +
          ' measured in the same rounds as the embedded one.',
      );
    }
    console.log(
      `Idle memory: runner VmRSS ${idle.rssBeforeMb.toFixed(1)} MB → ${idle.rssAfterMb.toFixed(1)} MB with ${idle.containers} more warm idle containers` +
        ` (the runner reports ${idle.activeContainersReported} in all). GET /api/v1/runners/{nodeId} reports no isolate heap, so the heap` +
        ' row is the mean `memoryUsed` of their invoke responses (heap in MB, rounded up).',
    );
  } finally {
    client.close();
    if (kafka !== undefined) await stopKafkaSide(kafka);
    await stop(strata.process, 15_000);
    await stop(bare.process, 5_000);
    await rm(dataDir, { recursive: true, force: true });
  }
};

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    'server-node-options': { type: 'string' },
    load: { type: 'string' },
    'bare-server': { type: 'boolean', default: false },
    kafka: { type: 'boolean', default: false },
  },
});

if (values.load !== undefined) {
  process.stdout.write(JSON.stringify(await generateLoad(JSON.parse(values.load) as LoadSpec)));
} else if (values['bare-server']) {
  await serveBare();
} else {
  const quick = values.quick;
  const seconds = Number(values.duration ?? (quick ? 3 : 10));
  const rounds = Number(values.rounds ?? (quick ? 1 : 3));
  if (!(seconds > 0) || !Number.isInteger(rounds) || rounds < 1) {
    console.error('bench:invoke: --duration must be a positive number of seconds and --rounds a positive whole number');
    process.exit(2);
  }
  await main({
    durationMs: seconds * 1000,
    warmupMs: quick ? 1_000 : 2_000,
    rounds,
    coldSamples: quick ? 30 : 200,
    pythonColdSamples: quick ? 20 : 100,
    idleContainers: 50,
    serverNodeOptions: values['server-node-options'],
    kafka: values.kafka,
  });
}
