import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { loadConfig } from '../../infra/config.ts';
import { silentLogger } from '../../infra/logger.ts';
import { type Platform, type PlatformDependencies, startPlatform } from '../../infra/platform.ts';

export const ADMIN = { username: 'admin@example.com', password: 'Admin123!' };

export interface Response<T = Record<string, unknown>> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
}

export interface Client {
  request<T = Record<string, unknown>>(
    method: string,
    path: string,
    options?: { body?: unknown; raw?: string | Uint8Array; token?: string | null; headers?: Record<string, string> },
  ): Promise<Response<T>>;
  login(username: string, password: string): Promise<string>;
}

export const createClient = (baseUrl: string, defaultToken?: string): Client => {
  const client: Client = {
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      const token = options.token === undefined ? defaultToken : options.token;
      if (token !== undefined && token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | Uint8Array | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      const response = await fetch(`${baseUrl}${path}`, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // keep the text
      }
      return { status: response.status, headers: response.headers, body: parsed as never };
    },
    async login(username, password) {
      const response = await client.request<{ token: string }>('POST', '/api/v1/authentication/login', {
        body: { username, password },
        token: null,
      });
      if (response.status !== 200) throw new Error(`login of ${username} failed: ${JSON.stringify(response.body)}`);
      return response.body.token;
    },
  };
  return client;
};

export interface TestPlatform {
  readonly platform: Platform;
  readonly dataDir: string;
  /** A client logged in as the first Admin. */
  readonly admin: Client;
  readonly adminToken: string;
  /** A client for a new user of the given role (created by the Admin). */
  as(role: 'Admin' | 'Developer' | 'Operator' | 'Viewer'): Promise<Client>;
  anonymous: Client;
  stop(options?: { keepData?: boolean }): Promise<void>;
}

let userCounter = 0;

/** Starts a whole platform on a random port with its own data directory. */
export const startTestPlatform = async (
  env: Record<string, string> = {},
  dependencies: PlatformDependencies = {},
  dataDir?: string,
): Promise<TestPlatform> => {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'strata-test-')));
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    STRATA_DATA_DIR: dir,
    STRATA_RATE_LIMITS: 'off',
    STRATA_PYTHON_POOL: '0',
    ...env,
  });
  // Control-plane tests run no runner unless they ask for one.
  const platform = await startPlatform(config, silentLogger(), { runners: 0, ...dependencies });
  const anonymous = createClient(platform.url);
  const adminToken = await anonymous.login(ADMIN.username, ADMIN.password);
  const admin = createClient(platform.url, adminToken);
  return {
    platform,
    dataDir: dir,
    admin,
    adminToken,
    anonymous,
    async as(role) {
      userCounter += 1;
      const username = `${role.toLowerCase()}-${process.pid}-${userCounter}@example.com`;
      const password = 'Passw0rd!';
      const created = await admin.request('POST', '/api/v1/users', { body: { username, password, role } });
      if (created.status !== 201) throw new Error(`could not create ${role}: ${JSON.stringify(created.body)}`);
      return createClient(platform.url, await anonymous.login(username, password));
    },
    async stop(options = {}) {
      await platform.close();
      if (!options.keepData) await rm(dir, { recursive: true, force: true });
    },
  };
};

/** A ZIP (base64) holding the given files. */
export const zipBase64 = (files: Record<string, string>): string =>
  Buffer.from(
    zipSync(Object.fromEntries(Object.entries(files).map(([path, text]) => [path, Buffer.from(text)]))),
  ).toString('base64');

export const HELLO_NODE = zipBase64({
  'index.js':
    'exports.handler = async (event) => ({ statusCode: 200, body: JSON.stringify({ hello: event.name ?? "world" }) });\n',
});
