// A complete API app over a given database, with fixed tokens and a catalog that always has images, for tests;
// and the same app on a loopback socket, for tests whose rules read the peer address from the socket.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { createApp } from '../../server/api/app.ts';
import { parseConfig, type Config } from '../../server/config.ts';
import type { DbHandle } from '../../server/db/index.ts';
import type { ImageCatalog, ResolvedImage } from '../../server/domain/images.ts';
import { allowAll, type InspectionGate } from '../../server/domain/inspection.ts';
import { createBmcStore } from '../../server/store/bmcs.ts';
import { firmwareMount } from '../../server/api/firmware.ts';
import { createFirmwareGate } from '../../server/domain/firmware-gate.ts';
import { createFirmwareStore } from '../../server/store/firmware.ts';
import type { Registry } from 'prom-client';
import { createNodeStore, type NodeStore } from '../../server/store/nodes.ts';
import type { BeatBuffer } from '../../server/fleet/beats.ts';
import { createSecrets } from '../../server/secrets.ts';
import { silentLogger } from '../../server/log.ts';
import { createPlanSigner } from '../../server/contract/plan-signature.ts';
import { FakeClock, type Clock } from '../../server/clock.ts';
import type { OpenFn } from '../../boot/tftp/index.ts';

export const TOKENS = { admin: 'admin-token-0123456789abcdef', operator: 'operator-token-0123456789ab', viewer: 'viewer-token-0123456789abcd' };
export const TEST_KEY = Buffer.alloc(32, 7);
/** signs firmware plans in tests: a real ed25519 key from a fixed seed (server/contract/plan-signature.ts) */
export const TEST_PLAN_SIGNER = createPlanSigner(Buffer.alloc(32, 9));

const digest = (c: string) => c.repeat(64);

/** A catalog where every name:channel resolves to a fixed image (kernel aaaa…, initrd bbbb…). */
export class FixedCatalog implements ImageCatalog {
  constructor(private readonly images: Record<string, Omit<ResolvedImage, 'channel'>> = {}) {}
  async resolve(name: string, channel: string): Promise<ResolvedImage | null> {
    const img = this.images[name] ?? { name, version: '1.0.0', kernel: { digest: digest('a'), size: 1000 }, initrd: { digest: digest('b'), size: 2000 }, cmdline: 'quiet' };
    return { ...img, channel };
  }
}

export function testConfig(extra: Record<string, unknown> = {}): Config {
  return parseConfig({
    dataDir: '/nonexistent',
    http: { publicUrl: 'http://10.0.0.1:8080' },
    auth: { tokens: Object.entries(TOKENS).map(([role, token]) => ({ name: role, role, token })) },
    ...extra,
  });
}

/** testConfig for requests over a real socket: no publicUrl (a script names the URL it was fetched from), and the
 * boot network, trusted proxies and boot rate limits as given (the defaults: open, none, the configured default). */
export function bootNetworkConfig({ trustedNetworks = [], trustedProxies = [], rateLimit }: { trustedNetworks?: string[]; trustedProxies?: string[]; rateLimit?: Config['boot']['rateLimit'] } = {}): Config {
  const base = testConfig();
  return { ...base, http: { ...base.http, publicUrl: undefined, trustedProxies }, boot: { ...base.boot, trustedNetworks, ...(rateLimit ? { rateLimit } : {}) } };
}

/** Apps served on 127.0.0.1 (a free port each), all stopped by one `close` in afterAll. */
export function loopbackServers() {
  const servers: ServerType[] = [];
  return {
    /** serves `fetch`; resolves with its base URL once it listens */
    async listen(fetch: (req: Request, env: any) => Response | Promise<Response>): Promise<string> {
      const s = serve({ fetch, hostname: '127.0.0.1', port: 0 });
      servers.push(s);
      await new Promise((r) => s.once('listening', r));
      return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    },
    close(): void {
      for (const s of servers.splice(0)) s.close();
    },
  };
}

export function createTestApp(db: DbHandle, opts: { config?: Config; images?: ImageCatalog; inspection?: InspectionGate; clock?: Clock; beats?: (nodes: NodeStore) => BeatBuffer; bootFiles?: OpenFn } = {}) {
  const clock = opts.clock ?? new FakeClock();
  const config = opts.config ?? testConfig();
  const nodes = createNodeStore(db.db, { clock });
  const bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  const deps = { config, db, nodes, bmcs, images: opts.images ?? new FixedCatalog(), inspection: opts.inspection ?? allowAll, log: silentLogger(), clock, beats: opts.beats?.(nodes), planSigner: TEST_PLAN_SIGNER, bootFiles: opts.bootFiles };
  const app = createApp(deps);
  return { app, nodes, bmcs, config, clock, deps };
}

/** The API app with the firmware mount and the firmware gate over a given database (the firmware route tests). */
export function createFirmwareTestApp(db: DbHandle, { clock, metrics }: { clock: Clock; metrics?: Registry }) {
  const nodes = createNodeStore(db.db, { clock });
  const firmware = createFirmwareStore(db.db, { clock });
  const bmcs = createBmcStore(db.db, createSecrets(TEST_KEY), { clock });
  const app = createApp(
    { config: testConfig(), db, nodes, bmcs, images: new FixedCatalog(), inspection: createFirmwareGate({ store: firmware }), log: silentLogger(), clock, metrics, planSigner: TEST_PLAN_SIGNER },
    { extra: [firmwareMount({ nodes, firmware, clock, metrics, planSigner: TEST_PLAN_SIGNER })] },
  );
  return { app, nodes, firmware, bmcs };
}

/** What @hono/node-server hands a route as c.env: the peer address an in-process request appears to come from. */
export const fromAddress = (address: string) => ({ incoming: { socket: { remoteAddress: address, remotePort: 40000, remoteFamily: address.includes(':') ? 'IPv6' : 'IPv4' } } });

/** Helpers for calling the app in-process with JSON and a token; `from` sets the peer address (none by default). */
export function client(app: { request: (path: string, init?: RequestInit, env?: never) => Response | Promise<Response> }, { from }: { from?: string } = {}) {
  const call = async (method: string, path: string, { token, body, raw }: { token?: string; body?: unknown; raw?: string } = {}) => {
    const res = await app.request(
      path,
      {
        method,
        headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
      },
      (from ? fromAddress(from) : undefined) as never,
    );
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text, headers: res.headers };
  };
  return {
    get: (path: string, o?: { token?: string }) => call('GET', path, o),
    post: (path: string, o?: { token?: string; body?: unknown; raw?: string }) => call('POST', path, o),
    patch: (path: string, o?: { token?: string; body?: unknown; raw?: string }) => call('PATCH', path, o),
    put: (path: string, o?: { token?: string; body?: unknown; raw?: string }) => call('PUT', path, o),
    delete: (path: string, o?: { token?: string }) => call('DELETE', path, o),
  };
}

/** Boots a node through /ipxe/:uuid and returns the stage-1 boot token from the script's kernel line. */
export async function bootToken(app: Parameters<typeof client>[0], uuid: string, o: { from?: string } = {}): Promise<string> {
  const res = await client(app, o).get(`/ipxe/${uuid}`);
  const m = /bootfarm\.token=(\S+)/.exec(res.text);
  if (!m) throw new Error(`no token in script:\n${res.text}`);
  return m[1]!;
}

export function sampleFacts(uuid: string, over: { serial?: string; macs?: string[]; bios?: string; manufacturer?: string; product?: string } = {}) {
  return {
    system: { uuid, serial: over.serial ?? `SN-${uuid.slice(0, 8)}`, manufacturer: over.manufacturer ?? 'QEMU', product: over.product ?? 'Standard PC (i440FX + PIIX, 1996)' },
    bios: { vendor: 'SeaBIOS', version: over.bios ?? '1.16.2-debian-1.16.2-1', releaseDate: '04/01/2014' },
    nics: (over.macs ?? ['52:54:00:12:34:56']).map((mac, i) => ({ name: `eth${i}`, mac, driver: 'virtio_net', link: true })),
    lldp: [{ interface: 'eth0', chassisId: '02:00:00:00:00:01', systemName: 'tor-1', portId: 'swp7', portDescription: 'rack1 port 7' }],
  };
}
