import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { assertRecovers, containerTest, fileDriver, invoke, isolation, misbehaving, probe, specOf } from './support.ts';

const workDir = mkdtempSync(join(tmpdir(), 'strata-container-test-'));
test.after.always(() => rmSync(workDir, { recursive: true, force: true }));
const driver = fileDriver({ workDir });
const healthy = specOf(misbehaving('pass'));

/** Where the driver put a file of some container's code on the host. */
const findOnHost = (directory: string, name: string): string | null => {
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    if (entry.isFile() && entry.name === name) return path;
    if (entry.isDirectory()) {
      const found = findOnHost(path, name);
      if (found !== null) return found;
    }
  }
  return null;
};

const tryWrite = `
def try_write(path):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        return "written"
    except OSError as error:
        return errno.errorcode[error.errno]
`;

containerTest('only /tmp is writable: the code, /etc, / and the system are read-only', async (t) => {
  const value = await probe(
    t,
    driver,
    `
    paths = ["/var/task/x", "/var/task/handler.py", "/etc/x", "/etc/passwd", "/x", "/usr/x", "/proc/x", "/dev/x", "/tmp/x"]
    return {path: try_write(path) for path in paths}
    `,
    { prelude: tryWrite },
  );
  t.like(value, {
    '/var/task/x': 'EROFS',
    '/var/task/handler.py': 'EROFS',
    '/etc/x': 'EROFS',
    '/etc/passwd': 'EROFS',
    '/x': 'EROFS',
    '/tmp/x': 'written',
  });
  for (const [path, outcome] of Object.entries(value as Record<string, string>)) {
    if (path !== '/tmp/x') t.not(outcome, 'written', path);
  }
  await assertRecovers(t, driver, healthy, null, null);
});

containerTest("/tmp is the container's own: another container does not see its files", async (t) => {
  const writer = await probe(t, driver, 'open("/tmp/mine", "w").write("secret")\nreturn os.listdir("/tmp")');
  t.deepEqual(writer, ['mine']);
  const reader = await probe(t, driver, 'return os.listdir("/tmp")');
  t.deepEqual(reader, []);
});

containerTest("another function's code cannot be read, by its host path or any other way", async (t) => {
  const other = await driver.createContainer(
    specOf(
      { 'handler.py': 'def main(event, context):\n    return "ok"\n', 'secret_config.py': 'TOKEN = "s3cr3t"\n' },
      {
        functionName: 'other-function',
      },
    ),
  );
  t.like(await invoke(other), { outcome: 'success' });
  const hostPath = findOnHost(workDir, 'secret_config.py');
  t.truthy(hostPath, 'the other function has a code directory on the host');

  const value = (await probe(
    t,
    driver,
    `
    found = []
    try:
        found.append(open(event["hostPath"]).read())
    except OSError as error:
        found.append(errno.errorcode[error.errno])
    for root, dirs, files in os.walk("/", onerror=lambda e: None):
        if root.startswith("/proc"):
            dirs[:] = []
            continue
        if "secret_config.py" in files:
            found.append(os.path.join(root, "secret_config.py"))
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found.append(os.listdir(f"/proc/{pid}/root/var/task"))
            except OSError as error:
                found.append(errno.errorcode[error.errno])
    return {"found": found, "task": sorted(os.listdir("/var/task"))}
    `,
    { event: { hostPath } },
  )) as { found: unknown[]; task: string[] };
  t.deepEqual(value.task, ['handler.py']);
  t.is(value.found[0], 'ENOENT', 'the host path does not exist inside');
  t.false(JSON.stringify(value.found).includes('secret_config'), JSON.stringify(value.found));
  other.dispose();
});

containerTest("the host's environment does not reach the function, nor its init process", async (t) => {
  process.env.STRATA_TEST_PLATFORM_SECRET = 'do-not-leak';
  const value = (await probe(
    t,
    driver,
    `
    init = open("/proc/1/environ").read().split("\\0")
    return {
        "environ": dict(os.environ),
        "init": [entry.split("=")[0] for entry in init if entry],
        "cmdline": open("/proc/1/cmdline").read().split("\\0"),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "hostname": socket.gethostname(),
    }
    `,
  )) as { environ: Record<string, string>; init: string[]; cmdline: string[]; pids: number[]; hostname: string };
  t.deepEqual(Object.keys(value.environ).sort(), [
    'GREETING',
    'HOME',
    'LAMBDA_TASK_ROOT',
    'LANG',
    'PATH',
    'STAGE',
    'TMPDIR',
  ]);
  t.is(value.environ.HOME, '/tmp');
  t.not(value.environ.HOME, process.env.HOME);
  t.deepEqual(
    value.init.sort(),
    ['LANG', 'PATH'],
    "PID 1 is the container's own init, started with nothing of the host's",
  );
  t.true(value.cmdline.some((argument) => argument.endsWith('bootstrap.py')));
  t.deepEqual(value.pids, [1, 2], 'only the container’s own processes are visible');
  t.is(value.hostname, 'strata');
});

containerTest('no network: 127.0.0.1 is the container’s own loopback, and nothing else is reachable', async (t) => {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections += 1;
    socket.end('hello from the host');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const external = Object.values(networkInterfaces())
    .flat()
    .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal)?.address;

  const value = (await probe(
    t,
    driver,
    `
    def attempt(host, port):
        try:
            with socket.create_connection((host, port), timeout=2) as connection:
                return connection.recv(100).decode()
        except OSError as error:
            return type(error).__name__ + ":" + str(errno.errorcode.get(error.errno, error.errno))
    results = {"loopback": attempt("127.0.0.1", event["port"])}
    if event.get("external"):
        results["external"] = attempt(event["external"], event["port"])
    results["public"] = attempt("1.1.1.1", 53)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        own = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", own), timeout=2):
            results["own loopback"] = "connected"
    return results
    `,
    { event: { port, external } },
  )) as Record<string, string>;
  t.is(value.loopback, 'ConnectionRefusedError:ECONNREFUSED');
  if (external !== undefined) t.regex(value.external ?? '', /^OSError:ENETUNREACH$/);
  t.regex(value.public ?? '', /^OSError:ENETUNREACH$/);
  t.is(value['own loopback'], 'connected');
  t.is(connections, 0, 'the host server saw no connection');
  await assertRecovers(t, driver, healthy, null, null);
});

containerTest("/proc shows the container's processes only, with the host-wide files masked", async (t) => {
  const value = (await probe(
    t,
    driver,
    `
    def read(path):
        try:
            with open(path) as handle:
                return handle.read()
        except OSError as error:
            return errno.errorcode[error.errno]
    return {
        "timer_list": read("/proc/timer_list"),
        "kcore": read("/proc/kcore")[:10],
        "sysrq": try_write("/proc/sysrq-trigger"),
        "sys": try_write("/proc/sys/kernel/hostname"),
        "mounts": sorted(line.split()[4] for line in open("/proc/self/mountinfo")),
    }
    `,
    { prelude: tryWrite },
  )) as Record<string, string | string[]>;
  t.is(value.timer_list, '');
  t.not(value.sysrq, 'written');
  t.not(value.sys, 'written');
  // Mount points: the system's directories and the interpreter's, the code, /tmp, /dev, /proc; nothing else of the host.
  const expected = [
    '/',
    '/usr',
    '/bin',
    '/sbin',
    '/lib',
    '/lib64',
    '/etc/ld.so.cache',
    '/var/task',
    '/tmp',
    ...(isolation.python?.prefixes ?? []),
  ];
  const unexpected = (value.mounts as string[]).filter(
    (mount) => !expected.includes(mount) && !/^\/(dev|proc)(\/|$)/.test(mount),
  );
  t.deepEqual(unexpected, []);
});

containerTest('the function has no capabilities and cannot gain any', async (t) => {
  const value = (await probe(
    t,
    driver,
    `
    status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\\t" in line)
    try:
        os.chroot("/tmp")
        chroot = "allowed"
    except OSError as error:
        chroot = errno.errorcode[error.errno]
    return {key: status[key].strip() for key in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs")} | {"chroot": chroot, "uid": os.getuid()}
    `,
  )) as Record<string, string>;
  t.like(value, {
    CapEff: '0000000000000000',
    CapPrm: '0000000000000000',
    CapBnd: '0000000000000000',
    NoNewPrivs: '1',
  });
  t.is(value.chroot, 'EPERM');
  t.log(`runs as ${JSON.stringify(value.uid)}`);
});
