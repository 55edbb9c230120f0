/** The few kinds of domain error; the API maps each code to an HTTP status in one place. */
export type DomainErrorCode = 'VALIDATION_ERROR' | 'INVALID_CODE_PACKAGE' | 'NOT_FOUND' | 'CONFLICT' | 'FORBIDDEN';

export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export interface DomainError {
  readonly kind: 'DomainError';
  readonly code: DomainErrorCode;
  readonly message: string;
  readonly details: readonly FieldProblem[];
}

export const domainError = (
  code: DomainErrorCode,
  message: string,
  details: readonly FieldProblem[] = [],
): DomainError => ({ kind: 'DomainError', code, message, details });

export const isDomainError = (value: unknown): value is DomainError =>
  typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'DomainError';

export const validationError = (message: string, details: readonly FieldProblem[]): DomainError =>
  domainError('VALIDATION_ERROR', message, details);

export const notFound = (message: string): DomainError => domainError('NOT_FOUND', message);

export const conflict = (message: string, details: readonly FieldProblem[] = []): DomainError =>
  domainError('CONFLICT', message, details);

/** Thrown (not returned) where a caller cannot go on, e.g. a command handler giving up. */
export class DomainFailure extends Error {
  readonly error: DomainError;
  constructor(error: DomainError) {
    super(error.message);
    this.name = 'DomainFailure';
    this.error = error;
  }
}

/** The domain error a value is or carries (a `DomainFailure`), recognised by shape, not by class. */
export const errorOf = (value: unknown): DomainError | undefined => {
  if (isDomainError(value)) return value;
  const carried = typeof value === 'object' && value !== null ? (value as { error?: unknown }).error : undefined;
  return isDomainError(carried) ? carried : undefined;
};

export const assertNever = (value: never): never => {
  throw new Error(`Unhandled case: ${JSON.stringify(value)}`);
};
