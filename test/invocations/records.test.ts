import test from 'ava';
import { startTestPlatform } from '../support/platform.ts';
import {
  deploy,
  FAST_ENV,
  HELLO,
  type InvocationRecord,
  invokeOk,
  type Metrics,
  startInvocationPlatform,
} from './support.ts';

// A sync caller has its answer before the result is recorded: the record is written a few milliseconds
// later, on the recording thread. A platform stopped in that window still writes it before it exits.

test('sync invocations answered just before a stop have their records and metrics after a restart', async (t) => {
  const first = await startInvocationPlatform();
  const name = 'answered-before-stop';
  await deploy(t, first.admin, name, HELLO);
  const answers = [];
  for (let call = 0; call < 5; call += 1) answers.push(await invokeOk(t, first.admin, name, { payload: { call } }));
  await first.stop({ keepData: true });

  const second = await startTestPlatform(FAST_ENV, {}, first.dataDir);
  t.teardown(() => second.stop());
  for (const { requestId } of answers) {
    const record = await second.admin.request<InvocationRecord>(
      'GET',
      `/api/v1/functions/${name}/invocations/${requestId}`,
    );
    t.is(record.status, 200, requestId);
    t.like(record.body, { requestId, status: 'Succeeded', invocationType: 'RequestResponse' });
  }
  const metrics = await second.admin.request<{ metrics: Metrics }>(
    'GET',
    `/api/v1/functions/${name}/metrics?window=PT1H`,
  );
  t.is(metrics.body.metrics.invocations, answers.length);
});
