// In-band BMC setup over HTTP (plan: server/bmc/setup.ts). An admin asks for it; the node's stage-1 agent picks
// the plan up after registering, runs it through /dev/ipmi0 and reports; the server then logs in to the BMC
// out-of-band with the new credentials and only when that works seals them into the bmcs table.
//
//   POST /api/v1/nodes/:uuid/bmc/setup      admin: {address, netmask, gateway?, vlan?, channel?, userId?, username, port?}
//                                            → 202 {setupId, state: 'pending', redacted, expect}; the password is
//                                            generated here and never leaves the server except inside the plan
//   GET  /api/v1/nodes/:uuid/bmc/setup      viewer: the latest request's state (pending, delivered, verified, failed)
//   GET  /api/v1/agent/:uuid/bmc-setup      stage-1 token: the pending plan, handed out ONCE ({pending: false} after),
//                                            only to a boot attempt the server started (rebuild, power action) and
//                                            only from the address that attempt's /ipxe request came from
//   POST /api/v1/agent/:uuid/bmc-setup      stage-1 token of the attempt that got the plan, from the same address:
//                                            {setupId, exitCode, output, …} → verify → {ok, state, message}
//
// The plan holds a password, and /ipxe is unauthenticated: a stage-1 token alone is not enough (anyone on the boot
// network can get one for a node that is not active). docs/security-model.md
//
// Requests live in the database (server/store/bmc-setups.ts, plan and password sealed by the keyring), the latest
// per node, for `ttlMs` (1 h): the agent's GET and POST may reach different replicas, and a restart forgets
// nothing. Handing out once and verifying once are conditional updates, so two replicas cannot both do either.
//
// Mounted by createApp through `extra`: createApp(deps, { extra: [bmcSetupMount({ nodes, bmcs, setups, clock, createBmc })] }).
import { randomUUID } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { BmcFactory } from '../bmc/index.ts';
import { buildBmcSetupPlan, BmcSetupInput, verifyBmcSetup, type BmcSetupPlan } from '../bmc/setup.ts';
import { redact } from '../bmc/types.ts';
import type { Clock } from '../clock.ts';
import { SmbiosUuid } from '../contract/common.ts';
import { AppError, notFound } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { BmcStore } from '../store/bmcs.ts';
import type { BmcSetupStore, SetupRecord } from '../store/bmc-setups.ts';
import type { NodeStore } from '../store/nodes.ts';
import type { Mount } from './app.ts';
import { agentAuth, principalOf } from './auth.ts';
import { auditIntent } from './audit-context.ts';
import { clientAddressOf } from './trusted.ts';
import type { RouteDoc } from './openapi.ts';
import { jsonBody, parseWith } from './validate.ts';

// ---- wire formats (the agent's side is in server/contract/bmc-setup.ts) -------------

/** The admin's request: what the BMC's LAN channel and new user should be. No password: the server makes one. */
export const BmcSetupRequest = z.strictObject({
  address: z.string(),
  netmask: z.string(),
  gateway: z.string().optional(),
  vlan: z.number().int().optional(),
  channel: z.number().int().optional(),
  userId: z.number().int().optional(),
  username: z.string(),
  port: z.number().int().optional(),
});

export { BmcSetupResult } from '../contract/bmc-setup.ts';
import { BmcSetupResult } from '../contract/bmc-setup.ts';

export const SETUP_STATES = ['pending', 'delivered', 'verifying', 'verified', 'failed', 'expired'] as const;
export type SetupState = (typeof SETUP_STATES)[number];

export interface BmcSetupApiDeps {
  nodes: Pick<NodeStore, 'get' | 'addEvent' | 'agentCredential' | 'attempts'>;
  bmcs: Pick<BmcStore, 'set'>;
  /** the requests, shared by every replica */
  setups: BmcSetupStore;
  clock: Clock;
  /** the out-of-band check (server/bmc createBmcFactory) */
  createBmc: BmcFactory;
  log?: Logger;
  /** how long a requested setup waits for the node's next stage-1 */
  ttlMs?: number;
}

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => MiddlewareHandler;

const view = (r: SetupRecord) => ({
  setupId: r.id,
  uuid: r.uuid,
  state: r.state,
  redacted: r.redacted,
  expect: r.expect,
  requestedBy: r.requestedBy,
  requestedAt: r.requestedAt.toISOString(),
  deliveredAt: r.deliveredAt?.toISOString() ?? null,
  finishedAt: r.finishedAt?.toISOString() ?? null,
  message: r.message,
});

export const BMC_SETUP_ROUTES: RouteDoc[] = [
  { method: 'post', path: '/api/v1/nodes/{uuid}/bmc/setup', summary: "Ask the node's stage-1 agent to set up its BMC in-band (address, new admin user; password generated, verified out-of-band, then stored)", tag: 'nodes', auth: 'admin', request: BmcSetupRequest },
  { method: 'get', path: '/api/v1/nodes/{uuid}/bmc/setup', summary: 'State of the latest in-band BMC setup (no secrets)', tag: 'nodes', auth: 'viewer' },
  { method: 'get', path: '/api/v1/agent/{uuid}/bmc-setup', summary: 'The pending in-band BMC setup plan, handed out once', tag: 'agent', auth: 'boot-token' },
  { method: 'post', path: '/api/v1/agent/{uuid}/bmc-setup', summary: 'Result of running the plan; the server verifies over the LAN before storing the credentials', tag: 'agent', auth: 'boot-token', request: BmcSetupResult },
];

export function bmcSetupRoutes(deps: BmcSetupApiDeps, requireRole: RequireRole): Hono {
  const { nodes, bmcs, setups, clock, createBmc, ttlMs = 3_600_000 } = deps;
  const app = new Hono();
  const uuidParam = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));

  /** The node's latest request; one nobody completed in time is expired (its password dropped) first. */
  async function current(uuid: string): Promise<SetupRecord | undefined> {
    const got = await setups.current(uuid, ttlMs);
    if (got?.expiredNow) await nodes.addEvent(uuid, { kind: 'bmc', reason: `BMC setup ${got.record.id} expired: ${got.record.message}`, actor: 'bmc-setup' });
    return got?.record;
  }

  const agentOf = (c: Context) => agentAuth(c, nodes, uuidParam(c), 'stage1');

  /** Why this stage-1 call may not have the plan (null: it may). */
  async function withheld(uuid: string, attempt: { id: number; serverStarted: boolean; address: string | null }, from: string | null): Promise<string | null> {
    if (!attempt.serverStarted) return 'this boot was not started by the server (rebuild or power action); rebuild the node to deliver it';
    if (!from || !attempt.address) return 'the address of the boot attempt or of this request is unknown';
    if (from !== attempt.address) return `asked from ${from}, but the boot attempt's /ipxe request came from ${attempt.address}`;
    const now = clock.now().getTime();
    const others = (await nodes.attempts(uuid)).filter((a) => !a.closedAt && a.expiresAt.getTime() > now && a.id !== attempt.id && a.address !== attempt.address);
    if (others.length) return `other addresses (${[...new Set(others.map((a) => a.address ?? 'unknown'))].join(', ')}) hold open boot attempts for this node`;
    return null;
  }

  app.post('/api/v1/nodes/:uuid/bmc/setup', requireRole('admin'), async (c) => {
    const uuid = uuidParam(c);
    const body = await jsonBody(c, BmcSetupRequest);
    if (!(await nodes.get(uuid))) throw notFound(`node ${uuid}`, { uuid });
    const input = BmcSetupInput.safeParse(body);
    if (!input.success) {
      throw new AppError(400, 'validation_failed', input.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '), { issues: input.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) });
    }
    await current(uuid); // an old request past its time is recorded as expired, not as replaced
    const { plan, password } = buildBmcSetupPlan(input.data);
    const actor = `api:${principalOf(c).name}`;
    const { record: rec, replaced: prev } = await setups.create({ id: randomUUID(), uuid, plan, password, requestedBy: actor });
    const replaced = prev ? ` (replaces ${prev.id})` : '';
    await nodes.addEvent(uuid, {
      kind: 'bmc',
      reason: `BMC setup ${rec.id} requested: channel ${plan.channel} ${plan.expect.address}/${input.data.netmask}, user ${plan.userId} ${plan.expect.username}${replaced}`,
      actor,
      data: { setupId: rec.id, address: plan.expect.address, port: plan.expect.port, username: plan.expect.username, channel: plan.channel, userId: plan.userId },
    }, { audit: auditIntent(c, 'node.bmc.setup', { kind: 'node', id: uuid }), auditChange: { before: prev ? { setupId: prev.id, state: prev.state } : null, after: { setupId: rec.id, address: plan.expect.address, username: plan.expect.username, channel: plan.channel, userId: plan.userId } } });
    return c.json(view(rec), 202);
  });

  app.get('/api/v1/nodes/:uuid/bmc/setup', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    const r = await current(uuid);
    if (!r) throw notFound(`BMC setup for node ${uuid}`, { uuid });
    return c.json(view(r));
  });

  app.get('/api/v1/agent/:uuid/bmc-setup', async (c) => {
    const { node, attempt } = await agentOf(c);
    const r = await current(node.uuid);
    // once: a second stage-1 (or a replayed request) must not get the password again
    if (!r || r.state !== 'pending' || !r.holdsSecret) return c.json({ pending: false });
    const from = clientAddressOf(c);
    const why = await withheld(node.uuid, attempt!, from);
    if (why) {
      // stays pending for the boot the server starts; the operator sees why in the timeline
      await nodes.addEvent(node.uuid, { kind: 'bmc', reason: `BMC setup ${r.id} withheld from boot attempt ${attempt!.id}: ${why}`, actor: 'bmc-setup', data: { setupId: r.id, attempt: attempt!.id, from } });
      return c.json({ pending: false });
    }
    // a conditional update: of two concurrent requests (on any replicas) one gets the plan, the other nothing
    const claimed = await setups.claim<BmcSetupPlan>(r.id, { attemptId: attempt!.id, address: from! });
    if (!claimed) return c.json({ pending: false });
    await nodes.addEvent(node.uuid, { kind: 'bmc', reason: `BMC setup ${r.id} handed to the stage-1 agent`, actor: 'bmc-setup', data: { setupId: r.id } });
    c.header('cache-control', 'no-store');
    return c.json({ pending: true, setupId: r.id, plan: claimed.plan });
  });

  app.post('/api/v1/agent/:uuid/bmc-setup', async (c) => {
    const { node, attempt } = await agentOf(c);
    const body = await jsonBody(c, BmcSetupResult);
    const r = await current(node.uuid);
    if (!r || r.id !== body.setupId) throw new AppError(409, 'conflict', `BMC setup ${body.setupId} is not node ${node.uuid}'s current setup${r ? ` (${r.id}, ${r.state})` : ''}`, { setupId: body.setupId });
    if (r.deliveredTo && (r.deliveredTo.attemptId !== attempt!.id || r.deliveredTo.address !== clientAddressOf(c))) {
      throw new AppError(403, 'forbidden', `BMC setup ${r.id} was handed to another boot attempt; only it may report the result`, { setupId: r.id });
    }
    const taken = () => new AppError(409, 'conflict', `BMC setup ${r.id} is ${r.state}; a result is taken once, after the plan was handed out`, { setupId: r.id, state: r.state });
    if (r.state !== 'delivered' || !r.holdsSecret) throw taken();
    // a conditional update: a second (replayed) result, on any replica, cannot run a second verification
    const password = await setups.startVerify(r.id, { attemptId: attempt!.id, address: clientAddressOf(c)! });
    if (password === null) throw taken();
    // the agent masks the password; mask again in case its output echoed it some other way
    const output = redact(body.output, [password]).slice(-2048);
    const finish = async (state: 'verified' | 'failed', message: string, data: Record<string, unknown>) => {
      await setups.finish(r.id, state, message);
      await nodes.addEvent(node.uuid, { kind: 'bmc', reason: `BMC setup ${r.id} ${state}: ${message}`, actor: 'bmc-setup', data: { setupId: r.id, exitCode: body.exitCode, ...data } });
      return c.json({ setupId: r.id, ok: state === 'verified', state, message });
    };
    if (body.exitCode !== 0 || body.timedOut) {
      return finish('failed', `ipmitool ${body.timedOut ? 'timed out' : `exited ${body.exitCode ?? 'without a code'}`} on the node; credentials not stored`, { output: output.slice(-512) });
    }
    // ipmitool exits 0 even when a command in the script failed (FACTS.md): only a login proves it worked
    const target = { driver: 'ipmi', address: r.expect.address, port: r.expect.port, username: r.expect.username, password };
    const verdict = await verifyBmcSetup(target, createBmc);
    if (!verdict.ok) {
      deps.log?.warn({ uuid: node.uuid, setupId: r.id, kind: verdict.kind }, 'BMC setup: out-of-band login failed');
      return finish('failed', `out-of-band login as ${target.username} at ${target.address}:${target.port} failed (${verdict.kind}): ${verdict.message}; credentials not stored`, { kind: verdict.kind, output: output.slice(-512) });
    }
    try {
      await bmcs.set(node.uuid, { driver: 'ipmi', address: target.address, port: target.port === 623 ? null : target.port, username: target.username, password }, 'bmc-setup');
    } catch (e) {
      await finish('failed', `verified, but storing the credentials failed: ${redact((e as Error).message, [password])}`, {});
      throw e;
    }
    return finish('verified', `logged in out-of-band as ${target.username} at ${target.address}:${target.port} (power ${verdict.power}); credentials stored`, { power: verdict.power });
  });

  return app;
}

/** For createApp's `extra`: mounts the routes at the root (their paths are absolute). */
export function bmcSetupMount(deps: BmcSetupApiDeps): (requireRole: RequireRole) => Mount {
  return (requireRole) => ({ at: '/', app: bmcSetupRoutes(deps, requireRole), docs: BMC_SETUP_ROUTES });
}
