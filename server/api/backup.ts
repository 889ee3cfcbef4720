// The backup archive over HTTP (issue 17 item 6), admin only:
//   GET /api/v1/backup   the archive of `bootfarm backup` (server/store/backup.ts), streamed as it is written
// The way to back up a PGlite server while it serves (PGlite lives in this process; `bootfarm backup` on its data
// directory needs the server stopped); on PostgreSQL it is the same snapshot the CLI takes. The audit row is
// written before the first byte. A dump that fails half-way ends the response early: the archive is then
// truncated, which `bootfarm restore --check` (and the CLI's --from-server) reports.
import { PassThrough, Readable } from 'node:stream';
import { Hono } from 'hono';
import type { DbHandle } from '../db/index.ts';
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import { writeBackup } from '../store/backup.ts';
import { audited } from './audit-context.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';

export const BACKUP_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/backup', summary: 'The database as a backup archive (gzip, streamed; one snapshot; no KEK; audited). Restore with `bootfarm restore`', tag: 'backup', auth: 'admin' },
];

export function backupMount({ db, clock, log }: { db: DbHandle; clock: Clock; log: Logger }) {
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    app.get('/api/v1/backup', requireRole('admin'), async (c) => {
      const now = clock.now();
      await audited(c, 'database.backup', { kind: 'database', id: db.kind }, async () => null, () => ({ after: { engine: db.kind, createdAt: now.toISOString() } }));
      const body = new PassThrough();
      writeBackup(db, body, { now }).catch((err: Error) => {
        log.error({ err: err.message }, 'backup over the API failed half-way: the client got a truncated archive');
        body.destroy(err);
      });
      const name = `bootfarm-${now.toISOString().slice(0, 19).replace(/:/g, '')}.bfbackup.gz`;
      return new Response(Readable.toWeb(body) as ReadableStream, { headers: { 'content-type': 'application/gzip', 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' } });
    });
    return { at: '/', app, docs: BACKUP_ROUTES };
  };
}
