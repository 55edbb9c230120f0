import { BusError, type BusErrorCode, isBusError } from '../../../domain/ports.ts';

export { BusError, type BusErrorCode, isBusError };

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
