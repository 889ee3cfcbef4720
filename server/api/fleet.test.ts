// Fleet status and resume over HTTP, the /ui banner and `bootfarm fleet status|resume`, on PGlite with the real
// fleet controller's store (the breaker is opened the way the controller opens it: fleetStore.openBreaker).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from './app.ts';
import { fleetMount } from './fleet.ts';
import { createFleet, type Fleet } from '../fleet/controller.ts';
import { runFleet } from '../cli/fleet.ts';
import { apiClient } from '../cli.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { client, createTestApp, TOKENS } from '../../test/fakes/app.ts';
import { silentLogger } from '../log.ts';
import type { DbHandle } from '../db/index.ts';

describe('fleet status and resume', () => {
  let db: DbHandle;
  let fleet: Fleet;
  let app: ReturnType<typeof createApp>;
  let http: ReturnType<typeof client>;
  const fetchVia = (async (url: string | URL | Request, init?: RequestInit) => app.request(String(url).replace('http://bootfarm', ''), init)) as typeof fetch;
  const cli = async (args: string[], token = TOKENS.operator) => {
    const lines: string[] = [];
    await runFleet(args, { api: apiClient('http://bootfarm', token, fetchVia), out: (l) => lines.push(l) });
    return lines;
  };

  beforeAll(async () => {
    db = await createTestDb();
    const t = createTestApp(db);
    fleet = createFleet({ db, store: t.nodes, bmcStore: t.bmcs, clock: t.clock, logger: silentLogger() });
    app = createApp({ ...t.deps, fleetBreaker: fleet.breaker }, { extra: [fleetMount({ fleet, nodes: t.nodes })] });
    http = client(app);
    await fleet.tick();
  });
  afterAll(async () => {
    await fleet?.stop();
    await db?.close();
  });

  it('a closed breaker: not degraded, no banner, resume is a 409 that says why', async () => {
    const s = await http.get('/api/v1/fleet', { token: TOKENS.viewer });
    expect(s.status).toBe(200);
    expect(s.json).toMatchObject({ degraded: false, breaker: { open: false }, liveness: { leaderId: fleet.instanceId } });
    expect((await http.get('/ui', { token: TOKENS.viewer })).text).not.toContain('id="degraded"');
    const r = await http.post('/api/v1/fleet/resume', { token: TOKENS.operator, body: {} });
    expect(r.status).toBe(409);
    expect(r.json.error).toMatchObject({ code: 'breaker_closed' });
    expect(await cli(['status'])).toContain('automatic repair: running');
  });

  it('an open breaker: degraded everywhere; a viewer cannot resume, an operator can, and it is audited', async () => {
    await fleet.store.openBreaker({ at: new Date('2026-01-01T00:05:00Z'), reason: '60 of 200 active nodes of the fleet failed within 15 min (30 % > 10 %): automatic repair stopped', data: { scope: 'fleet' }, actor: 'fleet' });
    const s = await http.get('/api/v1/fleet', { token: TOKENS.viewer });
    expect(s.json).toMatchObject({ degraded: true, breaker: { open: true, reason: expect.stringMatching(/^60 of 200/) } });
    const ui = await http.get('/ui', { token: TOKENS.viewer });
    expect(ui.text).toMatch(/<p id="degraded"[^>]*><strong>Fleet degraded: automatic repair is stopped<\/strong> since 2026-01-01T00:05:00.000Z: 60 of 200 active nodes/);
    const status = await cli(['status']);
    expect(status[0]).toBe('DEGRADED: automatic repair stopped since 2026-01-01T00:05:00.000Z: 60 of 200 active nodes of the fleet failed within 15 min (30 % > 10 %): automatic repair stopped');

    expect((await http.post('/api/v1/fleet/resume', { token: TOKENS.viewer, body: {} })).status).toBe(403);
    expect((await http.post('/api/v1/fleet/resume', { token: TOKENS.operator, body: { reason: '' } })).status).toBe(400);
    expect(await cli(['resume', '--reason', 'uplink of r3 replaced'])).toEqual(['automatic repair resumed (by api:operator)']);
    const after = await http.get('/api/v1/fleet', { token: TOKENS.viewer });
    expect(after.json).toMatchObject({ degraded: false, breaker: { open: false, resumedBy: 'api:operator' } });
    expect(after.json.events[0]).toMatchObject({ kind: 'breaker-resume', actor: 'api:operator', reason: 'uplink of r3 replaced' });
    expect((await http.get('/ui', { token: TOKENS.viewer })).text).not.toContain('id="degraded"');
    await expect(cli(['bogus'])).rejects.toThrow(/unknown command 'bogus'/);
    await expect(cli(['resume', '--reson', 'typo'])).rejects.toThrow(/unknown option '--reson'\n\(Did you mean --reason\?\)/);
  });
});
