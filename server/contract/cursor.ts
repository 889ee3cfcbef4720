// Keyset pagination for newest-first lists (node events, the audit log): the cursor names the last row a page
// ended on by (at, id), so rows inserted while a client pages through never shift or repeat a page the way an
// offset would. Opaque to clients: base64url of "<ISO time>|<id>".
import { z } from 'zod';

export interface Cursor {
  at: Date;
  id: number;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.at.toISOString()}|${c.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(s: string): Cursor | null {
  if (s.length > 100 || !/^[A-Za-z0-9_-]+$/.test(s)) return null;
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|(\d{1,15})$/.exec(Buffer.from(s, 'base64url').toString('utf8'));
  if (!m) return null;
  const at = new Date(m[1]!);
  if (Number.isNaN(at.getTime())) return null;
  return { at, id: Number(m[2]) };
}

/** A `before=` query value: a cursor from a previous page's `nextCursor`. */
export const CursorParam = z.string().transform((s, ctx) => {
  const c = decodeCursor(s);
  if (!c) {
    ctx.addIssue({ code: 'custom', message: 'must be a nextCursor value from a previous page' });
    return z.NEVER;
  }
  return c;
});

/** One page from `limit + 1` rows fetched newest first: the extra row only says that another page exists. */
export function pageOf<T extends { at: Date; id: number }>(rows: T[], limit: number): { rows: T[]; nextCursor: string | null } {
  if (rows.length <= limit) return { rows, nextCursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, nextCursor: encodeCursor(page.at(-1)!) };
}
