import { LOG_BYTES_PER_INVOCATION } from '../../../runners/runtime.ts';
import { containerTest as test, expectBad, fileDriver, invoke, specOf } from './support.ts';

const driver = fileDriver();
const onDemand = fileDriver({ poolSize: 0 });

test('print, stderr and logging become log lines with their levels', async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py': `import logging, sys, os
log = logging.getLogger("app")

def main(event, context):
    print("plain", 42)
    print("two\\nlines")
    print("no newline", end="", flush=True)
    print(" ... finished")
    print("to stderr", file=sys.stderr)
    log.debug("not shown: the root logger is at INFO")
    log.info("an info")
    log.warning("a warning")
    log.error("an error")
    try:
        1 / 0
    except ZeroDivisionError:
        log.exception("with a traceback")
    os.write(1, b"raw fd output\\n")
    sys.stdout.write("unterminated at the end")
    return "ok"
`,
    }),
  );
  const result = await invoke(container);
  t.like(result, { outcome: 'success', logsTruncated: false });
  const lines = result.logs.map(({ level, message }) => [level, message.split('\n')[0]]);
  t.deepEqual(
    lines.filter(([, message]) => message !== 'raw fd output'),
    [
      ['INFO', 'plain 42'],
      ['INFO', 'two'],
      ['INFO', 'lines'],
      ['INFO', 'no newline ... finished'],
      ['ERROR', 'to stderr'],
      ['INFO', 'an info'],
      ['WARN', 'a warning'],
      ['ERROR', 'an error'],
      ['ERROR', 'with a traceback'],
      ['INFO', 'unterminated at the end'],
    ],
  );
  t.regex(result.logs.find((line) => line.message.startsWith('with a traceback'))?.message ?? '', /ZeroDivisionError/);
  t.true(
    result.logs.some((line) => line.message === 'raw fd output'),
    'what is written to fd 1 directly is captured too',
  );
  container.dispose();
});

test('printing 100 MB of logs is capped and marked truncated; the container keeps serving', async (t) => {
  const result = await expectBad(
    t,
    driver,
    `
    line = "x" * 1000
    for _ in range(100_000):
        print(line)
    `,
    { outcome: 'success', logsTruncated: true, disposeContainer: false },
  );
  const bytes = result.logs.slice(0, -1).reduce((sum, line) => sum + Buffer.byteLength(line.message), 0);
  t.true(bytes <= LOG_BYTES_PER_INVOCATION, `${bytes} bytes kept`);
  t.true(bytes >= LOG_BYTES_PER_INVOCATION - 1000, `${bytes} bytes kept`);
  t.like(result.logs.at(-1), {
    level: 'WARN',
    message: `[logs truncated: the invocation logged more than ${LOG_BYTES_PER_INVOCATION} bytes]`,
  });
});

test('one 100 MB print, or 100 MB written straight to fd 1, is capped too', async (t) => {
  for (const bad of [
    'chunk = "y" * (1 << 20)\nfor _ in range(100):\n    print(chunk, end="")',
    'chunk = b"z" * (1 << 20)\nfor _ in range(100):\n    os.write(1, chunk)',
  ]) {
    const result = await expectBad(
      t,
      driver,
      bad,
      { outcome: 'success', logsTruncated: true },
      { spec: { timeout: 60 }, timeoutMs: 60_000 },
    );
    const bytes = result.logs.slice(0, -1).reduce((sum, line) => sum + Buffer.byteLength(line.message), 0);
    t.true(bytes <= LOG_BYTES_PER_INVOCATION, `${bytes} bytes kept`);
  }
});

test('the cap is per invocation: the next one logs again', async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py':
        'def main(event, context):\n    for _ in range(event["lines"]):\n        print("x" * 1000)\n    return "ok"\n',
    }),
  );
  t.like(await invoke(container, { lines: 1000 }), { logsTruncated: true });
  const next = await invoke(container, { lines: 3 });
  t.like(next, { logsTruncated: false });
  t.is(next.logs.length, 3);
  container.dispose();
});

test('logging is captured in a container started on demand too (nothing preloaded)', async (t) => {
  const container = await onDemand.createContainer(
    specOf({
      'handler.py':
        'import json, logging\nlogging.getLogger("lib").warning("at import")\ndef main(event, context):\n    logging.info("in the handler")\n    return json.loads("[1]")\n',
    }),
  );
  const result = await invoke(container);
  t.like(result, { outcome: 'success', result: '[1]' });
  t.deepEqual(
    result.logs.map(({ level, message }) => [level, message]),
    [
      ['WARN', 'at import'],
      ['INFO', 'in the handler'],
    ],
  );
  container.dispose();
});
