import type { DomainErrorCode, FieldProblem } from '../domain/shared/errors.ts';

export type ApiErrorCode =
  | DomainErrorCode
  | 'UNAUTHORIZED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'METHOD_NOT_ALLOWED'
  | 'RATE_LIMIT_EXCEEDED'
  | 'INTERNAL_ERROR'
  | 'SERVICE_UNAVAILABLE';

/** The one place error codes map to HTTP statuses. */
export const STATUS_OF: Readonly<Record<ApiErrorCode, number>> = {
  VALIDATION_ERROR: 400,
  INVALID_CODE_PACKAGE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
  SERVICE_UNAVAILABLE: 503,
};

/** An error the API answers with as it is: its code, message and per-field details. */
export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly details: readonly FieldProblem[];
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    code: ApiErrorCode,
    message: string,
    details: readonly FieldProblem[] = [],
    headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.details = details;
    this.headers = headers;
  }
}

export const isApiError = (error: unknown): error is ApiError =>
  typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'ApiError';

export interface ErrorBody {
  readonly error: {
    readonly code: ApiErrorCode;
    readonly message: string;
    readonly details: readonly FieldProblem[];
    readonly traceId: string;
    readonly timestamp: string;
  };
}
