// The bounded serial-console store (issue 16 item 4). Output arrives in chunks (whatever one read from the SOL
// session returned); each append deletes, in the same transaction, the node's oldest chunks beyond `maxBytes`,
// so a node never holds more than its budget whatever it prints and however long it is captured. Bytes are
// counted in UTF-8 (what the budget is about), a chunk larger than the whole budget keeps only its tail.
import { and, asc, desc, eq, gt, sql } from 'drizzle-orm';
import type { Db } from '../db/index.ts';
import { consoleChunks } from '../db/schema/index.ts';
import { systemClock, type Clock } from '../clock.ts';

export interface ConsoleChunk {
  id: number;
  bootAt: Date;
  at: Date;
  data: string;
}

export interface ConsoleTail {
  /** the last ≤ `bytes` bytes of output (a cut multi-byte character at the start is dropped) */
  text: string;
  /** id of the newest chunk (0: nothing captured): `since(uuid, lastId)` continues from here */
  lastId: number;
  /** the boot the newest chunk belongs to */
  bootAt: Date | null;
}

export const DEFAULT_CONSOLE_BYTES = 256 * 1024;

/** The last `max` bytes of `s` in UTF-8, without a broken character at the start. */
export function utf8Tail(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  let start = b.length - max;
  // skip continuation bytes (10xxxxxx) of a character cut in half
  while (start < b.length && (b[start]! & 0xc0) === 0x80) start++;
  return b.subarray(start).toString('utf8');
}

/** Console text → lines a person reads: CR/LF normalised, ANSI escape sequences and other control bytes removed. */
export function consoleLines(text: string): string[] {
  return text
    .replace(/\x1b\[[0-9;?]*[ -/]*[@-~]/g, '')
    .replace(/\x1b[@-Z\\-_]/g, '')
    .replace(/\r\n?/g, '\n')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '')
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0);
}

export function createConsoleStore(db: Db, { clock = systemClock, maxBytes = DEFAULT_CONSOLE_BYTES }: { clock?: Clock; maxBytes?: number } = {}) {
  return {
    maxBytes,
    /** Appends output of `bootAt`'s boot and prunes the node's oldest chunks past the budget (one transaction). */
    async append(nodeUuid: string, bootAt: Date, data: string): Promise<number> {
      if (!data) return 0;
      const kept = utf8Tail(data, maxBytes);
      const bytes = Buffer.byteLength(kept, 'utf8');
      return db.transaction(async (tx) => {
        const [row] = await tx.insert(consoleChunks).values({ nodeUuid, bootAt, at: clock.now(), bytes, data: kept }).returning({ id: consoleChunks.id });
        // newest first, running total: every chunk whose total (itself and everything newer) passes the budget goes
        await tx.execute(sql`delete from console_chunks where id in (
          select id from (select id, sum(bytes) over (order by id desc) as total from console_chunks where node_uuid = ${nodeUuid}) s
          where s.total > ${maxBytes})`);
        return row!.id;
      });
    },
    /** The last `bytes` bytes the node printed (across boots, oldest first). */
    async tail(nodeUuid: string, { bytes = maxBytes, bootAt }: { bytes?: number; bootAt?: Date } = {}): Promise<ConsoleTail> {
      const where = bootAt ? and(eq(consoleChunks.nodeUuid, nodeUuid), eq(consoleChunks.bootAt, bootAt)) : eq(consoleChunks.nodeUuid, nodeUuid);
      // newest chunks until their sizes cover `bytes` (the budget bounds how many there can be)
      const rows = await db
        .select({ id: consoleChunks.id, bootAt: consoleChunks.bootAt, data: consoleChunks.data, total: sql<number>`sum(${consoleChunks.bytes}) over (order by ${consoleChunks.id} desc)`.mapWith(Number), size: consoleChunks.bytes })
        .from(consoleChunks)
        .where(where)
        .orderBy(desc(consoleChunks.id));
      const picked: typeof rows = [];
      for (const r of rows) {
        picked.push(r);
        if (r.total >= bytes) break;
      }
      const text = utf8Tail(
        picked
          .reverse()
          .map((r) => r.data)
          .join(''),
        bytes,
      );
      return { text, lastId: rows[0]?.id ?? 0, bootAt: rows[0]?.bootAt ?? null };
    },
    /** Chunks after `afterId`, oldest first (follow mode). */
    async since(nodeUuid: string, afterId: number, limit = 1000): Promise<ConsoleChunk[]> {
      return db
        .select({ id: consoleChunks.id, bootAt: consoleChunks.bootAt, at: consoleChunks.at, data: consoleChunks.data })
        .from(consoleChunks)
        .where(and(eq(consoleChunks.nodeUuid, nodeUuid), gt(consoleChunks.id, afterId)))
        .orderBy(asc(consoleChunks.id))
        .limit(limit);
    },
    /** The last `n` readable lines of the node's latest captured boot ([] when nothing was captured). */
    async lastLines(nodeUuid: string, n = 20): Promise<string[]> {
      const [latest] = await db.select({ bootAt: consoleChunks.bootAt }).from(consoleChunks).where(eq(consoleChunks.nodeUuid, nodeUuid)).orderBy(desc(consoleChunks.id)).limit(1);
      if (!latest) return [];
      // 200 bytes a line is generous for a console; the tail is small whatever the budget
      const { text } = await this.tail(nodeUuid, { bytes: Math.min(maxBytes, n * 200), bootAt: latest.bootAt });
      return consoleLines(text).slice(-n);
    },
    /** Bytes held for the node (tests and the node page). */
    async size(nodeUuid: string): Promise<number> {
      const [r] = await db.select({ n: sql<number>`coalesce(sum(${consoleChunks.bytes}), 0)`.mapWith(Number) }).from(consoleChunks).where(eq(consoleChunks.nodeUuid, nodeUuid));
      return r?.n ?? 0;
    },
  };
}

export type ConsoleStore = ReturnType<typeof createConsoleStore>;
