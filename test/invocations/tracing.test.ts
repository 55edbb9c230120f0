import { randomBytes } from 'node:crypto';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace';
import anyTest, { type TestFn } from 'ava';
import { type Telemetry, startTelemetry } from '../../infra/telemetry/index.ts';
import { assertError, uniqueName } from '../api/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import { deploy, eventually, finalRecord, HELLO, handlerCode, startInvocationPlatform } from './support.ts';

interface Context {
  readonly strata: TestPlatform;
  readonly exporter: InMemorySpanExporter;
  readonly telemetry: Telemetry;
}

const test = anyTest as TestFn<Context>;

test.before(async (t) => {
  // The first installation in a process decides the exporter: this one, before the platform's own.
  const exporter = new InMemorySpanExporter();
  const telemetry = startTelemetry('strata-tracing-test', exporter);
  const strata = await startInvocationPlatform({}, { runners: 'inProcess' });
  t.context = { strata, exporter, telemetry };
});

test.after.always(async (t) => {
  await t.context.strata?.stop();
  await t.context.telemetry?.shutdown();
});

/** A W3C traceparent as a client's own tracer would send it. */
const clientTrace = () => {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
};

const spansOf = (exporter: InMemorySpanExporter, traceId: string): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId);

/** The runner's span of the trace, once it has ended. */
const runnerSpan = (exporter: InMemorySpanExporter, traceId: string, name: string) =>
  eventually(`the runner's span in trace ${traceId}`, async () =>
    spansOf(exporter, traceId).find((span) => span.name === `invoke ${name}` && span.kind === SpanKind.CONSUMER),
  );

test('a sync invoke answers in the caller’s trace, and the runner’s span joins it', async (t) => {
  const { strata, exporter } = t.context;
  const name = uniqueName('traced');
  await deploy(t, strata.admin, name, HELLO);
  const trace = clientTrace();
  const response = await strata.admin.request('POST', `/api/v1/functions/${name}/invoke`, {
    body: {},
    headers: { traceparent: trace.traceparent },
  });
  t.is(response.status, 200);
  t.is(response.headers.get('x-trace-id'), trace.traceId);

  const runner = await runnerSpan(exporter, trace.traceId, name);
  t.is(runner.attributes['strata.outcome'], 'success');
  const server = spansOf(exporter, trace.traceId).find((span) => span.kind === SpanKind.SERVER);
  t.is(server?.name, 'POST /api/v1/functions/:name/invoke');
  t.is(server?.parentSpanContext?.spanId, trace.spanId, 'the API’s span is a child of the caller’s');
});

test('an error body carries the trace id of the request', async (t) => {
  const { strata } = t.context;
  const trace = clientTrace();
  const response = await strata.admin.request('POST', `/api/v1/functions/${uniqueName('missing')}/invoke`, {
    body: {},
    headers: { traceparent: trace.traceparent },
  });
  const error = assertError(t, response, 404, 'NOT_FOUND');
  t.is(error.traceId, trace.traceId);
  t.is(response.headers.get('x-trace-id'), trace.traceId);
});

test('without a traceparent each request gets a trace id of its own', async (t) => {
  const { strata } = t.context;
  const [a, b] = await Promise.all([
    strata.admin.request('GET', '/api/v1/functions'),
    strata.admin.request('GET', '/api/v1/functions'),
  ]);
  t.regex(a.headers.get('x-trace-id') ?? '', /^[0-9a-f]{32}$/);
  t.not(a.headers.get('x-trace-id'), b.headers.get('x-trace-id'));
});

test('an async invocation runs in the trace of the request that queued it, and a failure marks its span', async (t) => {
  const { strata, exporter } = t.context;
  const name = uniqueName('traced-async');
  await deploy(t, strata.admin, name, handlerCode('throw new Error("traced failure");'), { asyncRetries: 0 });
  const trace = clientTrace();
  const response = await strata.admin.request<{ requestId: string }>('POST', `/api/v1/functions/${name}/invoke-async`, {
    body: {},
    headers: { traceparent: trace.traceparent },
  });
  t.is(response.status, 202);
  t.is(response.headers.get('x-trace-id'), trace.traceId);
  t.like(await finalRecord(strata.admin, name, response.body.requestId), { status: 'DeadLettered' });
  const runner = await runnerSpan(exporter, trace.traceId, name);
  t.is(runner.attributes['strata.outcome'], 'functionError');
  t.is(runner.status.code, SpanStatusCode.ERROR);
});
