// The control plane over HTTP, against embedded PGlite and a real PostgreSQL server that this suite starts.
import { createTestDb } from '../../test/fakes/db.ts';
import { until } from '../../test/harness/wait.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/index.ts';
import { startPostgres, type PgCluster } from '../../test/harness/postgres.ts';
import { bootToken, client, createTestApp, sampleFacts, TOKENS } from '../../test/fakes/app.ts';
import type { InspectionGate } from '../domain/inspection.ts';

const U1 = '4c4c4544-0042-3510-8052-b4c04f4e4d32';
const U2 = '11111111-2222-3333-4444-555555555555';
const U3 = '99999999-8888-7777-6666-555555555555';
/** stays discovered: bad-input cases boot it (an active node gets no stage-1 token) */
const U4 = '66666666-0000-0000-0000-000000000004';

let pg: PgCluster | undefined;
const backends: [string, () => Promise<DbHandle>][] = [
  ['PGlite', () => createTestDb()],
  [
    'PostgreSQL',
    async () => {
      pg ??= await startPostgres();
      return createDb({ url: await pg.createDatabase('api'), maxConnections: 4 });
    },
  ],
];
afterAll(() => pg?.stop());

describe.each(backends)('control plane API on %s', (_name, makeDb) => {
  let db: DbHandle;
  let t: ReturnType<typeof createTestApp>;
  let http: ReturnType<typeof client>;
  beforeAll(async () => {
    db = await makeDb();
    t = createTestApp(db);
    http = client(t.app);
  });
  afterAll(async () => db?.close());

  it('walks a node through its whole lifecycle via HTTP and records every event', async () => {
    // discovered: first PXE request
    const script = await http.get(`/ipxe/${U1.toUpperCase()}?mac=52:54:00:12:34:56&serial=SN1`);
    expect(script.status).toBe(200);
    expect(script.text.split('\n')[0]).toBe('#!ipxe');
    expect(script.text).toMatch(/^kernel http:\/\/10\.0\.0\.1:8080\/images\/a{64} initrd=initrd\.img .*bootfarm\.uuid=4c4c4544-0042-3510-8052-b4c04f4e4d32 bootfarm\.token=\S+ bootfarm\.mode=stage1/m);
    const token = /bootfarm\.token=(\S+)/.exec(script.text)![1]!;

    // inspecting → ready: registration (inspection gate lets it through)
    const reg = await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U1), agentVersion: 't' } });
    expect(reg.status).toBe(200);
    expect(reg.json).toMatchObject({ uuid: U1, state: 'ready', next: 'provision', conflicts: [] });

    // provisioning: profile
    const prof = await http.get(`/api/v1/agent/${U1}/profile`, { token });
    expect(prof.status).toBe(200);
    expect(prof.json.kernel.sha256).toBe('a'.repeat(64));
    // the compute OS gets its own node credential, not the stage-1 token
    const cred = /bootfarm\.token=(\S+)/.exec(prof.json.cmdline)![1]!;
    expect(cred).not.toBe(token);
    expect(prof.json.cmdline).toContain('bootfarm.mode=compute');

    // active: installed
    const inst = await http.post(`/api/v1/agent/${U1}/installed`, { token: cred, body: { kernelDigest: 'a'.repeat(64), initrdDigest: 'b'.repeat(64) } });
    expect(inst.json).toEqual({ state: 'active' });
    const hb = await http.post(`/api/v1/agent/${U1}/heartbeat`, { token: cred, body: { uptimeSeconds: 12 } });
    expect(hb.json).toEqual({ state: 'active', next: 'continue' });

    // failed → rebuilding (operator actions) → inspecting (next boot registers)
    expect((await http.post(`/api/v1/nodes/${U1}/actions`, { token: TOKENS.operator, body: { action: 'fail', reason: 'kernel panic on console' } })).json.node.state).toBe('failed');
    expect((await http.post(`/api/v1/nodes/${U1}/actions`, { token: TOKENS.operator, body: { action: 'rebuild', reason: 'rebuild after panic' } })).json.node.state).toBe('rebuilding');
    const token2 = await bootToken(t.app, U1);
    expect(token2).not.toBe(token);
    // the new boot's gate: hold it in inspecting to observe the state
    const reg2 = await http.post('/api/v1/agent/register', { token: token2, body: { facts: sampleFacts(U1) } });
    expect(reg2.json.state).toBe('ready');

    const ev = await http.get(`/api/v1/nodes/${U1}/events`, { token: TOKENS.viewer });
    const transitions = [...ev.json.events].reverse().filter((e: any) => e.kind === 'transition').map((e: any) => [e.fromState, e.toState, e.actor]);
    expect(transitions).toEqual([
      [null, 'discovered', 'ipxe'],
      ['discovered', 'inspecting', 'agent'],
      ['inspecting', 'ready', 'inspection'],
      ['ready', 'provisioning', 'agent'],
      ['provisioning', 'active', 'agent'],
      ['active', 'failed', 'api:operator'],
      ['failed', 'rebuilding', 'api:operator'],
      ['rebuilding', 'inspecting', 'agent'],
      ['inspecting', 'ready', 'inspection'],
    ]);
    const reasons = [...ev.json.events].reverse().filter((e: any) => e.kind === 'transition').map((e: any) => e.reason);
    expect(reasons).toContain('kernel panic on console');
    expect([...ev.json.events].reverse().filter((e: any) => e.kind === 'phase').map((e: any) => e.reason)).toEqual(['ipxe-script', 'registered', 'ipxe-script', 'registered']);

    // the first boot's stage-1 token ended when its compute OS came up
    expect((await http.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U1) } })).status).toBe(403);

    const shown = await http.get(`/api/v1/nodes/${U1}`, { token: TOKENS.viewer });
    expect(shown.json.node).toMatchObject({ uuid: U1, state: 'ready', serial: 'SN-4c4c4544', manufacturer: 'QEMU' });
    expect(shown.json.node.credentialHash).toBeUndefined();
    expect(shown.json.facts.facts.bios.version).toBe('1.16.2-debian-1.16.2-1');
    expect(shown.json.interfaces[0]).toMatchObject({ mac: '52:54:00:12:34:56', switchName: 'tor-1', switchPortDescription: 'rack1 port 7' });

    // the new boot's profile issues a new node credential: the old boot's no longer works
    const prof2 = await http.get(`/api/v1/agent/${U1}/profile`, { token: token2 });
    const cred2 = /bootfarm\.token=(\S+)/.exec(prof2.json.cmdline)![1]!;
    expect((await http.post(`/api/v1/agent/${U1}/heartbeat`, { token: cred, body: {} })).status).toBe(403);
    expect((await http.post(`/api/v1/agent/${U1}/heartbeat`, { token: cred2, body: {} })).json).toEqual({ state: 'active', next: 'continue' });
  });

  it('rejects an illegal transition with 409 naming the current state', async () => {
    const u = '22222222-0000-0000-0000-000000000001';
    await http.get(`/ipxe/${u}`);
    const r = await http.post(`/api/v1/nodes/${u}/actions`, { token: TOKENS.operator, body: { action: 'fail', reason: 'x' } });
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe('invalid_transition');
    expect(r.json.error.message).toContain('discovered');
    expect(r.json.error.details.state).toBe('discovered');
    // nothing was half-written
    const ev = await http.get(`/api/v1/nodes/${u}/events`, { token: TOKENS.viewer });
    expect([...ev.json.events].reverse().filter((e: any) => e.kind === 'transition')).toHaveLength(1);
  });

  it('records MAC and serial conflicts on both nodes instead of overwriting', async () => {
    const tokA = await bootToken(t.app, U2);
    const tokB = await bootToken(t.app, U3);
    await http.post('/api/v1/agent/register', { token: tokA, body: { facts: sampleFacts(U2, { serial: 'DUP-1', macs: ['52:54:00:aa:00:01'] }) } });
    const b = await http.post('/api/v1/agent/register', { token: tokB, body: { facts: sampleFacts(U3, { serial: 'DUP-1', macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'] }) } });
    expect(b.status).toBe(200);
    expect(b.json.conflicts.map((c: any) => [c.kind, c.value, c.otherUuid]).sort()).toEqual([
      ['mac', '52:54:00:aa:00:01', U2],
      ['serial', 'DUP-1', U2],
    ]);
    // the MAC still belongs to the first node
    const a = await http.get(`/api/v1/nodes/${U2}`, { token: TOKENS.viewer });
    expect(a.json.interfaces.map((i: any) => i.mac)).toEqual(['52:54:00:aa:00:01']);
    expect(a.json.conflicts.map((c: any) => [c.kind, c.otherUuid])).toEqual(expect.arrayContaining([['mac', U3], ['serial', U3]]));
    const bNode = await http.get(`/api/v1/nodes/${U3}`, { token: TOKENS.viewer });
    expect(bNode.json.interfaces.map((i: any) => i.mac)).toEqual(['52:54:00:aa:00:02']);
    // re-registering is idempotent: no duplicate conflict rows or events
    await http.post('/api/v1/agent/register', { token: tokB, body: { facts: sampleFacts(U3, { serial: 'DUP-1', macs: ['52:54:00:aa:00:01'] }) } });
    const again = await http.get(`/api/v1/nodes/${U3}`, { token: TOKENS.viewer });
    expect(again.json.conflicts).toHaveLength(2);
    const listed = await http.get('/api/v1/nodes?conflict=true', { token: TOKENS.viewer });
    expect(listed.json.nodes.map((n: any) => n.uuid).sort()).toEqual([U2, U3].sort());
  });

  it('filters by state and label', async () => {
    const u = '33333333-0000-0000-0000-000000000001';
    await http.get(`/ipxe/${u}`);
    const p = await http.patch(`/api/v1/nodes/${u}`, { token: TOKENS.operator, body: { labels: { rack: 'r7', role: 'hv' } } });
    expect(p.json.node.labels).toEqual({ rack: 'r7', role: 'hv' });
    const r = await http.get('/api/v1/nodes?label=rack=r7&state=discovered', { token: TOKENS.viewer });
    expect(r.json.nodes.map((n: any) => n.uuid)).toEqual([u]);
    expect((await http.get('/api/v1/nodes?state=bogus', { token: TOKENS.viewer })).status).toBe(400);
    const rm = await http.patch(`/api/v1/nodes/${u}`, { token: TOKENS.operator, body: { labels: { role: null } } });
    expect(rm.json.node.labels).toEqual({ rack: 'r7' });
  });

  it('holds quarantined and maintenance nodes with a script that says why', async () => {
    const u = '44444444-0000-0000-0000-000000000001';
    await http.get(`/ipxe/${u}`);
    await http.post(`/api/v1/nodes/${u}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-on', reason: 'replacing PSU' } });
    const s = await http.get(`/ipxe/${u}`);
    expect(s.text).toContain('is maintenance: replacing PSU');
    expect(s.text).toMatch(/\nexit 1\n$/);
    expect(s.text).not.toContain('kernel ');
    const off = await http.post(`/api/v1/nodes/${u}/actions`, { token: TOKENS.operator, body: { action: 'maintenance-off' } });
    expect(off.json.node.state).toBe('discovered');
  });

  it('keeps BMC passwords encrypted and out of every response', async () => {
    const u = '55555555-0000-0000-0000-000000000001';
    await http.get(`/ipxe/${u}`);
    expect((await http.put(`/api/v1/nodes/${u}/bmc`, { token: TOKENS.operator, body: { driver: 'ipmi', address: '127.0.0.1', port: 9001, username: 'admin', password: 'hunter2-secret' } })).status).toBe(403);
    const put = await http.put(`/api/v1/nodes/${u}/bmc`, { token: TOKENS.admin, body: { driver: 'ipmi', address: '127.0.0.1', port: 9001, username: 'admin', password: 'hunter2-secret' } });
    expect(put.status).toBe(200);
    expect(put.text).not.toContain('hunter2');
    const shown = await http.get(`/api/v1/nodes/${u}`, { token: TOKENS.viewer });
    expect(shown.text).not.toContain('hunter2');
    expect(shown.json.bmc).toMatchObject({ driver: 'ipmi', address: '127.0.0.1', port: 9001, username: 'admin' });
    const raw = await db.db.execute<{ password_enc: string }>(`select password_enc from bmcs where node_uuid = '${u}'` as never);
    const rows = ((raw as any).rows ?? raw) as { password_enc: string }[];
    expect(rows[0]!.password_enc).toMatch(/^v1\./);
    expect(rows[0]!.password_enc).not.toContain('hunter2');
    expect((await t.bmcs.getCredentials(u))!.password).toBe('hunter2-secret');
  });

  describe('bad input', () => {
    const cases: [string, () => Promise<{ status: number; json: any }>, number, string][] = [
      ['malformed JSON', () => http.post('/api/v1/agent/register', { token: 'x'.repeat(20), raw: '{"facts": ' }), 400, 'malformed_json'],
      ['unknown top-level field', async () => http.post('/api/v1/agent/register', { token: await bootToken(t.app, U4), body: { facts: sampleFacts(U4), extra: 1 } }), 400, 'validation_failed'],
      ['invalid MAC in facts', async () => http.post('/api/v1/agent/register', { token: await bootToken(t.app, U4), body: { facts: sampleFacts(U4, { macs: ['zz:zz'] }) } }), 400, 'validation_failed'],
      ['invalid UUID in the path', () => http.get('/ipxe/not-a-uuid'), 400, 'validation_failed'],
      ['unknown node', () => http.get('/api/v1/nodes/77777777-0000-0000-0000-000000000001', { token: TOKENS.viewer }), 404, 'not_found'],
      ['no admin token', () => http.get('/api/v1/nodes'), 401, 'unauthorized'],
      ['wrong admin token', () => http.get('/api/v1/nodes', { token: 'nope-nope-nope-nope' }), 401, 'unauthorized'],
      ['viewer may not act', () => http.post(`/api/v1/nodes/${U1}/actions`, { token: TOKENS.viewer, body: { action: 'maintenance-on' } }), 403, 'forbidden'],
      ['operator may not retire', () => http.post(`/api/v1/nodes/${U1}/actions`, { token: TOKENS.operator, body: { action: 'retire' } }), 403, 'forbidden'],
      ['heartbeat without token', () => http.post(`/api/v1/agent/${U1}/heartbeat`, { body: {} }), 401, 'unauthorized'],
      ['heartbeat with a wrong token', () => http.post(`/api/v1/agent/${U1}/heartbeat`, { token: 'wrong-token-wrong-token', body: {} }), 403, 'forbidden'],
      ['unknown action', () => http.post(`/api/v1/nodes/${U1}/actions`, { token: TOKENS.admin, body: { action: 'explode' } }), 400, 'validation_failed'],
      ['no route', () => http.get('/api/v1/nope', { token: TOKENS.viewer }), 404, 'not_found'],
      // an unauthenticated caller learns nothing about which admin routes exist
      ['no route, no token', () => http.get('/api/v1/nope'), 401, 'unauthorized'],
    ];
    it.each(cases.map(([n, call, status, code]) => [`${n} → ${status} ${code}`, call, status, code] as const))('%s', async (_n, call, status, code) => {
      const r = await call();
      expect(r.status).toBe(status);
      expect(r.json.error.code).toBe(code);
      expect(typeof r.json.error.message).toBe('string');
    });

    it('rejects an oversized body with 413 and the error shape', async () => {
      const r = await t.app.request('/api/v1/agent/register', { method: 'POST', headers: { authorization: 'Bearer some-boot-token-0123456789', 'content-type': 'application/json', 'content-length': String(5 * 1024 * 1024) }, body: 'x'.repeat(5 * 1024 * 1024) });
      expect(r.status).toBe(413);
      expect(((await r.json()) as any).error.code).toBe('payload_too_large');
    });
  });

  it('serves an OpenAPI document that lists the routes', async () => {
    const r = await http.get('/api/v1/openapi.json');
    expect(r.json.openapi).toBe('3.1.0');
    expect(Object.keys(r.json.paths)).toEqual(expect.arrayContaining(['/api/v1/agent/register', '/ipxe/{uuid}', '/api/v1/nodes/{uuid}/actions']));
    expect(r.json.paths['/api/v1/agent/register'].post.requestBody.content['application/json'].schema.properties.facts).toBeTruthy();
  });
});

describe('inspection gate outcomes', () => {
  it('sends a node to firmware-updating or quarantine as the gate says', async () => {
    const db = await createTestDb();
    let verdict: Awaited<ReturnType<InspectionGate>> = { action: 'firmware', reason: 'BIOS 1.0 < 2.0' };
    const t = createTestApp(db, { inspection: async () => verdict });
    const http = client(t.app);
    const tok = await bootToken(t.app, U1);
    const r = await http.post('/api/v1/agent/register', { token: tok, body: { facts: sampleFacts(U1) } });
    expect(r.json).toMatchObject({ state: 'firmware-updating', next: 'firmware', reason: 'BIOS 1.0 < 2.0' });
    expect((await http.get(`/api/v1/agent/${U1}/profile`, { token: tok })).status).toBe(409);
    verdict = { action: 'quarantine', reason: 'firmware update failed 3 times' };
    const r2 = await http.post('/api/v1/agent/register', { token: tok, body: { facts: sampleFacts(U1) } });
    expect(r2.json).toMatchObject({ state: 'quarantined', next: 'hold' });
    await db.close();
  });
});

describe('database outage (real PostgreSQL)', () => {
  it('answers 503 while PostgreSQL is down and recovers when it returns', async () => {
    pg ??= await startPostgres();
    const db = await createDb({ url: await pg.createDatabase('outage'), maxConnections: 2 });
    const t = createTestApp(db);
    const http = client(t.app);
    expect((await http.get('/readyz')).status).toBe(200);
    pg.stopServer();
    try {
      const r = await http.get('/api/v1/nodes', { token: TOKENS.viewer });
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('unavailable');
      expect(r.headers.get('retry-after')).toBe('5');
      expect((await http.get('/readyz')).status).toBe(503);
      expect((await http.get('/ipxe/' + U1)).status).toBe(503);
    } finally {
      pg.start();
    }
    // back once PostgreSQL is: however long its restart takes on this machine
    await until('the API to answer again after PostgreSQL restarted', async () => (await http.get('/api/v1/nodes', { token: TOKENS.viewer })).status === 200, { limitMs: 60_000, pollMs: 100 });
    await db.close();
  });
});
