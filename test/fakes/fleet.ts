// Named helpers for the fleet suites (STYLE.md §8): a PGlite database with stores and a fake clock, nodes
// walked to a given state through the real lifecycle, the boot flow a rebuilt node goes through, and a webhook
// receiver on loopback that checks signatures, and a counting BMC for fleets of hundreds of nodes.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createDb, type DbHandle } from '../../server/db/index.ts';
import { createNodeStore, type NodeStore } from '../../server/store/nodes.ts';
import { createBmcStore, type BmcStore } from '../../server/store/bmcs.ts';
import { createSecrets } from '../../server/secrets.ts';
import { FakeClock } from '../../server/clock.ts';
import { verifySignature, SIGNATURE_HEADER } from '../../server/fleet/webhooks.ts';
import { BmcError, type PowerState } from '../../server/bmc/types.ts';
import type { BmcFactory } from '../../server/bmc/index.ts';

export interface FleetTestDb {
  handle: DbHandle;
  store: NodeStore;
  bmcStore: BmcStore;
  clock: FakeClock;
  close(): Promise<void>;
}

export async function createFleetTestDb(start = '2026-03-01T00:00:00Z'): Promise<FleetTestDb> {
  const handle = await createDb({ dataDir: 'memory://' });
  const clock = new FakeClock(start);
  return { handle, clock, store: createNodeStore(handle.db, { clock }), bmcStore: createBmcStore(handle.db, createSecrets(randomBytes(32)), { clock }), close: () => handle.close() };
}

/** Walks a node through the real lifecycle: discovered → inspecting → ready → provisioning → active. */
export async function bootToActive(store: NodeStore, uuid: string, actor = 'test'): Promise<void> {
  const n = await store.get(uuid);
  if (!n) await store.enroll(uuid, {}, actor);
  const state = (await store.require(uuid)).state;
  if (state !== 'inspecting') await store.transition(uuid, { type: 'inspect' }, actor);
  await store.transition(uuid, { type: 'inspected' }, actor);
  await store.transition(uuid, { type: 'provision' }, actor);
  await store.transition(uuid, { type: 'installed' }, actor);
}

export const uuidOf = (i: number, prefix = '00000000') => `${prefix}-0000-4000-8000-${String(i).padStart(12, '0')}`;

export interface WebhookReceiver {
  url: string;
  received: { body: string; event: string; delivery: string; signed: boolean }[];
  /** HTTP statuses to answer with, in order; 200 after the list runs out */
  script: number[];
  /** the same per node (body.node.uuid), taken before `script`: another node's pending delivery (one an earlier
   * test left due) cannot eat a status meant for this node's */
  scriptFor: Map<string, number[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(secret: string): Promise<WebhookReceiver> {
  const r: Omit<WebhookReceiver, 'url' | 'close'> = { received: [], script: [], scriptFor: new Map() };
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      r.received.push({ body, event: String(req.headers['x-bootfarm-event']), delivery: String(req.headers['x-bootfarm-delivery']), signed: verifySignature(secret, body, req.headers[SIGNATURE_HEADER] as string | undefined) });
      let node: string | undefined;
      try {
        node = (JSON.parse(body) as { node?: { uuid?: string } }).node?.uuid;
      } catch {}
      const mine = node === undefined ? undefined : r.scriptFor.get(node);
      res.writeHead((mine?.length ? mine.shift() : r.script.shift()) ?? 200);
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return Object.assign(r, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  });
}

/**
 * A counting BMC for controller suites with hundreds of nodes (STYLE.md §8). A stand-in: one ipmi_sim per node
 * would cost ~200 processes here; fleet.test.ts and the e2e rack drive real ipmi_sim BMCs. Every call is
 * recorded as `${address} ${operation}`; power state per address starts `on`.
 */
export interface CountingBmcs {
  factory: BmcFactory;
  calls: { target: string; op: string }[];
  power: Map<string, PowerState>;
  /** operations that change something (power, boot device, BMC reset), i.e. what an outage must never cause */
  commands(): { target: string; op: string }[];
  /** addresses whose BMC does not answer (BmcError unreachable) */
  down: Set<string>;
}

export function createCountingBmcs(): CountingBmcs {
  const calls: { target: string; op: string }[] = [];
  const power = new Map<string, PowerState>();
  const down = new Set<string>();
  const factory: BmcFactory = (t) => {
    const target = t.address;
    const call = async (op: string) => {
      calls.push({ target, op });
      if (down.has(target)) throw new BmcError('unreachable', target, op, 'no answer from the BMC (counting fake)');
    };
    return {
      driver: 'ipmi',
      target,
      async powerStatus() {
        await call('power status');
        return power.get(target) ?? 'on';
      },
      async power(action) {
        await call(`power ${action}`);
        power.set(target, action === 'off' || action === 'soft' ? 'off' : 'on');
      },
      setBootDevice: (d) => call(`bootdev ${d}`),
      nmi: () => call('nmi'),
      identify: () => call('identify'),
      async health() {
        await call('health');
        return { health: 'ok' };
      },
      mcResetCold: () => call('mc reset cold'),
    };
  };
  return { factory, calls, power, down, commands: () => calls.filter((c) => c.op !== 'power status' && c.op !== 'health') };
}
