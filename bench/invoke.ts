// The invocation plane end to end: a hello-world Node24 function invoked through the REST API of a real
// `strata start` (the API and its runner are separate processes, as in production), next to a bare
// node:http server measured in the same run by the same load generator. `npm run bench:invoke [-- --quick]`.
//
// Every load measurement runs in a child process (this file again, with `--load`): a keep-alive node:http
// Agent with one socket per concurrent caller, so the generator never shares a core's event loop with
// the bench itself, and costs Strata and the bare server the same.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, createServer, request as httpRequest } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { strToU8, zipSync } from 'fflate';
import { percentile } from './stats.ts';

const BENCH = fileURLToPath(import.meta.url);
const STRATA_BIN = fileURLToPath(new URL('../bin/strata.ts', import.meta.url));

const TARGET_WARM_P50_MS = 1;
const TARGET_SHARE_OF_BARE = 0.2;
const TARGET_LOADED_P99_MS = 20;
const TARGET_COLD_P50_MS = 5;
const TARGET_IDLE_MB = 4;
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
  const url = new URL(spec.url);
  const agent = new Agent({ keepAlive: true, maxSockets: spec.concurrency, maxFreeSockets: spec.concurrency });
  const body = Buffer.from(spec.body);
  const headers = { ...spec.headers, ...(body.byteLength > 0 ? { 'content-length': String(body.byteLength) } : {}) };
  const target = { host: url.hostname, port: url.port, path: url.pathname, method: spec.method, headers, agent };
  let unexpected: string | undefined;

  const send = () =>
    new Promise<number>((resolve, reject) => {
      const request = httpRequest(target, (response) => {
        const status = response.statusCode ?? 0;
        const keep = status !== spec.expectStatus && unexpected === undefined;
        const chunks: Buffer[] = [];
        if (keep) response.on('data', (chunk: Buffer) => chunks.push(chunk));
        else response.resume();
        response.on('error', reject);
        response.on('end', () => {
          if (keep) unexpected ??= `${status} ${Buffer.concat(chunks).toString().slice(0, 300)}`;
          resolve(status);
        });
      });
      request.on('error', reject);
      request.end(body.byteLength > 0 ? body : undefined);
    });

  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  const measureFrom = started + spec.warmupMs;
  const stopAt = measureFrom + spec.durationMs;
  let lastDone = measureFrom;
  let answered = 0;
  const caller = async () => {
    for (;;) {
      const sent = performance.now();
      if (sent >= stopAt) return;
      const status = await send();
      const done = performance.now();
      answered += 1;
      if (sent < measureFrom) continue;
      samples.push(done - sent);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (done > lastDone) lastDone = done;
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, caller));
  const cpu = process.cpuUsage(cpuBefore);
  agent.destroy();
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

const startStrata = async (dataDir: string, nodeOptions: string | undefined): Promise<Server> => {
  const child = spawn(process.execPath, [STRATA_BIN, 'start'], {
    env: {
      ...process.env,
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

/** CPU time (user + system) a process has used, ms. */
const cpuMs = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
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

const waitForRunner = async (client: Client) => {
  for (let attempt = 0; attempt < 100; attempt += 1) {
    const { body } = await client.expect('GET', '/api/v1/runners', 200);
    const runners = body.runners as { nodeId: string; health: { isHealthy: boolean } }[];
    if (runners.some((runner) => runner.nodeId === RUNNER_ID && runner.health.isHealthy)) return;
    await sleep(100);
  }
  throw new Error('the runner never reported');
};

const publish = async (client: Client, name: string, marker: string): Promise<number> =>
  (await client.expect('POST', `/api/v1/functions/${name}/versions`, 201, { code: helloCode(marker) })).body
    .version as number;

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

const measureColdStarts = async (client: Client, samples: number) => {
  await client.expect('POST', '/api/v1/functions', 201, { name: 'cold', runtime: 'Node24', handler: 'index.handler' });
  const reported: number[] = [];
  const endToEnd: number[] = [];
  // The first three are not counted: they warm the host's code for cold starts of this function.
  for (let index = -3; index < samples; index += 1) {
    const version = await publish(client, 'cold', `cold-${index}`);
    const reply = await invokeVersion(client, 'cold', version);
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

/** A markdown table, numbers right-aligned. */
const table = (rows: readonly (readonly string[])[]): string => {
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) =>
    `| ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => `${'-'.repeat(width + 1)}${column === 0 ? '-' : ':'}`).join('|')}|`;
  return [line(rows[0] ?? []), rule, ...rows.slice(1).map(line)].join('\n');
};

const met = (ok: boolean) => (ok ? 'met' : 'NOT MET');
const cpuText = (cpuUs: readonly number[]) => cpuUs.map((us) => count(us)).join(' + ');

interface Measured extends LoadResult {
  /** CPU per request of each process measured, µs. */
  readonly cpuUs: readonly number[];
}

// ---- main ------------------------------------------------------------------------------------------------

const main = async (options: {
  durationMs: number;
  warmupMs: number;
  rounds: number;
  coldSamples: number;
  idleContainers: number;
  serverNodeOptions: string | undefined;
}) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'strata-bench-invoke-'));
  const bare = await startBare();
  const strata = await startStrata(dataDir, options.serverNodeOptions);
  const client = createClient(strata.url);
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

    console.error(`bench:invoke: ${options.idleContainers} idle containers in runner pid ${runner}`);
    const idle = await measureIdleMemory(client, runner, options.idleContainers);

    const load = (url: string, path: string, concurrency: number, expectStatus: number): LoadSpec => ({
      url: `${url}${path}`,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: INVOKE_BODY,
      concurrency,
      warmupMs: options.warmupMs,
      durationMs: options.durationMs,
      expectStatus,
    });
    const invokePath = '/api/v1/functions/hello/invoke';
    const bareProcess = bare.process.pid;
    if (bareProcess === undefined) throw new Error('the bare server has no pid');
    /** A load measurement and the CPU the processes under test spent on it (warm-up included), µs per request. */
    const measure = async (spec: LoadSpec, pids: readonly number[]): Promise<Measured> => {
      const before = pids.map(cpuMs);
      const result = await measureLoad(spec);
      const cpuUs = pids.map((pid, index) => ((cpuMs(pid) - (before[index] ?? 0)) * 1000) / result.sent);
      return { ...result, cpuUs };
    };
    const runs = new Map<string, Measured[]>();
    const keep = (label: string, result: Measured) => {
      runs.set(label, [...(runs.get(label) ?? []), result]);
      console.error(
        `bench:invoke: ${label.padEnd(18)} ${count(result.perSecond).padStart(7)}/s  p50 ${ms(result.p50Ms)}  p99 ${ms(result.p99Ms)} ms  cpu µs/req ${cpuText(result.cpuUs)} (generator ${count(result.generatorCpuUs)})`,
      );
    };
    // Interleaved, so drift on a noisy machine falls on both servers alike.
    for (let round = 1; round <= options.rounds; round += 1) {
      console.error(`bench:invoke: round ${round} of ${options.rounds}`);
      for (const concurrency of [1, LOADED]) {
        keep(`bare c=${concurrency}`, await measure(load(bare.url, invokePath, concurrency, 200), [bareProcess]));
        keep(
          `sync c=${concurrency}`,
          await measure(load(strata.url, invokePath, concurrency, 200), [serverPid, runner]),
        );
      }
    }

    console.error(`bench:invoke: ${options.coldSamples} cold starts`);
    const cold = await measureColdStarts(client, options.coldSamples);

    // Last: the runner works off the queued invocations long after the measurement ends (its CPU is not counted).
    const asyncPath = '/api/v1/functions/hello/invoke-async';
    keep(`async c=${LOADED}`, await measure(load(strata.url, asyncPath, LOADED, 202), [serverPid]));

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

    console.log(
      `\nStrata invocations: hello-world Node24, embedded mode (API pid ${serverPid}, runner pid ${runner}), node ${process.version}, ${cpus().length} cores`,
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
        loadRow('bare node:http, c=1', summary('bare c=1'), '', 'ceiling'),
        loadRow(`bare node:http, c=${LOADED}`, bare64, '', 'ceiling'),
        row(
          'cold start: coldStartDuration',
          cold.reported.count,
          ms(cold.reported.p50),
          ms(cold.reported.p99),
          '',
          `p50 < ${TARGET_COLD_P50_MS} ms`,
          cold.reported.p50 < TARGET_COLD_P50_MS,
        ),
        row('cold invoke, end to end', cold.endToEnd.count, ms(cold.endToEnd.p50), ms(cold.endToEnd.p99), '', ''),
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
      '\ncpu µs/req: CPU time of the API process + the runner process (bare: the server; async: the API only) per request, warm-up included.',
    );
    console.log(
      `Idle memory: runner VmRSS ${idle.rssBeforeMb.toFixed(1)} MB → ${idle.rssAfterMb.toFixed(1)} MB with ${idle.containers} more warm idle containers` +
        ` (the runner reports ${idle.activeContainersReported} in all). GET /api/v1/runners/{nodeId} reports no isolate heap, so the heap` +
        ' row is the mean `memoryUsed` of their invoke responses (heap in MB, rounded up).',
    );
  } finally {
    client.close();
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
    idleContainers: 50,
    serverNodeOptions: values['server-node-options'],
  });
}
