// One error type that knows its HTTP response (STYLE.md §5). Domain code throws AppError (or a TransitionError,
// mapped to 409 in one place: server/api/errors.ts); the API's single onError turns it into
// {error: {code, message, details}}.
export type ErrorCode =
  | 'bad_request'
  | 'validation_failed'
  | 'malformed_json'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'invalid_transition'
  | 'payload_too_large'
  | 'unsupported_media_type'
  | 'unavailable'
  | 'internal'
  | (string & {});

export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 410 | 413 | 415 | 416 | 422 | 429 | 500 | 502 | 503 | 504,
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const notFound = (what: string, details?: unknown) => new AppError(404, 'not_found', `${what} not found`, details);
