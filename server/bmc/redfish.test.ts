// The Redfish driver. No real Redfish BMC runs on this machine (ipmi_sim speaks IPMI only), so these tests run
// against a small Redfish responder written here: a real HTTP server on 127.0.0.1 serving the ComputerSystem
// resource shapes of DMTF DSP0268 (as a Dell iDRAC / HPE iLO / OpenBMC bmcweb return them, trimmed).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRedfishBmc, type FetchFn } from './redfish.ts';
import { createBmcFactory } from './index.ts';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BmcError } from './types.ts';

const USER = 'root';
const PASS = 'calvin-Xy7';

interface SysState {
  PowerState: 'On' | 'Off';
  Boot: { BootSourceOverrideTarget: string; BootSourceOverrideEnabled: string };
  Health: 'OK' | 'Warning' | 'Critical';
  LocationIndicatorActive: boolean;
  resets: string[];
  managerResets: string[];
}

let server: Server;
let port: number;
const sys: SysState = { PowerState: 'Off', Boot: { BootSourceOverrideTarget: 'None', BootSourceOverrideEnabled: 'Disabled' }, Health: 'OK', LocationIndicatorActive: false, resets: [], managerResets: [] };
const ALLOWED = ['On', 'ForceOff', 'GracefulShutdown', 'ForceRestart', 'PowerCycle']; // no Nmi, like many BMCs

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status: number, doc?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(doc === undefined ? '' : JSON.stringify(doc));
      };
      if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}`) return send(401, { error: { code: 'Base.1.8.GeneralError', message: 'unauthorized' } });
      const url = req.url ?? '';
      if (req.method === 'GET' && url === '/redfish/v1/Systems') return send(200, { Members: [{ '@odata.id': '/redfish/v1/Systems/System.Embedded.1' }], 'Members@odata.count': 1 });
      if (url === '/redfish/v1/Systems/System.Embedded.1') {
        if (req.method === 'GET')
          return send(200, {
            '@odata.id': url,
            PowerState: sys.PowerState,
            Boot: sys.Boot,
            Status: { State: 'Enabled', Health: sys.Health },
            LocationIndicatorActive: sys.LocationIndicatorActive,
            Actions: { '#ComputerSystem.Reset': { target: `${url}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': ALLOWED } },
          });
        if (req.method === 'PATCH') {
          const p = JSON.parse(body);
          if (p.Boot) Object.assign(sys.Boot, p.Boot);
          if ('LocationIndicatorActive' in p) sys.LocationIndicatorActive = p.LocationIndicatorActive;
          return send(204);
        }
      }
      if (req.method === 'POST' && url === '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset') {
        const { ResetType } = JSON.parse(body);
        if (!ALLOWED.includes(ResetType)) return send(400, { error: { '@Message.ExtendedInfo': [{ MessageId: 'Base.1.8.ActionParameterNotSupported', Message: 'not supported' }] } });
        sys.resets.push(ResetType);
        if (ResetType === 'On' || ResetType === 'PowerCycle') sys.PowerState = 'On';
        if (ResetType === 'ForceOff' || ResetType === 'GracefulShutdown') sys.PowerState = 'Off';
        return send(204);
      }
      if (req.method === 'GET' && url === '/redfish/v1/Managers') return send(200, { Members: [{ '@odata.id': '/redfish/v1/Managers/iDRAC.Embedded.1' }] });
      if (req.method === 'GET' && url === '/redfish/v1/Managers/iDRAC.Embedded.1')
        return send(200, { '@odata.id': url, Actions: { '#Manager.Reset': { target: `${url}/Actions/Manager.Reset`, 'ResetType@Redfish.AllowableValues': ['GracefulRestart'] } } });
      if (req.method === 'POST' && url === '/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Manager.Reset') {
        sys.managerResets.push(JSON.parse(body).ResetType);
        return send(204);
      }
      send(404, { error: { message: 'no such resource' } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

function counting() {
  const calls: { url: string; method: string }[] = [];
  const f: FetchFn = (url, init) => {
    calls.push({ url, method: init?.method ?? 'GET' });
    return fetch(url, init);
  };
  return { calls, f };
}

const bmc = (f?: FetchFn, password = PASS) => createRedfishBmc({ address: '127.0.0.1', port, username: USER, password, scheme: 'http', fetch: f });

describe('Redfish driver (against a Redfish responder written in this test)', () => {
  it('discovers the system, powers on, reads PowerState, sets the one-time PXE override, cycles', async () => {
    const { calls, f } = counting();
    const b = bmc(f);
    expect(await b.powerStatus()).toBe('off');
    await b.power('on');
    expect(await b.powerStatus()).toBe('on');
    await b.setBootDevice('pxe');
    expect(sys.Boot).toEqual({ BootSourceOverrideTarget: 'Pxe', BootSourceOverrideEnabled: 'Once' });
    await b.power('cycle');
    expect(sys.resets).toEqual(['On', 'PowerCycle']);
    // the Systems collection is read once, then the member path is remembered
    expect(calls.filter((c) => c.url.endsWith('/redfish/v1/Systems'))).toHaveLength(1);
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.url)).toEqual([
      `http://127.0.0.1:${port}/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset`,
      `http://127.0.0.1:${port}/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset`,
    ]);
  });

  it('mc reset cold is Manager.Reset on the first Manager, with the reset type the service allows (iDRAC: GracefulRestart)', async () => {
    const { calls, f } = counting();
    await bmc(f).mcResetCold();
    expect(sys.managerResets).toEqual(['GracefulRestart']);
    expect(calls.filter((c) => c.method === 'POST').map((c) => c.url)).toEqual([`http://127.0.0.1:${port}/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Manager.Reset`]);
  });

  it('NMI not in ResetType@Redfish.AllowableValues is "not supported" without a POST', async () => {
    const { calls, f } = counting();
    const err = await bmc(f).nmi().catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('unsupported');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
  });

  it('reads Status.Health and toggles LocationIndicatorActive', async () => {
    const b = bmc();
    expect(await b.health()).toEqual({ health: 'ok' });
    sys.Health = 'Critical';
    expect((await b.health()).health).toBe('critical');
    sys.Health = 'OK';
    await b.identify(10);
    expect(sys.LocationIndicatorActive).toBe(true);
    await b.identify(0);
    expect(sys.LocationIndicatorActive).toBe(false);
  });

  it('a rejected password is an auth error that carries neither the password nor the Authorization header', async () => {
    const wrong = 'not-the-password-42';
    const err = await bmc(undefined, wrong).powerStatus().catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('auth');
    const all = JSON.stringify({ m: err.message, d: err.details, s: err.stack });
    expect(all).not.toContain(wrong);
    expect(all).not.toContain(Buffer.from(`${USER}:${wrong}`).toString('base64'));
  });

  it('a BMC nobody answers for is "unreachable"', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const dead = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const err = await createRedfishBmc({ address: '127.0.0.1', port: dead, username: USER, password: PASS, scheme: 'http' }).powerStatus().catch((e) => e);
    expect(err).toBeInstanceOf(BmcError);
    expect(err.kind).toBe('unreachable');
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});

describe('Redfish over HTTPS with the self-signed certificate most BMCs ship (bmc/tls.ts)', () => {
  // the same responder behind TLS, with a certificate made here by openssl: self-signed for 127.0.0.1
  let tlsServer: HttpsServer;
  let tlsPort: number;
  let cert: string;
  let otherCert: string;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bf-redfish-tls-'));
    const mk = (name: string) =>
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
    mk('bmc');
    mk('other');
    cert = await readFile(join(dir, 'bmc.pem'), 'utf8');
    otherCert = await readFile(join(dir, 'other.pem'), 'utf8');
    tlsServer = createHttpsServer({ key: await readFile(join(dir, 'bmc.key')), cert }, server.listeners('request')[0] as Parameters<typeof createHttpsServer>[1]);
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    tlsPort = (tlsServer.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((r) => tlsServer?.close(() => r()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  const viaFactory = (options: Record<string, unknown>) => createBmcFactory()({ driver: 'redfish', address: '127.0.0.1', port: tlsPort, username: USER, password: PASS, options });

  it('verifies against the BMC record\'s caBundle, and refuses without it naming the certificate problem', async () => {
    expect(await viaFactory({ caBundle: cert }).powerStatus()).toMatch(/^(on|off)$/);
    const untrusted = await viaFactory({}).powerStatus().catch((e) => e);
    expect(untrusted).toBeInstanceOf(BmcError);
    expect(untrusted.message).toMatch(/TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\).*options\.caBundle/);
    // a bundle that does not sign this BMC's certificate is no better than none
    const wrong = await viaFactory({ caBundle: otherCert }).powerStatus().catch((e) => e);
    expect(wrong.message).toMatch(/TLS certificate is not trusted/);
  });

  it('insecure: true is an explicit way to skip verification', async () => {
    expect(await viaFactory({ insecure: true }).powerStatus()).toMatch(/^(on|off)$/);
  });
});

