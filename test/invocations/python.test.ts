import test from 'ava';
import type { TestPlatform } from '../support/platform.ts';
import { zipBase64 } from '../support/platform.ts';
import { finalRecord, invokeAsync, invokeOk, startInvocationPlatform } from './support.ts';

// The reference's own example: a Python311 function with handler `handler.process_image`.
const IMAGE_PROCESSOR = zipBase64({
  'handler.py': `import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def process_image(event, context):
    print(f"Processing image {event['imageUrl']}")
    logger.info("Image resized successfully")
    return {
        "statusCode": 200,
        "body": {
            "processedUrl": event["imageUrl"].replace(".jpg", "-thumb.jpg"),
            "bucket": os.environ["BUCKET_NAME"],
            "requestId": context.aws_request_id,
        },
    }
`,
});

let platform: TestPlatform;

test.before(async () => {
  platform = await startInvocationPlatform({ STRATA_PYTHON_POOL: '1' });
  const created = await platform.admin.request('POST', '/api/v1/functions', {
    body: {
      name: 'image-processor',
      description: 'Process and resize images',
      runtime: 'Python311',
      handler: 'handler.process_image',
      memorySize: 512,
      timeout: 30,
      environment: { BUCKET_NAME: 'processed-images', MAX_SIZE: '1024' },
      tags: { team: 'media', 'cost-center': 'engineering' },
    },
  });
  if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
  const published = await platform.admin.request('POST', '/api/v1/functions/image-processor/versions', {
    body: { code: IMAGE_PROCESSOR, description: 'First version' },
  });
  if (published.status !== 201) throw new Error(`publish failed: ${JSON.stringify(published.body)}`);
});

test.after.always(() => platform?.stop());

test.serial('the reference example answers a sync invoke with its result, and its logs are kept', async (t) => {
  const payload = JSON.stringify({ imageUrl: 'https://example.com/photo.jpg', size: 'thumbnail' });
  const response = await invokeOk(t, platform.admin, 'image-processor', { payload });
  t.is(response.statusCode, 200);
  const body = JSON.parse(response.body);
  t.is(body.processedUrl, 'https://example.com/photo-thumb.jpg');
  t.is(body.bucket, 'processed-images');
  t.is(body.requestId, response.requestId);
  t.true(response.billedDuration >= 100);
  const logs = await platform.admin.request<{ logs: { level: string; message: string }[] }>(
    'GET',
    `/api/v1/functions/image-processor/invocations/${response.requestId}/logs`,
  );
  t.is(logs.status, 200);
  const lines = logs.body.logs.map((line) => `${line.level} ${line.message}`);
  t.true(
    lines.some((line) => line.includes('Processing image https://example.com/photo.jpg')),
    lines.join('\n'),
  );
  t.true(
    lines.some((line) => line.startsWith('INFO') && line.includes('Image resized successfully')),
    lines.join('\n'),
  );
});

test.serial('the reference example runs asynchronously, with its logs', async (t) => {
  const requestId = await invokeAsync(t, platform.admin, 'image-processor', {
    payload: { imageUrl: 'https://example.com/async.jpg' },
  });
  const record = await finalRecord(platform.admin, 'image-processor', requestId);
  t.is(record.status, 'Succeeded');
  t.is(JSON.parse(record.body ?? '{}').processedUrl, 'https://example.com/async-thumb.jpg');
  const logs = await platform.admin.request<{ logs: { message: string }[] }>(
    'GET',
    `/api/v1/functions/image-processor/invocations/${requestId}/logs`,
  );
  t.true(logs.body.logs.some((line) => line.message.includes('Processing image https://example.com/async.jpg')));
});

test.serial('a Python exception is a classified function error, and the next invoke still works', async (t) => {
  const response = await invokeOk(t, platform.admin, 'image-processor', { payload: {} });
  t.is(response.statusCode, 500);
  t.is(response.outcome, 'functionError');
  t.is(response.error?.type, 'KeyError');
  const again = await invokeOk(t, platform.admin, 'image-processor', { payload: { imageUrl: 'x.jpg' } });
  t.is(again.statusCode, 200);
});
