// Request parsing with clear 4xx answers: malformed JSON names where it broke, zod issues name the field, and
// values no store can hold (NUL, lone UTF-16 surrogates) or nesting deeper than any real document are refused
// with the field's name before anything is written (server/limits.ts says why).
import type { Context, MiddlewareHandler } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { badCharacters, findBadString, jsonDepth, MAX_DEPTH } from '../contract/limits.ts';
import { zodMessage } from './errors.ts';

const invalid = (field: string, problem: string) => new AppError(400, 'invalid_characters', `${field} ${problem}`, { field });

/** Throws 400 naming the field when any string or key in `value` holds a NUL or a lone surrogate. */
export function rejectBadStrings(value: unknown, where: string): void {
  const bad = findBadString(value);
  if (bad) throw invalid(bad.path === 'value' ? where : `${where}.${bad.path}`, bad.problem);
}

/** Parses JSON text with a depth limit checked before JSON.parse ever recurses. `what` names it in messages. */
export function parseJsonText(text: string, what = 'request body'): unknown {
  const depth = jsonDepth(text, MAX_DEPTH);
  if (depth > MAX_DEPTH) throw new AppError(400, 'too_deep', `${what} nests deeper than ${MAX_DEPTH} levels`, { maxDepth: MAX_DEPTH });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new AppError(400, 'malformed_json', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const type = c.req.header('content-type') ?? '';
  if (type && !/^application\/([a-z.+-]*\+)?json\b/i.test(type)) throw new AppError(415, 'unsupported_media_type', `expected an application/json body, got ${type}`);
  const text = await c.req.text();
  const value = text.length ? parseJsonText(text) : undefined;
  if (value === undefined) throw new AppError(400, 'malformed_json', 'request body is empty; a JSON document is required');
  rejectBadStrings(value, 'body');
  return parseWith(schema, value);
}

/** Validates `value` (a path parameter, the query, a parsed body) against `schema`; `where` names it in a 400. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, status: 400 | 404 = 400, where = typeof value === 'string' ? 'path parameter' : 'query'): z.output<S> {
  rejectBadStrings(value, where);
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new AppError(status, status === 404 ? 'not_found' : 'validation_failed', zodMessage(r.error), { issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  }
  return r.data;
}

/** The problem with a request's path, query or headers, naming the field, or null. Path segments and query
 * parts are percent-decoded as the routes will see them; a sequence that is not UTF-8 (RFC 3986 §2.5) is refused
 * rather than passed on raw. */
export function requestProblem(url: string, headers: Headers): { field: string; problem: string } | null {
  const u = new URL(url);
  const segments = u.pathname.split('/');
  for (let i = 1; i < segments.length; i++) {
    const p = decodedProblem(segments[i]!);
    if (p) return { field: `path segment ${i} ("${segments[i]!.slice(0, 40)}")`, problem: p };
  }
  if (u.search.length > 1) {
    for (const part of u.search.slice(1).split('&')) {
      const eq = part.indexOf('=');
      const rawKey = eq < 0 ? part : part.slice(0, eq);
      const kp = decodedProblem(rawKey.replace(/\+/g, ' '));
      let key: string;
      try {
        key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
      } catch {
        key = rawKey;
      }
      if (kp) return { field: `query parameter name "${rawKey.slice(0, 40)}"`, problem: kp };
      const vp = eq < 0 ? null : decodedProblem(part.slice(eq + 1).replace(/\+/g, ' '));
      if (vp) return { field: `query parameter ${JSON.stringify(key.slice(0, 40))}`, problem: vp };
    }
  }
  for (const [name, value] of headers) {
    const p = badCharacters(value);
    if (p) return { field: `header ${name}`, problem: p };
  }
  return null;
}

function decodedProblem(raw: string): string | null {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    return 'is not valid percent-encoded UTF-8';
  }
  return badCharacters(s);
}

/** Middleware: refuses a request whose path, query or headers hold NUL, lone surrogates or broken
 * percent-encoding. On routes that need a credential, a caller without a valid one gets the 401 first (the
 * shape of the input tells an anonymous caller nothing). */
export function cleanRequest({ isPublic, isAuthenticated }: { isPublic: (path: string) => boolean; isAuthenticated: (c: Context) => boolean | Promise<boolean> }): MiddlewareHandler {
  return async function rejectBadInput(c, next) {
    const bad = requestProblem(c.req.url, c.req.raw.headers);
    if (bad) {
      if (!isPublic(c.req.path) && !(await isAuthenticated(c))) throw new AppError(401, 'unauthorized', 'this endpoint needs an API token: Authorization: Bearer <token>');
      throw invalid(bad.field, bad.problem);
    }
    await next();
  };
}
