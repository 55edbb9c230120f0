import { readdirSync, readlinkSync } from 'node:fs';
import { containerTest as test, expectBad, fileDriver, isolation, probe } from './support.ts';

const MAX_PROCESSES = 48;
const driver = fileDriver({ maxProcesses: MAX_PROCESSES, tmpSizeMb: 16 });

const timeout = { outcome: 'timeout', fault: 'function', error: { type: 'Timeout' }, disposeContainer: true };
const oneSecond = { timeoutMs: 1_000 };

/** Host processes in a PID namespace (`pid:[inode]`). */
const processesIn = (namespace: string): number => {
  let count = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/ns/pid`) === namespace) count += 1;
    } catch {}
  }
  return count;
};

test('an infinite loop times out and the whole container is killed', async (t) => {
  const result = await expectBad(t, driver, 'while True:\n    pass', timeout, oneSecond);
  // Not exactly 1.xx: on a loaded machine the runner's timer itself may fire late.
  t.regex(result.error?.message ?? '', /timed out after \d+\.\d\d seconds/);
  t.true(result.durationMs >= 900);
});

test('a loop that ignores signals and sleeps in C times out too', async (t) => {
  await expectBad(
    t,
    driver,
    'import signal\nfor s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n    signal.signal(s, signal.SIG_IGN)\nwhile True:\n    time.sleep(10)',
    timeout,
    oneSecond,
  );
});

test('the logs written before a timeout are kept', async (t) => {
  const result = await expectBad(t, driver, 'print("about to spin")\nwhile True:\n    pass', timeout, oneSecond);
  t.deepEqual(
    result.logs.map((line) => line.message),
    ['about to spin'],
  );
});

test('allocating past memorySize is out of memory and the container is disposed', async (t) => {
  const result = await expectBad(
    t,
    driver,
    'kept = []\nwhile True:\n    kept.append(b"\\x01" * (8 << 20))',
    { outcome: 'outOfMemory', fault: 'function', error: { type: 'OutOfMemory' }, disposeContainer: true },
    { spec: { memorySize: 128, timeout: 30 }, timeoutMs: 30_000 },
  );
  t.is(result.memoryUsedMb, 128);
  t.log(`memory limit in force: ${isolation.memoryLimit}`);
});

test('the private /tmp is capped in size', async (t) => {
  const value = (await probe(
    t,
    driver,
    `
    try:
        with open("/tmp/big", "wb") as f:
            for _ in range(64):
                f.write(b"\\x01" * (1 << 20))
        return "wrote 64 MB"
    except OSError as error:
        return errno.errorcode[error.errno]
    `,
  )) as string;
  t.is(value, 'ENOSPC', '/tmp is capped at 16 MB');
});

test('a fork bomb is contained by the process limit and killed by the timeout; nothing of it is left', async (t) => {
  const result = await expectBad(
    t,
    driver,
    `
    print(os.readlink("/proc/self/ns/pid"))
    time.sleep(0.3)
    while True:
        try:
            os.fork()
        except OSError:
            pass
    `,
    timeout,
    { spec: { memorySize: 1024 }, timeoutMs: 2_000 },
  );
  // The bomb's PID namespace, as its first log line named it: once the container is gone, no host process is in it.
  const namespace = result.logs[0]?.message ?? '';
  t.regex(namespace, /^pid:\[\d+\]$/);
  let survivors = processesIn(namespace);
  for (let waited = 0; survivors > 0 && waited < 5_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    survivors = processesIn(namespace);
  }
  t.is(survivors, 0);
});

test('the process limit caps how many processes a container may have', async (t) => {
  const forked = (await probe(
    t,
    driver,
    `
    children = []
    try:
        while len(children) < 1000:
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children.append(pid)
    except OSError as error:
        failure = errno.errorcode[error.errno]
    for pid in children:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    return [len(children), failure]
    `,
    { prelude: 'import time', spec: { memorySize: 1024 } },
  )) as [number, string];
  t.true(forked[0] < MAX_PROCESSES, `forked ${forked[0]} processes`);
  t.is(forked[1], 'EAGAIN');
  t.log(`process limit in force: ${isolation.processLimit}`);
});
