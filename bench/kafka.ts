// Warm sync invokes through Kafka: API → Kafka → runner → Kafka → API, with the API and the runner in
// processes of their own, next to the same measurement on the embedded bus. A hello-world Node24 function;
// the load generator is a third process (keep-alive node:http, one socket per concurrent caller).
//   STRATA_KAFKA_BROKERS=127.0.0.1:9092 node bench/kafka.ts [--duration 10] [--rounds 3] [--concurrency 1,16]
//   [--bus kafka,embedded]; BENCH_KAFKA_CONSUMER='{"commitIntervalMs":0}' overrides consumer settings of the Kafka bus.
// For tuning the Kafka bus. The figures come from `npm run bench:invoke -- --kafka`: `strata start` on Kafka
// measured in the same rounds as the embedded server and the bare node:http ceiling.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { strToU8, zipSync } from 'fflate';
import type { InvocationBus } from '../domain/ports.ts';
import { createKafkaBus, type KafkaBusOptions } from '../infra/bus/kafka/index.ts';
import { loadConfig } from '../infra/config.ts';
import { createLogger } from '../infra/logger.ts';
import { startPlatform } from '../infra/platform.ts';
import { startRunner } from '../infra/runner.ts';
import { percentile } from './stats.ts';

const BENCH = fileURLToPath(import.meta.url);
const TARGET_P50_MS = 10;
const ADMIN = { username: 'admin@example.com', password: 'bench-Admin-1' };
const HELLO = Buffer.from(
  zipSync({
    'index.js': strToU8(
      'exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({ hello: event.name ?? "world" }) });\n',
    ),
  }),
).toString('base64');
const INVOKE_BODY = JSON.stringify({ payload: JSON.stringify({ name: 'bench' }) });

type BusKind = 'kafka' | 'embedded';

// ---- the processes under test --------------------------------------------------------------------------------

const serve = async (role: 'api' | 'runner', kind: BusKind, namespace: string) => {
  const config = loadConfig(process.env);
  const logger = createLogger(config.logLevel, `bench-${role}`);
  let bus: InvocationBus | undefined;
  if (kind === 'kafka') {
    if (config.kafkaBrokers === undefined) throw new Error('STRATA_KAFKA_BROKERS is not set');
    const consumer = JSON.parse(process.env.BENCH_KAFKA_CONSUMER ?? '{}') as KafkaBusOptions['consumer'];
    bus = createKafkaBus({
      brokers: config.kafkaBrokers,
      clientId: `bench-${role}-${process.pid}`,
      namespace,
      logger,
      ...(consumer ? { consumer } : {}),
    });
  }
  const stop =
    role === 'api'
      ? await (async () => {
          const platform = await startPlatform(config, logger, { runners: 0, ...(bus ? { bus } : {}) });
          process.stdout.write(`${JSON.stringify({ url: platform.url })}\n`);
          return () => platform.close();
        })()
      : await (async () => {
          const runner = await startRunner(config, logger, bus);
          process.stdout.write(`${JSON.stringify({ runner: runner.nodeId })}\n`);
          return async () => {
            await runner.close();
            await bus?.close();
          };
        })();
  process.once('SIGTERM', () => {
    void stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
};

const firstLine = async (child: ChildProcess): Promise<Record<string, string>> => {
  if (child.stdout === null) throw new Error('no stdout');
  const lines = createInterface({ input: child.stdout });
  for await (const line of lines) {
    if (!line.startsWith('{"url"') && !line.startsWith('{"runner"')) {
      if (/"level":(4|5|6)\d/.test(line)) console.error(line);
      continue;
    }
    // Keeps draining, so a chatty child never blocks on a full pipe; warnings and errors are shown.
    lines.on('line', (next) => {
      if (/"level":(4|5|6)\d/.test(next)) console.error(next);
    });
    return JSON.parse(line) as Record<string, string>;
  }
  throw new Error('the process exited before it was ready');
};

const launch = (role: 'api' | 'runner', kind: BusKind, env: Record<string, string>) => {
  const child = spawn(process.execPath, [BENCH, '--serve', role, '--bus', kind, '--namespace', env.NAMESPACE ?? ''], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return { child, ready: firstLine(child) };
};

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
};

// ---- requests ------------------------------------------------------------------------------------------------

const call = (
  base: string,
  method: string,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    const url = new URL(path, base);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const request = httpRequest(url, { method, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        resolve({ status: response.statusCode ?? 0, body: text === '' ? {} : JSON.parse(text) });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(payload);
  });

const expect = async (base: string, method: string, path: string, status: number, body?: unknown, token?: string) => {
  const reply = await call(base, method, path, body, token);
  if (reply.status !== status) throw new Error(`${method} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
};

// ---- the load generator (child process) ----------------------------------------------------------------------

interface LoadSpec {
  readonly url: string;
  readonly token: string;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly durationMs: number;
}

interface LoadResult {
  readonly requests: number;
  readonly perSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failures: number;
}

const generateLoad = async (spec: LoadSpec): Promise<LoadResult> => {
  const url = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const body = Buffer.from(INVOKE_BODY);
  const options = {
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: 'POST',
    agent,
    headers: {
      authorization: `Bearer ${spec.token}`,
      'content-type': 'application/json',
      'content-length': String(body.byteLength),
    },
  };
  const send = () =>
    new Promise<number>((resolve, reject) => {
      const request = httpRequest(options, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end(body);
    });
  const samples: number[] = [];
  let failures = 0;
  const measureFrom = performance.now() + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  let lastDone = measureFrom;
  const caller = async () => {
    for (;;) {
      const sent = performance.now();
      if (sent >= stopAt) return;
      const status = await send();
      const done = performance.now();
      if (sent < measureFrom) continue;
      if (status !== 200) failures += 1;
      samples.push(done - sent);
      lastDone = Math.max(lastDone, done);
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, caller));
  agent.destroy();
  const sorted = samples.sort((a, b) => a - b);
  return {
    requests: sorted.length,
    perSecond: sorted.length / ((lastDone - measureFrom) / 1000),
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    failures,
  };
};

const measureLoad = async (spec: LoadSpec): Promise<LoadResult> => {
  const child = spawn(process.execPath, [BENCH, '--load', JSON.stringify(spec)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`the load generator exited with ${code}`);
  return JSON.parse(output) as LoadResult;
};

// ---- one bus ---------------------------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values: readonly number[]) =>
  percentile(
    [...values].sort((a, b) => a - b),
    0.5,
  );

const measureBus = async (
  kind: BusKind,
  options: { readonly durationMs: number; readonly rounds: number; readonly concurrencies: readonly number[] },
) => {
  const dataDir = await mkdtemp(join(tmpdir(), `strata-bench-${kind}-`));
  // Topics of their own: earlier runs and tests left messages and committed groups on the broker.
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    STRATA_DATA_DIR: dataDir,
    STRATA_RATE_LIMITS: 'off',
    STRATA_LOG_LEVEL: 'warn',
    STRATA_PYTHON_POOL: '0',
    STRATA_HEARTBEAT_INTERVAL: 'PT0.5S',
    STRATA_ADMIN_USER: ADMIN.username,
    STRATA_ADMIN_PASSWORD: ADMIN.password,
    STRATA_RUNNER_ID: 'runner-1',
    NAMESPACE: `bench-${randomUUID().slice(0, 8)}.`,
  };
  const api = launch('api', kind, env);
  let runner: ReturnType<typeof launch> | undefined;
  try {
    const { url } = await api.ready;
    if (url === undefined) throw new Error('the API printed no URL');
    const { token } = (await expect(url, 'POST', '/api/v1/authentication/login', 200, ADMIN)) as { token: string };
    await expect(
      url,
      'POST',
      '/api/v1/functions',
      201,
      { name: 'hello', runtime: 'Node24', handler: 'index.handler' },
      token,
    );
    await expect(url, 'POST', '/api/v1/functions/hello/versions', 201, { code: HELLO }, token);
    runner = launch('runner', kind, env);
    await runner.ready;
    for (let attempt = 0; ; attempt += 1) {
      const { runners } = (await expect(url, 'GET', '/api/v1/runners', 200, undefined, token)) as {
        runners: { nodeId: string; health: { isHealthy: boolean } }[];
      };
      if (runners.some((found) => found.nodeId === 'runner-1' && found.health.isHealthy)) break;
      if (attempt > 100) throw new Error('the runner never reported');
      await sleep(100);
    }
    for (let index = 0; index < 200; index += 1) {
      await expect(url, 'POST', '/api/v1/functions/hello/invoke', 200, JSON.parse(INVOKE_BODY), token);
    }
    const results = new Map<number, LoadResult[]>();
    for (let round = 0; round < options.rounds; round += 1) {
      for (const concurrency of options.concurrencies) {
        const result = await measureLoad({
          url: `${url}/api/v1/functions/hello/invoke`,
          token,
          concurrency,
          warmupMs: 1_000,
          durationMs: options.durationMs,
        });
        results.set(concurrency, [...(results.get(concurrency) ?? []), result]);
      }
    }
    return [...results].map(([concurrency, rounds]) => ({
      kind,
      concurrency,
      requests: rounds.reduce((sum, result) => sum + result.requests, 0),
      failures: rounds.reduce((sum, result) => sum + result.failures, 0),
      perSecond: median(rounds.map((result) => result.perSecond)),
      p50Ms: median(rounds.map((result) => result.p50Ms)),
      p99Ms: median(rounds.map((result) => result.p99Ms)),
    }));
  } finally {
    if (runner) await stop(runner.child);
    await stop(api.child);
    await rm(dataDir, { recursive: true, force: true });
  }
};

// ---- main ------------------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '1,16' },
    bus: { type: 'string', default: 'kafka,embedded' },
    serve: { type: 'string' },
    namespace: { type: 'string', default: '' },
    load: { type: 'string' },
  },
});

if (values.load !== undefined) {
  process.stdout.write(JSON.stringify(await generateLoad(JSON.parse(values.load) as LoadSpec)));
} else if (values.serve === 'api' || values.serve === 'runner') {
  await serve(values.serve, values.bus === 'kafka' ? 'kafka' : 'embedded', values.namespace);
} else {
  const kinds = values.bus.split(',').filter((kind): kind is BusKind => kind === 'kafka' || kind === 'embedded');
  if (kinds.includes('kafka') && !process.env.STRATA_KAFKA_BROKERS) {
    console.error(
      'bench:kafka: set STRATA_KAFKA_BROKERS (scripts/services.sh start; eval "$(scripts/services.sh env)")',
    );
    process.exit(2);
  }
  const options = {
    durationMs: Number(values.duration) * 1000,
    rounds: Number(values.rounds),
    concurrencies: values.concurrency.split(',').map(Number),
  };
  const rows: Awaited<ReturnType<typeof measureBus>> = [];
  for (const kind of kinds) rows.push(...(await measureBus(kind, options)));
  console.log(
    `\nWarm sync invoke of a hello-world Node24 function, API and runner in separate processes; node ${process.version}, ${cpus().length} cores`,
  );
  console.log(
    `${options.rounds} round(s) of ${options.durationMs / 1000} s per measurement after 1 s of warm-up; medians over rounds\n`,
  );
  const table = [
    ['bus', 'callers', 'requests', 'failed', 'per s', 'p50 ms', 'p99 ms', 'target'],
    ...rows.map((row) => [
      row.kind,
      String(row.concurrency),
      String(row.requests),
      String(row.failures),
      row.perSecond.toFixed(0),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      row.kind === 'kafka' && row.concurrency === 1
        ? `p50 < ${TARGET_P50_MS} ms: ${row.p50Ms < TARGET_P50_MS ? 'met' : 'NOT met'}`
        : '',
    ]),
  ];
  const widths = table[0]?.map((_, column) => Math.max(...table.map((line) => (line[column] ?? '').length))) ?? [];
  for (const line of table) console.log(line.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  '));
}
