// The API's single onError (STYLE.md §5): every failure leaves as {error: {code, message, details}}.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { AppError } from '../errors.ts';
import { TransitionError } from '../domain/lifecycle.ts';
import { isDbUnavailable } from '../db/index.ts';
import type { Logger } from '../log.ts';

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof TransitionError) return new AppError(409, 'invalid_transition', err.message, { state: err.from, event: err.event });
  if (err instanceof ZodError) return new AppError(400, 'validation_failed', zodMessage(err), { issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  if (err instanceof HTTPException) {
    const status = err.status as AppError['status'];
    if (status === 413) return new AppError(413, 'payload_too_large', err.message || 'request body is too large');
    return new AppError(status, status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_request', err.message);
  }
  if (isDbUnavailable(err)) return new AppError(503, 'unavailable', 'the database is unreachable; try again shortly', undefined, { 'retry-after': '5' });
  return new AppError(500, 'internal', 'internal error');
}

export function zodMessage(err: ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

export function errorResponse(c: Context, e: AppError) {
  for (const [k, v] of Object.entries(e.headers ?? {})) c.header(k, v);
  return c.json({ error: { code: e.code, message: e.message, ...(e.details !== undefined ? { details: e.details } : {}) } }, e.status);
}

export function createErrorHandler(logger: Logger) {
  return function onError(err: unknown, c: Context) {
    const e = toAppError(err);
    const log = (c.get('log' as never) as Logger | undefined) ?? logger;
    if (e.status >= 500) log.error({ err, path: c.req.path }, e.status === 503 ? 'dependency unavailable' : 'request failed');
    else log.debug({ code: e.code, path: c.req.path, msg: e.message }, 'request rejected');
    return errorResponse(c, e);
  };
}
