// Control-plane latency over HTTP against a platform started in a process of its own (bench/controlServer.ts),
// plus the event store's
// durable append rate. `npm run bench:control [-- --functions 1000]`; `-- --only publish [--functions 300]`
// creates, publishes and reads back only (no append rates, lists or rebuild), for quick before/after runs.
// BENCH_SERVER_FLAGS adds Node flags to the server's command line, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
// or "--trace-gc" (what the server prints that is not a JSON line is passed on to stderr).
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { zipSync } from 'fflate';
import { createSqliteEventStore } from '../infra/eventStore/sqlite/index.ts';
import { NODE_FLAGS } from '../infra/nodeFlags.ts';
import { type AppendRate, measureAppendRate } from './eventStoreAppend.ts';
import { percentile, table } from './stats.ts';

const { values } = parseArgs({
  options: { functions: { type: 'string' }, only: { type: 'string' } },
});
if (values.only !== undefined && values.only !== 'publish') {
  console.error("bench:control: --only takes 'publish'");
  process.exit(2);
}
const PUBLISH_ONLY = values.only === 'publish';
const FUNCTIONS = Number(values.functions ?? (PUBLISH_ONLY ? '300' : '10000'));
if (!Number.isInteger(FUNCTIONS) || FUNCTIONS < 200) {
  console.error('bench:control: --functions must be a whole number of at least 200');
  process.exit(2);
}
/** Requests are sent one at a time: each sample is one request's latency, never queueing behind another. */
const CONCURRENCY = 1;
const PAYLOAD_BYTES = 1024 * 1024;
const BATCH = 20;
const LIST_SAMPLES = 200;
const LIMIT = 20;
const TARGET_P50_MS = 5;
const TARGET_APPENDS_PER_SECOND = 2_000;
const APPEND_RUNS = 3;
/** List timings are taken at a tenth of the functions and at all of them, to compare. */
const SMALL = Math.floor(FUNCTIONS / 10);

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

/** Nearest rank: the smallest sample with at least `fraction` of all samples at or below it. */

class Samples {
  readonly #values: number[] = [];
  add(ms: number) {
    this.#values.push(ms);
  }
  summary() {
    const sorted = [...this.#values].sort((a, b) => a - b);
    return { count: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  }
}

/** The median of three runs, each on a new store, before the HTTP load adds its own disk traffic. */
const appendRate = async (concurrency: number, appends: number): Promise<AppendRate> => {
  const runs: AppendRate[] = [];
  for (let run = 0; run < APPEND_RUNS; run += 1) {
    const storeDirectory = await mkdtemp(join(tmpdir(), 'strata-bench-append-'));
    const store = createSqliteEventStore({ path: join(storeDirectory, 'events.db') });
    try {
      runs.push(await measureAppendRate(store, { appends, concurrency }));
    } finally {
      await store.close();
      await rm(storeDirectory, { recursive: true, force: true });
    }
  }
  runs.sort((a, b) => a.appendsPerSecond - b.appendsPerSecond);
  return runs[Math.floor(runs.length / 2)] as AppendRate;
};
const appendRates = PUBLISH_ONLY ? [] : [await appendRate(1, 2_000), await appendRate(64, 20_000)];

const directory = await mkdtemp(join(tmpdir(), 'strata-bench-control-'));
const server = spawn(
  process.execPath,
  [
    ...NODE_FLAGS,
    ...(process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter((flag) => flag !== ''),
    fileURLToPath(new URL('./controlServer.ts', import.meta.url)),
    join(directory, 'data'),
  ],
  { stdio: ['pipe', 'pipe', 'inherit'] },
);
// Lines that are not JSON go to stderr as they come, so that the pipe never fills and blocks the server.
const serverReplies: string[] = [];
const replyWaiters: Array<(line: string | undefined) => void> = [];
const serverLines = createInterface({ input: server.stdout });
serverLines.on('line', (line) => {
  if (!line.startsWith('{')) process.stderr.write(`${line}\n`);
  else {
    const waiter = replyWaiters.shift();
    if (waiter === undefined) serverReplies.push(line);
    else waiter(line);
  }
});
serverLines.on('close', () => {
  for (const waiter of replyWaiters.splice(0)) waiter(undefined);
});
/** The server's next line of JSON on stdout. */
const fromServer = async <T>(): Promise<T> => {
  const line =
    serverReplies.shift() ?? (await new Promise<string | undefined>((resolve) => replyWaiters.push(resolve)));
  if (line === undefined) throw new Error('bench:control: the server exited');
  return JSON.parse(line) as T;
};
const { url } = await fromServer<{ url: string }>();
const { hostname, port } = new URL(url);
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });

const send = (
  method: string,
  path: string,
  token: string | undefined,
  body?: Buffer,
  contentType = 'application/json',
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {};
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) {
      headers['content-type'] = contentType;
      headers['content-length'] = body.byteLength;
    }
    const started = performance.now();
    const request = httpRequest({ host: hostname, port, method, path, agent, headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          ms: performance.now() - started,
        }),
      );
    });
    request.on('error', reject);
    request.end(body);
  });

const expect = (reply: Reply, status: number, what: string): Reply => {
  if (reply.status !== status)
    throw new Error(`${what}: expected ${status}, got ${reply.status} ${reply.body.slice(0, 500)}`);
  return reply;
};

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** A ZIP of an index.js and 1 MiB of random bytes, stored uncompressed: every version has its own content. */
const versionZip = (name: string): Buffer =>
  Buffer.from(
    zipSync({
      'index.js': [
        Buffer.from(`exports.handler = async () => ({ statusCode: 200, body: '${name}' });\n`),
        { level: 0 },
      ],
      'payload.bin': [randomFillSync(Buffer.allocUnsafe(PAYLOAD_BYTES)), { level: 0 }],
    }),
  );

/** The documented upload: the ZIP as base64 in a JSON body. */
const versionBody = (name: string): Buffer => json({ code: versionZip(name).toString('base64') });

/**
 * Functions that get a second version sent as a ZIP body (Content-Type: application/zip), in a pass of its
 * own after all are created: all of them with --only publish, every fifth otherwise (disk space).
 */
const ZIP_EVERY = PUBLISH_ONLY ? 1 : 5;

const nameOf = (index: number) => `fn-${String(index).padStart(6, '0')}`;

const samples = {
  create: new Samples(),
  publish: new Samples(),
  publishZip: new Samples(),
  get: new Samples(),
  listDeep: new Samples(),
  listFirstSmall: new Samples(),
  listLastSmallPageSmall: new Samples(),
  listFirstFull: new Samples(),
  listLastSmallPageFull: new Samples(),
};

const measureLists = async (token: string, into: Samples, offset: number) => {
  for (let sample = 0; sample < LIST_SAMPLES; sample += 1) {
    const reply = expect(await send('GET', `/api/v1/functions?limit=${LIMIT}&offset=${offset}`, token), 200, 'list');
    into.add(reply.ms);
  }
};

let rebuildSeconds = Number.NaN;
try {
  const login = expect(
    await send(
      'POST',
      '/api/v1/authentication/login',
      undefined,
      json({ username: 'admin@example.com', password: 'Admin123!' }),
    ),
    200,
    'login',
  );
  const token = (JSON.parse(login.body) as { token: string }).token;
  const started = performance.now();

  for (let first = 0; first < FUNCTIONS; first += BATCH) {
    const indexes = Array.from({ length: Math.min(BATCH, FUNCTIONS - first) }, (_, offset) => first + offset);
    // Bodies are built before the requests they belong to, outside every timed sample.
    const bodies = indexes.map((index) => ({
      create: json({ name: nameOf(index), runtime: 'Node24', handler: 'index.handler' }),
      publish: versionBody(nameOf(index)),
    }));
    for (const [position, index] of indexes.entries()) {
      const name = nameOf(index);
      const body = bodies[position];
      if (body === undefined) throw new Error('no body');
      samples.create.add(expect(await send('POST', '/api/v1/functions', token, body.create), 201, `create ${name}`).ms);
      const published = expect(
        await send('POST', `/api/v1/functions/${name}/versions`, token, body.publish),
        201,
        `publish ${name}`,
      );
      if ((JSON.parse(published.body) as { version: number }).version !== 1) throw new Error(`${name}: not version 1`);
      samples.publish.add(published.ms);
      samples.get.add(expect(await send('GET', `/api/v1/functions/${name}`, token), 200, `get ${name}`).ms);

      const count = index + 1;
      if (count === SMALL && !PUBLISH_ONLY) {
        await measureLists(token, samples.listFirstSmall, 0);
        await measureLists(token, samples.listLastSmallPageSmall, SMALL - LIMIT);
      }
    }
    const done = first + indexes.length;
    if (done % 1000 === 0 || done === FUNCTIONS) {
      console.error(`bench:control: ${done} functions in ${((performance.now() - started) / 1000).toFixed(0)} s`);
    }
  }
  // A pass of its own, so that the rows above measure the same work as they did before it existed.
  const zipIndexes = Array.from({ length: Math.ceil(FUNCTIONS / ZIP_EVERY) }, (_, n) => n * ZIP_EVERY);
  for (let first = 0; first < zipIndexes.length; first += BATCH) {
    const indexes = zipIndexes.slice(first, first + BATCH);
    const zips = indexes.map((index) => versionZip(nameOf(index)));
    for (const [position, index] of indexes.entries()) {
      const name = nameOf(index);
      const zip = zips[position];
      if (zip === undefined) throw new Error('no body');
      const zipped = expect(
        await send('POST', `/api/v1/functions/${name}/versions`, token, zip, 'application/zip'),
        201,
        `publish ${name} as a ZIP body`,
      );
      if ((JSON.parse(zipped.body) as { version: number }).version !== 2) throw new Error(`${name}: not version 2`);
      samples.publishZip.add(zipped.ms);
    }
  }
  if (!PUBLISH_ONLY) {
    await measureLists(token, samples.listFirstFull, 0);
    await measureLists(token, samples.listLastSmallPageFull, SMALL - LIMIT);
    await measureLists(token, samples.listDeep, FUNCTIONS - LIMIT);

    server.stdin.write('rebuild\n');
    ({ rebuildSeconds } = await fromServer<{ rebuildSeconds: number }>());
  }
} finally {
  agent.destroy();
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.stdin.end('close\n');
  await exited;
  await rm(directory, { recursive: true, force: true });
}

const count = (n: number) => n.toLocaleString('en-US');
const ms = (value: number) => value.toFixed(2);

const latency = (label: string, from: Samples): string[] => {
  const { count: n, p50, p99 } = from.summary();
  return [label, count(n), ms(p50), ms(p99), `< ${TARGET_P50_MS} ms`, p50 < TARGET_P50_MS ? 'yes' : 'NO'];
};

console.log(
  `Strata control plane: ${count(FUNCTIONS)} functions, each created, given a version and read back over HTTP ` +
    `keep-alive at concurrency ${CONCURRENCY} (rate limits off); p50/p99 by nearest rank; node ${process.version}\n`,
);
const lists = PUBLISH_ONLY
  ? []
  : [
      latency(`list offset ${count(FUNCTIONS - LIMIT)} @ ${count(FUNCTIONS)} functions`, samples.listDeep),
      latency(`list offset 0 @ ${count(SMALL)} functions`, samples.listFirstSmall),
      latency(`list offset 0 @ ${count(FUNCTIONS)} functions`, samples.listFirstFull),
      latency(`list offset ${count(SMALL - LIMIT)} @ ${count(SMALL)} functions`, samples.listLastSmallPageSmall),
      latency(`list offset ${count(SMALL - LIMIT)} @ ${count(FUNCTIONS)} functions`, samples.listLastSmallPageFull),
    ];
console.log(
  table([
    ['operation', 'samples', 'p50 ms', 'p99 ms', 'p50 target', 'met'],
    latency('create function', samples.create),
    latency('publish version (1 MiB ZIP, base64 in JSON)', samples.publish),
    latency('publish version (1 MiB ZIP body, streamed)', samples.publishZip),
    latency('get function', samples.get),
    ...lists,
  ]),
);
if (PUBLISH_ONLY) process.exit(0);
console.log();
console.log(
  table([
    ['event store (sqlite, fsync per commit)', 'appends', 'events/s (median of 3)', 'target', 'met'],
    ...appendRates.map((rate) => [
      `durable appends, ${rate.concurrency} concurrent writer${rate.concurrency === 1 ? '' : 's'}`,
      count(rate.appends),
      count(rate.appendsPerSecond),
      `>= ${count(TARGET_APPENDS_PER_SECOND)}`,
      rate.appendsPerSecond >= TARGET_APPENDS_PER_SECOND ? 'yes' : 'NO',
    ]),
  ]),
);
console.log(
  `\nRebuilding the read models from the log (${count(FUNCTIONS)} functions): ${rebuildSeconds.toFixed(1)} s`,
);
