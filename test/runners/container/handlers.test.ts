import { containerTest as test, fileDriver, invoke, misbehaving, specOf } from './support.ts';

const driver = fileDriver();

const imageProcessor = {
  'handler.py': `import json
import logging

logger = logging.getLogger()
print("image-processor loaded")


def process_image(event, context):
    print(f"Processing image {event['key']}")
    logger.info("Image resized successfully")
    return {
        "bucket": event["bucket"],
        "key": event["key"],
        "width": event["width"] // 2,
        "requestId": context.aws_request_id,
        "sameRequestId": context.request_id == context.aws_request_id,
        "functionName": context.function_name,
        "functionVersion": context.function_version,
        "memoryLimitInMB": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
    }
`,
};

test('the reference example answers with its result, context and logs (print and logging)', async (t) => {
  const spec = specOf(imageProcessor, {
    functionName: 'image-processor',
    version: 6,
    handler: 'handler.process_image',
    memorySize: 512,
    timeout: 30,
  });
  const container = await driver.createContainer(spec);
  t.true(container.coldStartMs > 0);
  const result = await container.invoke({
    requestId: 'req-xyz789',
    payload: JSON.stringify({ bucket: 'photos', key: 'photo.jpg', width: 1024 }),
    deadline: Date.now() + 30_000,
  });
  t.like(result, { outcome: 'success', fault: 'none', disposeContainer: false, logsTruncated: false });
  const value = JSON.parse(result.result ?? 'null');
  t.like(value, {
    bucket: 'photos',
    key: 'photo.jpg',
    width: 512,
    requestId: 'req-xyz789',
    sameRequestId: true,
    functionName: 'image-processor',
    functionVersion: '6',
    memoryLimitInMB: 512,
  });
  t.true(value.remaining > 25_000 && value.remaining <= 30_000, String(value.remaining));
  t.deepEqual(
    result.logs.map(({ level, message }) => [level, message]),
    [
      ['INFO', 'image-processor loaded'],
      ['INFO', 'Processing image photo.jpg'],
      ['INFO', 'Image resized successfully'],
    ],
  );
  for (const line of result.logs) t.regex(line.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.true(result.memoryUsedMb > 0 && result.memoryUsedMb <= 512);

  // Warm: the module's state survives, the load's logs are not repeated.
  const again = await container.invoke({
    requestId: 'req-2',
    payload: JSON.stringify({ bucket: 'b', key: 'k.png', width: 10 }),
    deadline: Date.now() + 30_000,
  });
  t.like(again, { outcome: 'success' });
  t.deepEqual(
    again.logs.map(({ message }) => message),
    ['Processing image k.png', 'Image resized successfully'],
  );
  container.dispose();
});

test('a warm container keeps its module state between invocations', async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py': 'count = 0\ndef main(event, context):\n    global count\n    count += 1\n    return count\n',
    }),
  );
  t.is((await invoke(container)).result, '1');
  t.is((await invoke(container)).result, '2');
  container.dispose();
});

test('a handler in a package module (pkg.module.function)', async (t) => {
  const container = await driver.createContainer(
    specOf(
      {
        'pkg/__init__.py': '',
        'pkg/jobs/work.py': 'from pkg.helpers import double\ndef run(event, context):\n    return double(event["n"])\n',
        'pkg/helpers.py': 'def double(n):\n    return n * 2\n',
      },
      { handler: 'pkg.jobs.work.run' },
    ),
  );
  t.like(await invoke(container, { n: 21 }), { outcome: 'success', result: '42' });
  container.dispose();
});

test("the function's environment is os.environ", async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py': 'import os\ndef main(event, context):\n    return [os.environ["GREETING"], os.environ["STAGE"]]\n',
    }),
  );
  t.like(await invoke(container), { outcome: 'success', result: '["hello","test"]' });
  container.dispose();
});

test('return values become JSON: None is null, unicode stays readable', async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py':
        'def main(event, context):\n    return None if event.get("none") else {"text": "héllo ✓", "list": [1, 2.5, True]}\n',
    }),
  );
  t.like(await invoke(container, { none: true }), { outcome: 'success', result: 'null' });
  const result = await invoke(container);
  t.deepEqual(JSON.parse(result.result ?? ''), { text: 'héllo ✓', list: [1, 2.5, true] });
  container.dispose();
});

test('an async def handler is awaited', async (t) => {
  const container = await driver.createContainer(
    specOf({
      'handler.py':
        'import asyncio\nasync def main(event, context):\n    await asyncio.sleep(0.01)\n    return {"async": True}\n',
    }),
  );
  t.like(await invoke(container), { outcome: 'success', result: '{"async":true}' });
  container.dispose();
});

test('containers of other versions and functions run side by side', async (t) => {
  const specs = [1, 2, 3].map((version) =>
    specOf({ 'handler.py': `def main(event, context):\n    return ${version}\n` }, { version }),
  );
  const containers = await Promise.all(specs.map((spec) => driver.createContainer(spec)));
  const results = await Promise.all(containers.map((container) => invoke(container)));
  t.deepEqual(
    results.map((result) => result.result),
    ['1', '2', '3'],
  );
  for (const container of containers) container.dispose();
});

test.serial('the pool is refilled after a container is taken from it', async (t) => {
  await driver.poolFilled();
  t.is(driver.prestarted(), 2);
  const container = await driver.createContainer(specOf(misbehaving('pass')));
  await driver.poolFilled();
  t.is(driver.prestarted(), 2);
  container.dispose();
});
