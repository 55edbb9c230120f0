/** The backing services of the production adapters, and the variable that points Strata at each. */
export type ServiceName = 'MongoDB' | 'Kafka' | 'EventStoreDB';

const VARIABLE_OF: Readonly<Record<ServiceName, string>> = {
  MongoDB: 'STRATA_MONGODB_URL',
  Kafka: 'STRATA_KAFKA_BROKERS',
  EventStoreDB: 'STRATA_EVENTSTORE_URL',
};

/**
 * A connection string fit to show: any password replaced by `***`, the query (which may carry secrets
 * such as TLS key passwords) and fragment left out. Host lists (`a:1,b:2`) pass unchanged.
 */
export const maskAddress = (address: string): string =>
  address
    .trim()
    .replace(/[?#].*$/, '')
    .replace(/([^\s:@/,]+):[^\s@/]*@/g, '$1:***@');

// Why a connection failed, in words an operator knows, from what the drivers put in their messages and codes.
const REASONS: ReadonlyArray<readonly [RegExp, string]> = [
  [/ECONNREFUSED|connection refused/i, 'connection refused'],
  [/ENOTFOUND|EAI_AGAIN|EAI_NONAME|getaddrinfo|DNS resolution failed|Name resolution/i, 'host not found'],
  [/EHOSTUNREACH|ENETUNREACH|No route to host/i, 'host unreachable'],
  [/ECONNRESET|EPIPE|socket hang up|connection reset|Connection closed|closed by the server/i, 'connection reset'],
  [/auth|SASL|access[ -]denied|Unauthenticated|permission/i, 'authentication failed'],
  [/certificate|TLS|SSL|handshake/i, 'TLS handshake failed'],
];

const UNREACHABLE_REASONS: ReadonlySet<string> = new Set([
  'connection refused',
  'host not found',
  'host unreachable',
  'connection reset',
]);

/** The messages and codes along an error's causes (and aggregated errors), outermost first. */
const textsOf = (error: unknown): string[] => {
  const texts: string[] = [];
  const seen = new Set<unknown>();
  const visit = (current: unknown) => {
    if (typeof current !== 'object' || current === null || seen.has(current)) return;
    seen.add(current);
    const { message, code, cause, errors, reason } = current as Record<string, unknown>;
    if (typeof code === 'string') texts.push(code);
    if (typeof message === 'string' && message !== '') texts.push(message);
    visit(cause);
    visit(reason);
    if (Array.isArray(errors)) for (const inner of errors) visit(inner);
  };
  visit(error);
  return texts;
};

/** A short reason for a failed connection: `connection refused`, `host not found`, `no answer within 5 s`, … */
export const failureReason = (error: unknown, waitedMs?: number): string => {
  const texts = textsOf(error);
  for (const [pattern, reason] of REASONS) if (texts.some((text) => pattern.test(text))) return reason;
  const timedOut = texts.some((text) => /timed? ?out|timeout|deadline/i.test(text));
  if (timedOut || texts.length === 0) {
    return waitedMs === undefined ? 'no answer in time' : `no answer within ${Math.round(waitedMs / 100) / 10} s`;
  }
  const first = (texts.find((text) => !/^[A-Z0-9_]+$/.test(text)) ?? texts[0] ?? '').split('\n')[0] ?? '';
  return maskAddress(first.length > 160 ? `${first.slice(0, 157)}...` : first);
};

export interface ServiceUnreachableDetails {
  readonly service: ServiceName;
  /** Where Strata looked for it: a URL (credentials are masked here) or a list of `host:port`. */
  readonly address: string;
  /** What the driver failed with, kept as the cause. */
  readonly cause?: unknown;
  /** How long the adapter tried before giving up. */
  readonly waitedMs?: number;
}

/**
 * A backing service could not be reached (or refused Strata) when an adapter first contacted it, so the
 * process cannot start. Its message is one line for the operator:
 * `cannot reach Kafka at 127.0.0.1:9092 (connection refused); is it running? (STRATA_KAFKA_BROKERS)`.
 * Once an adapter has reached its service, outages surface as the ports' `UNAVAILABLE` errors instead.
 */
export class ServiceUnreachableError extends Error {
  readonly code = 'SERVICE_UNREACHABLE';
  readonly service: ServiceName;
  readonly address: string;
  /** `connection refused`, `host not found`, `no answer within 5 s`, `authentication failed`, … */
  readonly reason: string;
  /** The environment variable that names the service's address. */
  readonly variable: string;

  constructor(details: ServiceUnreachableDetails) {
    const address = maskAddress(details.address);
    const reason = failureReason(details.cause, details.waitedMs);
    const variable = VARIABLE_OF[details.service];
    super(
      reason === 'host not found'
        ? `cannot reach ${details.service} at ${address} (${reason}); check the host name (${variable})`
        : UNREACHABLE_REASONS.has(reason) || reason.startsWith('no answer')
          ? `cannot reach ${details.service} at ${address} (${reason}); is it running? (${variable})`
          : `cannot use ${details.service} at ${address} (${reason}); check ${variable}`,
      details.cause === undefined ? undefined : { cause: details.cause },
    );
    this.name = 'ServiceUnreachableError';
    this.service = details.service;
    this.address = address;
    this.reason = reason;
    this.variable = variable;
  }
}

export const isServiceUnreachable = (error: unknown): error is ServiceUnreachableError =>
  typeof error === 'object' &&
  error !== null &&
  (error as { name?: unknown }).name === 'ServiceUnreachableError' &&
  (error as { code?: unknown }).code === 'SERVICE_UNREACHABLE';

/** Settles like `work`, or rejects with `onTimeout()` once `timeoutMs` has passed. */
export const withTimeout = <T>(work: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), Math.max(0, timeoutMs));
    }),
  ]).finally(() => clearTimeout(timer));
};
