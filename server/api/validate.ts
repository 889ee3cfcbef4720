// Request parsing with clear 4xx answers: malformed JSON names where it broke, zod issues name the field.
import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { zodMessage } from './errors.ts';

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.output<S>> {
  const type = c.req.header('content-type') ?? '';
  if (type && !/^application\/([a-z.+-]*\+)?json\b/i.test(type)) throw new AppError(415, 'unsupported_media_type', `expected an application/json body, got ${type}`);
  const text = await c.req.text();
  let value: unknown;
  try {
    value = text.length ? JSON.parse(text) : undefined;
  } catch (e) {
    throw new AppError(400, 'malformed_json', `request body is not valid JSON: ${(e as Error).message}`);
  }
  if (value === undefined) throw new AppError(400, 'malformed_json', 'request body is empty; a JSON document is required');
  return parseWith(schema, value);
}

export function parseWith<S extends z.ZodType>(schema: S, value: unknown, status: 400 | 404 = 400): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) {
    throw new AppError(status, status === 404 ? 'not_found' : 'validation_failed', zodMessage(r.error), { issues: r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
  }
  return r.data;
}
