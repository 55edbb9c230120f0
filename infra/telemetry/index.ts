import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  BatchSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
  SimpleSpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';

export interface Telemetry {
  shutdown(): Promise<void>;
}

let installed: { provider: TracerProvider; users: number } | undefined;

/**
 * Registers the tracer provider, the async context manager and W3C trace-context propagation, once per
 * process. Spans are always created (trace ids are real and flow through the bus); they are recorded and
 * exported only where `OTEL_EXPORTER_OTLP_ENDPOINT` is set, or to the exporter given (tests). With nowhere
 * to send them they are not sampled: the trace context is still made and carried (sampled flag off), but
 * no span records names, attributes and times that nobody reads (~20 µs per request).
 */
export const startTelemetry = (serviceName: string, exporter?: SpanExporter): Telemetry => {
  if (installed === undefined) {
    const processors: SpanProcessor[] = [];
    if (exporter !== undefined) processors.push(new SimpleSpanProcessor({ exporter }));
    if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT)
      processors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter() }));
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      spanProcessors: processors,
      ...(processors.length === 0 ? { sampler: new AlwaysOffSampler() } : {}),
    });
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    installed = { provider, users: 0 };
  }
  installed.users += 1;
  let shut = false;
  return {
    async shutdown() {
      if (shut || installed === undefined) return;
      shut = true;
      installed.users -= 1;
      if (installed.users === 0) await installed.provider.forceFlush();
    },
  };
};
