import { readFileSync } from 'node:fs';
import test from 'ava';
import { parse } from 'yaml';

// compose.yaml cannot be run here (no Docker): this keeps it in step with the code it starts, the roles
// bin/strata.ts accepts and the variables infra/config.ts reads.

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

interface Service {
  readonly image?: string;
  readonly build?: unknown;
  readonly command?: string | readonly string[];
  readonly environment?: Readonly<Record<string, unknown>> | readonly string[];
  readonly ports?: readonly (string | { readonly published?: string | number })[];
  readonly healthcheck?: { readonly test?: unknown };
  readonly depends_on?: Readonly<Record<string, { readonly condition?: string }>> | readonly string[];
  readonly privileged?: boolean;
}

// `<<` merge keys (YAML 1.1) are how the file shares settings between services; Compose resolves them too.
const compose = parse(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

/** The roles bin/strata.ts accepts: its own ROLES list, or the one it imports. */
const acceptedRoles = async (): Promise<readonly string[]> => {
  const source = read('bin/strata.ts');
  const literal = /\bconst ROLES\s*=\s*\[([^\]]*)\]/.exec(source)?.[1];
  if (literal !== undefined) return [...literal.matchAll(/'([^']+)'/g)].map((match) => match[1] ?? '');
  const from = /import\s*\{[^}]*\bROLES\b[^}]*\}\s*from\s*'([^']+)'/.exec(source)?.[1];
  if (from === undefined) throw new Error('bin/strata.ts neither defines nor imports ROLES');
  const module = (await import(new URL(from, new URL('bin/', ROOT)).href)) as { ROLES: readonly string[] };
  return module.ROLES;
};

/** The variables infra/config.ts reads. */
const configVariables = new Set(read('infra/config.ts').match(/\bSTRATA_[A-Z0-9_]+\b/g) ?? []);

const argv = (service: Service): readonly string[] =>
  typeof service.command === 'string' ? service.command.split(/\s+/) : (service.command ?? []);

const roleOf = (service: Service): string | undefined => {
  const args = argv(service);
  const index = args.findIndex((arg) => arg === '--role' || arg.startsWith('--role='));
  if (index === -1) return undefined;
  return args[index]?.startsWith('--role=') ? args[index]?.slice('--role='.length) : args[index + 1];
};

const environment = (service: Service): Record<string, string> =>
  Array.isArray(service.environment)
    ? Object.fromEntries(
        (service.environment as readonly string[]).map((entry) => {
          const at = entry.indexOf('=');
          return at === -1 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
        }),
      )
    : Object.fromEntries(Object.entries(service.environment ?? {}).map(([name, value]) => [name, String(value)]));

const dependencies = (service: Service): Record<string, string> =>
  Array.isArray(service.depends_on)
    ? Object.fromEntries((service.depends_on as readonly string[]).map((name) => [name, 'service_started']))
    : Object.fromEntries(
        Object.entries(service.depends_on ?? {}).map(([name, on]) => [name, on.condition ?? 'service_started']),
      );

const published = (service: Service): string[] =>
  (service.ports ?? []).map((port) =>
    typeof port === 'string' ? (port.split(':').at(-2) ?? '') : String(port.published ?? ''),
  );

/** The services that run Strata: built from this repository's Dockerfile. */
const strata = Object.entries(services).filter(([, service]) => service.build !== undefined);
const withRole = (role: string) => strata.filter(([, service]) => roleOf(service) === role).map(([name]) => name);

test('the backing services and every Strata role are there: two API and two runner nodes', (t) => {
  for (const name of ['eventstore', 'mongodb', 'kafka', 'projector', 'scheduler', 'api-1', 'api-2', 'gateway']) {
    t.truthy(services[name], `service ${name}`);
  }
  t.deepEqual(withRole('api'), ['api-1', 'api-2']);
  t.deepEqual(withRole('runner'), ['runner-1', 'runner-2']);
  t.deepEqual(withRole('projector'), ['projector'], 'one projector');
  t.deepEqual(withRole('scheduler'), ['scheduler'], 'one scheduler');
  t.deepEqual(withRole('gateway'), ['gateway']);
  t.deepEqual(published(services['api-1'] ?? {}), ['8080']);
  t.deepEqual(published(services['api-2'] ?? {}), ['8081']);
  t.deepEqual(published(services.gateway ?? {}), ['8090']);
});

test('every Strata service starts a role that bin/strata.ts accepts, through the image’s entrypoint', async (t) => {
  const roles = await acceptedRoles();
  for (const [name, service] of strata) {
    t.is(argv(service)[0], 'start', `${name}: strata start`);
    t.true(
      roles.includes(roleOf(service) ?? ''),
      `${name}: role ${roleOf(service)}; bin/strata.ts accepts ${roles.join(', ')}`,
    );
  }
  t.regex(read('Dockerfile'), /^ENTRYPOINT \["node", (?:"--[a-z-]+", )*"bin\/strata\.ts"\]$/m);
});

test('every STRATA_ variable compose.yaml sets is one infra/config.ts reads', (t) => {
  t.true(configVariables.size > 10, 'the configuration source was read');
  for (const [name, service] of strata) {
    for (const variable of Object.keys(environment(service)).filter((key) => key.startsWith('STRATA_'))) {
      t.true(configVariables.has(variable), `${name}: ${variable} is not read by infra/config.ts`);
    }
  }
});

test('split nodes share Kafka and MongoDB, the control plane the event store, HTTP nodes one JWT secret', (t) => {
  const secrets = new Set<string>();
  for (const [name, service] of strata) {
    const env = environment(service);
    t.truthy(env.STRATA_KAFKA_BROKERS, `${name}: STRATA_KAFKA_BROKERS`);
    t.truthy(env.STRATA_MONGODB_URL, `${name}: STRATA_MONGODB_URL`);
    const role = roleOf(service);
    if (role === 'runner') {
      t.is(env.STRATA_JWT_SECRET, undefined, `${name}: a runner does not get the JWT secret`);
      continue;
    }
    t.regex(env.STRATA_EVENTSTORE_URL ?? '', /^esdb:\/\/eventstore:2113\b/, `${name}: STRATA_EVENTSTORE_URL`);
    if (role === 'api' || role === 'gateway') secrets.add(env.STRATA_JWT_SECRET ?? '');
  }
  t.is(secrets.size, 1, 'one secret for every API and gateway node');
  t.false(secrets.has(''), 'the secret is set');
});

test('nodes wait for healthy backing services; HTTP nodes have health checks; runners may make namespaces', (t) => {
  for (const name of ['eventstore', 'mongodb', 'kafka', 'api-1', 'api-2', 'gateway']) {
    const check = services[name]?.healthcheck?.test;
    // A list of words, each a string: an unquoted `a ? b : c` in YAML would become a mapping.
    t.true(Array.isArray(check) && check.length > 1, `${name} has a health check`);
    t.true(Array.isArray(check) && check.every((word) => typeof word === 'string'), JSON.stringify(check));
  }
  for (const [name, service] of strata) {
    const on = dependencies(service);
    for (const [dependency, condition] of Object.entries(on)) {
      t.truthy(services[dependency], `${name} depends on ${dependency}, which exists`);
      if (['eventstore', 'mongodb', 'kafka'].includes(dependency))
        t.is(condition, 'service_healthy', `${name} → ${dependency}`);
    }
    const needs = roleOf(service) === 'runner' ? ['mongodb', 'kafka'] : ['eventstore', 'mongodb', 'kafka'];
    for (const dependency of needs) t.is(on[dependency], 'service_healthy', `${name} waits for ${dependency}`);
  }
  for (const name of withRole('runner')) t.true(services[name]?.privileged, `${name} is privileged`);
});

test('npm start and the image start Node with the flags the runner processes get', async (t) => {
  const { NODE_FLAGS } = (await import(new URL('infra/nodeFlags.ts', ROOT).href)) as {
    NODE_FLAGS: readonly string[];
  };
  const start = (JSON.parse(read('package.json')) as { scripts: { start: string } }).scripts.start;
  t.is(start, ['node', ...NODE_FLAGS, 'bin/strata.ts', 'start'].join(' '));
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(read('Dockerfile'))?.[1];
  t.deepEqual(JSON.parse(entrypoint ?? 'null'), ['node', ...NODE_FLAGS, 'bin/strata.ts']);
});
