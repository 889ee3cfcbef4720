// The API's single onError (STYLE.md §5): every failure leaves as {error: {code, message, details}}.
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { AppError } from '../errors.ts';
import { TransitionError } from '../domain/lifecycle.ts';
import { CidrError, NetworkError, PoolExhaustedError } from '../domain/ipam.ts';
import { isDbUnavailable } from '../db/index.ts';
import type { Logger } from '../log.ts';

export function toAppError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof TransitionError) return new AppError(409, 'invalid_transition', err.message, { state: err.from, event: err.event });
  // IPAM (server/domain/ipam.ts): a full pool is the state of the network, not the caller's mistake
  if (err instanceof PoolExhaustedError) return new AppError(409, 'pool_exhausted', err.message, { network: err.network, pool: err.pool, size: String(err.size) });
  if (err instanceof NetworkError) return new AppError(400, 'validation_failed', err.message, { network: err.network, problems: err.problems });
  if (err instanceof CidrError) return new AppError(400, 'validation_failed', err.message);
  if (err instanceof ZodError) return new AppError(400, 'validation_failed', zodMessage(err), { issues: err.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  if (err instanceof HTTPException) {
    const status = err.status as AppError['status'];
    if (status === 413) return new AppError(413, 'payload_too_large', err.message || 'request body is too large');
    return new AppError(status, status === 401 ? 'unauthorized' : status === 404 ? 'not_found' : 'bad_request', err.message);
  }
  if (isDbUnavailable(err)) return new AppError(503, 'unavailable', 'the database is unreachable; try again shortly', undefined, { 'retry-after': '5' });
  // the last line of defence behind validate.ts: a value the database refuses (SQLSTATE class 22, data exception:
  // out-of-range number, bad encoding, too long) is the caller's input, not our failure. The request's transaction
  // rolled back with it.
  const sqlState = sqlStateOf(err);
  if (sqlState && /^22...$/.test(sqlState)) return new AppError(400, 'invalid_value', 'a value in the request cannot be stored (out of range or not valid text)', { sqlState });
  return new AppError(500, 'internal', 'internal error');
}

function sqlStateOf(err: unknown): string | null {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
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
