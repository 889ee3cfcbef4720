// Admin API (/api/v1/nodes…): bearer token with roles viewer < operator < admin.
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { LabelKey, SmbiosUuid } from '../contract/common.ts';
import { NodeState } from '../contract/lifecycle.ts';
import { CursorParam } from '../contract/cursor.ts';
import type { LifecycleEvent } from '../domain/lifecycle.ts';
import type { NodeRow } from '../store/nodes.ts';
import type { AuditIntent } from '../store/audit.ts';
import { principalOf } from './auth.ts';
import { audited } from './audit-context.ts';
import type { Deps } from './deps.ts';
import { jsonBody, parseWith } from './validate.ts';
import { AppError } from '../errors.ts';
import { InventoryFormatError, parseInventory, type ParsedInventory } from '../domain/inventory.ts';
import { createInventoryStore } from '../store/inventory.ts';

/** `?label=rack=r7,role=hv` → { rack: 'r7', role: 'hv' } */
export const LabelFilter = z.string().transform((s, ctx) => {
  const out: Record<string, string> = {};
  for (const pair of s.split(',').filter(Boolean)) {
    const at = pair.indexOf('=');
    if (at < 1) {
      ctx.addIssue({ code: 'custom', message: `label filter "${pair}" must be key=value` });
      return z.NEVER;
    }
    out[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return out;
});

export const NodeListQuery = z.strictObject({
  state: z
    .string()
    .transform((s) => s.split(','))
    .pipe(z.array(NodeState))
    .optional(),
  /** label=key=value[,key=value] */
  label: LabelFilter
    .optional(),
  manufacturer: z.string().max(256).optional(),
  product: z.string().max(256).optional(),
  conflict: z.enum(['true', 'false']).transform((v) => v === 'true').optional(),
  limit: z.coerce.number().int().min(1).max(10000).optional(),
  offset: z.coerce.number().int().min(0).optional(),
});

export const LabelsPatch = z.strictObject({ labels: z.record(LabelKey, z.string().max(256).nullable()) });

export const NodeAction = z.strictObject({
  action: z.enum(['maintenance-on', 'maintenance-off', 'rebuild', 'retire', 'fail', 'quarantine']),
  reason: z.string().min(1).max(1024).optional(),
});

export type NodeAction = z.infer<typeof NodeAction>;

/** The role an action needs: retiring is final (admin); the rest is operator work. */
export const nodeActionRole = (action: NodeAction['action']) => (action === 'retire' ? 'admin' : 'operator');

/** One lifecycle action on a node (the API's POST …/actions and the dashboard's node page). */
export async function runNodeAction(deps: Pick<Deps, 'nodes' | 'rebuild'>, uuid: string, body: NodeAction, actor: string, audit?: AuditIntent): Promise<NodeRow> {
  const reason = body.reason ?? `${body.action} requested by ${actor}`;
  if (body.action === 'rebuild' && deps.rebuild) return deps.rebuild(uuid, reason, actor, audit);
  return deps.nodes.transition(uuid, { type: body.action, reason } as LifecycleEvent, actor, undefined, { audit });
}

export const EnrollBody = z.strictObject({
  format: z.enum(['csv', 'yaml']),
  /** the inventory file's text */
  inventory: z.string().min(1).max(4 * 1024 * 1024),
  /** check every row and say what would be enrolled, write nothing */
  dryRun: z.boolean().optional(),
});

/** ?force=true deletes a node that runs or is booting (server/domain/inventory.ts deleteRefusal) */
export const DeleteQuery = z.strictObject({ force: z.enum(['true', 'false']).optional() });

export const BmcInputBody = z.strictObject({
  driver: z.enum(['ipmi', 'redfish']),
  address: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65535).optional(),
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(256),
  options: z
    .strictObject({
      /** redfish: 'https' (default) or 'http' */
      scheme: z.enum(['http', 'https']).optional(),
      systemPath: z.string().startsWith('/redfish/v1/').max(256).optional(),
      timeoutMs: z.number().int().min(100).max(120_000).optional(),
      /** redfish over HTTPS: the PEM CA bundle (or the BMC's self-signed certificate) to verify it against */
      caBundle: z
        .string()
        .max(64 * 1024)
        .refine((s) => s.includes('-----BEGIN CERTIFICATE-----'), 'caBundle must be PEM (-----BEGIN CERTIFICATE-----)')
        .optional(),
      /** redfish over HTTPS without certificate verification: an explicit, logged choice */
      insecure: z.boolean().optional(),
      /** ipmi */
      cipherSuite: z.number().int().min(0).max(17).optional(),
      timeoutSeconds: z.number().int().min(1).max(60).optional(),
      retries: z.number().int().min(0).max(10).optional(),
      /** how the machine boots PXE: 'uefi' or 'legacy'; unset = what its last iPXE reported */
      bootMode: z.enum(['uefi', 'legacy']).optional(),
    })
    .refine((o) => !(o.caBundle && o.insecure), 'options.caBundle and options.insecure exclude each other')
    .optional(),
});

export function nodeView(n: NodeRow) {
  const { credentialHash: _hidden, ...rest } = n;
  return rest;
}

export function adminRoutes(deps: Deps, requireRole: (r: 'viewer' | 'operator' | 'admin') => import('hono').MiddlewareHandler) {
  const app = new Hono();
  const { nodes } = deps;
  const uuidParam = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));
  const actorOf = (c: Context) => `api:${principalOf(c).name}`;

  app.get('/nodes', requireRole('viewer'), async (c) => {
    const q = parseWith(NodeListQuery, c.req.query());
    const list = await nodes.list({ state: q.state, labels: q.label, manufacturer: q.manufacturer, product: q.product, conflict: q.conflict, limit: q.limit, offset: q.offset });
    return c.json({ nodes: list.map(nodeView), count: list.length });
  });

  app.get('/nodes/:uuid', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    const node = await nodes.require(uuid);
    const [facts, ifs, conflicts, bmc, events] = await Promise.all([nodes.latestFacts(uuid), nodes.interfaces(uuid), nodes.conflicts(uuid), deps.bmcs.get(uuid), nodes.events(uuid, { limit: 1000 })]);
    return c.json({ node: nodeView(node), facts: facts ? { collectedAt: facts.collectedAt, agentVersion: facts.agentVersion, facts: facts.facts, failures: facts.failures } : null, interfaces: ifs, conflicts, bmc, events: events.slice(-50) });
  });

  app.patch('/nodes/:uuid', requireRole('operator'), async (c) => {
    const uuid = uuidParam(c);
    const body = await jsonBody(c, LabelsPatch);
    const node = await audited(c, 'node.labels', { kind: 'node', id: uuid }, (audit) => nodes.setLabels(uuid, body.labels, actorOf(c), audit));
    return c.json({ node: nodeView(node) });
  });

  app.get('/nodes/:uuid/events', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    await nodes.require(uuid);
    // newest first; `before` is the previous page's nextCursor (keyset on (at, id): stable while events arrive)
    const q = parseWith(z.strictObject({ before: CursorParam.optional(), limit: z.coerce.number().int().min(1).max(5000).optional() }), c.req.query());
    const page = await nodes.eventsPage(uuid, { limit: q.limit ?? 100, before: q.before });
    return c.json({ events: page.rows, nextCursor: page.nextCursor });
  });

  app.post('/nodes/:uuid/actions', async (c, next) => {
    // retiring is final: admins only; the rest is operator work
    const body = await jsonBody(c, NodeAction);
    c.set('action' as never, body as never);
    return requireRole(nodeActionRole(body.action))(c, next);
  }, async (c) => {
    const uuid = uuidParam(c);
    const body = c.get('action' as never) as NodeAction;
    const node = await audited(c, `node.${body.action}`, { kind: 'node', id: uuid }, (audit) => runNodeAction(deps, uuid, body, actorOf(c), audit));
    return c.json({ node: nodeView(node) });
  });

  app.put('/nodes/:uuid/bmc', requireRole('admin'), async (c) => {
    const uuid = uuidParam(c);
    const body = await jsonBody(c, BmcInputBody);
    // a rack is often enrolled before its first boot, from the vendor's inventory (UUID + BMC address): the node
    // is created as discovered so that bootfarm can power it on and boot it unattended (one transaction with the BMC)
    return c.json({ bmc: await audited(c, 'node.bmc.set', { kind: 'node', id: uuid }, (audit) => deps.bmcs.set(uuid, body, actorOf(c), { enroll: 'enrolled with its BMC', audit })) });
  });

  app.get('/nodes/:uuid/bmc', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    const bmc = await deps.bmcs.get(uuid);
    if (!bmc) return c.json({ error: { code: 'not_found', message: `node ${uuid} has no BMC enrolled` } }, 404);
    return c.json({ bmc });
  });

  // bulk enrollment and delete (issue 17 item 6): admin work, each one transaction (server/store/inventory.ts)
  const inventory = createInventoryStore(deps.db.db, { clock: deps.clock, seal: deps.bmcs.seal });

  app.post('/nodes/enroll', requireRole('admin'), async (c) => {
    const body = await jsonBody(c, EnrollBody);
    let parsed: ParsedInventory;
    try {
      parsed = parseInventory(body.format, body.inventory);
    } catch (e) {
      if (e instanceof InventoryFormatError) throw new AppError(422, 'invalid_inventory', `${e.message}; nothing was enrolled`);
      throw e;
    }
    const profiles = Object.keys(deps.config.profiles);
    const errors = [...parsed.errors];
    for (const { row, node } of parsed.rows)
      if (node.profile && !profiles.includes(node.profile)) errors.push({ row, field: 'profile', message: `no profile "${node.profile}" is configured (known: ${profiles.join(', ')})` });
    errors.push(...(await inventory.clashes(parsed.rows)));
    errors.sort((a, b) => a.row - b.row);
    if (errors.length)
      throw new AppError(422, 'invalid_inventory', `${errors.length} problem(s) in the inventory, first: row ${errors[0]!.row}${errors[0]!.field ? ` (${errors[0]!.field})` : ''}: ${errors[0]!.message}; nothing was enrolled`, { errors });
    const nodesOut = parsed.rows.map(({ row, node }) => ({ row, uuid: node.uuid, serial: node.serial ?? null, macs: node.macs, bmc: node.bmc ? `${node.bmc.driver} ${node.bmc.address}${node.bmc.port ? `:${node.bmc.port}` : ''}` : null, labels: node.labels, profile: node.profile ?? null }));
    if (body.dryRun) return c.json({ dryRun: true, enrolled: 0, nodes: nodesOut });
    const r = await audited(c, 'nodes.enroll', { kind: 'nodes', id: String(parsed.rows.length) }, (audit) => inventory.enroll(parsed.rows, actorOf(c), audit));
    return c.json({ dryRun: false, enrolled: r.enrolled.length, nodes: nodesOut }, 201);
  });

  app.delete('/nodes/:uuid', requireRole('admin'), async (c) => {
    const uuid = uuidParam(c);
    const q = parseWith(DeleteQuery, c.req.query());
    const force = q.force === 'true';
    return c.json({ deleted: await audited(c, force ? 'node.delete.forced' : 'node.delete', { kind: 'node', id: uuid }, (audit) => inventory.deleteNode(uuid, { force, actor: actorOf(c), audit })) });
  });

  app.post('/nodes/:uuid/conflicts/resolve', requireRole('admin'), async (c) => {
    const uuid = uuidParam(c);
    const body = await jsonBody(c, z.strictObject({ kind: z.enum(['mac', 'serial']).optional(), value: z.string().optional() }));
    await nodes.require(uuid);
    return c.json({ resolved: await audited(c, 'node.conflicts.resolve', { kind: 'node', id: uuid }, (audit) => nodes.resolveConflicts(uuid, actorOf(c), body, audit)) });
  });

  return app;
}
