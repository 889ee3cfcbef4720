// Issue 19 item 3: what the server hands a node on an IPv6-only boot network. Through the real app over a migrated
// PGlite, with the server named by an IPv6 literal (http.publicUrl http://[fd00:77::1]:8080, or no publicUrl and the
// request's own origin) and a profile whose iSCSI portal is [fd00:77::1]:3260: the stage-1 script's kernel, initrd
// and bootfarm.server carry the bracketed origin (RFC 3986 §3.2.2), and so do the compute profile's image URLs and
// cmdline, with the portal as configured. The node's own address is IPv6 (fd00:77::100) throughout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootNetworkConfig, client, createTestApp, sampleFacts, testConfig } from '../../test/fakes/app.ts';
import { createTestDb } from '../../test/fakes/db.ts';
import { FakeClock } from '../clock.ts';
import type { DbHandle } from '../db/index.ts';

const NODE_IP = 'fd00:77::100';
const BASE = 'http://[fd00:77::1]:8080';
const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
let db: DbHandle;
const clock = new FakeClock('2026-01-01T00:00:00Z');
let n = 0;
const nextUuid = () => `6b1d0000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
const profiles = { default: { image: 'compute', channel: 'prod', heartbeatIntervalSeconds: 5, iscsi: { portal: '[fd00:77::1]:3260', targetPrefix: 'iqn.2026-11.io.bootfarm:', lun: 1, chapUser: 'u6', chapPassword: 'p6' } } };

beforeAll(async () => {
  db = await createTestDb();
});
afterAll(async () => db?.close());

describe('an IPv6-only boot network: URLs and command lines name the server by its bracketed IPv6 literal', () => {
  it('http.publicUrl http://[fd00:77::1]:8080: stage-1 script, then the compute profile with the [IPv6]:port portal', async () => {
    const t = createTestApp(db, { clock, config: testConfig({ http: { publicUrl: BASE }, profiles }) });
    const api = client(t.app, { from: NODE_IP });
    const U = nextUuid();
    expect((await api.get('/boot.ipxe')).text).toContain(`chain --autofree ${BASE}/ipxe/\${uuid}?mac=`);
    const s = await api.get(`/ipxe/${U}`);
    expect(s.status).toBe(200);
    const token = /bootfarm\.token=(\S+)/.exec(s.text)![1]!;
    expect(s.text).toBe(
      `#!ipxe\n# bootfarm: stage-1 for ${U} (discovered)\n` +
        `kernel ${BASE}/images/${A} initrd=initrd.img quiet console=ttyS0,115200 console=tty0 bootfarm.server=${BASE} bootfarm.uuid=${U} bootfarm.token=${token} bootfarm.mode=stage1 bootfarm.planKey=${/bootfarm\.planKey=(\S+)/.exec(s.text)?.[1]} BOOTIF=01-\${netX/mac:hexhyp} || goto failed\n` +
        `initrd --name initrd.img ${BASE}/images/${B} || goto failed\n` +
        `boot || goto failed\n:failed\necho bootfarm: boot failed; retrying in 10 s\nsleep 10\nchain --autofree ${BASE}/ipxe/${U}\n`,
    );
    // stage-1 registers from its IPv6 address and asks for its profile
    expect((await api.post('/api/v1/agent/register', { token, body: { facts: sampleFacts(U) } })).status).toBe(200);
    const p = await api.get(`/api/v1/agent/${U}/profile`, { token });
    expect(p.status).toBe(200);
    expect(p.json.kernel.url).toBe(`${BASE}/images/${A}`);
    expect(p.json.initrd.url).toBe(`${BASE}/images/${B}`);
    const args = (p.json.cmdline as string).split(' ');
    expect(args).toEqual(expect.arrayContaining([`bootfarm.server=${BASE}`, 'bootfarm.mode=compute', 'bootfarm.iscsi.portal=[fd00:77::1]:3260', `bootfarm.iscsi.target=iqn.2026-11.io.bootfarm:${U}`, 'bootfarm.iscsi.lun=1']));
    // the compute OS's credential works from the same IPv6 address: installed → active
    const credential = /bootfarm\.token=(\S+)/.exec(p.json.cmdline)![1]!;
    expect((await api.post(`/api/v1/agent/${U}/installed`, { token: credential, body: {} })).json).toEqual({ state: 'active' });
    expect((await api.post(`/api/v1/agent/${U}/heartbeat`, { token: credential, body: { uptimeSeconds: 5 } })).status).toBe(200);
  });

  it('no publicUrl: the script names the IPv6 origin the node used', async () => {
    const t = createTestApp(db, { clock, config: { ...bootNetworkConfig(), profiles: testConfig({ profiles }).profiles } });
    const U = nextUuid();
    const r = await t.app.request(`${BASE}/ipxe/${U}`, {}, undefined as never);
    const text = await r.text();
    expect(r.status).toBe(200);
    expect(text).toContain(`kernel ${BASE}/images/${A} `);
    expect(text).toContain(` bootfarm.server=${BASE} `);
    expect(text).toContain(`initrd --name initrd.img ${BASE}/images/${B} `);
    expect(text).toContain(`chain --autofree ${BASE}/ipxe/${U}\n`);
  });
});
