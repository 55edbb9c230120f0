/** Errors raised by the embedded bus, recognised by `code` (the same way as the ports' `StoreError`). */
export type BusErrorCode = 'UNKNOWN_TOPIC' | 'INVALID_ARGUMENT' | 'UNAVAILABLE';

export class BusError extends Error {
  readonly code: BusErrorCode;
  constructor(code: BusErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
  }
}

export const isBusError = (error: unknown, code?: BusErrorCode): error is BusError =>
  typeof error === 'object' &&
  error !== null &&
  (error as { name?: unknown }).name === 'BusError' &&
  (code === undefined || (error as { code?: unknown }).code === code);

const codes: ReadonlySet<string> = new Set<BusErrorCode>(['UNKNOWN_TOPIC', 'INVALID_ARGUMENT', 'UNAVAILABLE']);

export const toBusError = (error: unknown, fallback: string): BusError => {
  if (isBusError(error) && codes.has(error.code)) return error;
  return new BusError('UNAVAILABLE', fallback, { cause: error });
};

/** Where the bus reports what no caller can be told about. A pino logger or `console` fits. */
export interface BusLogger {
  warn(details: Record<string, unknown>, message: string): void;
  info(details: Record<string, unknown>, message: string): void;
}
