// The cabling plan over HTTP (issue 16 item 5): load it (PUT, YAML or CSV by content type, replacing the whole
// plan), read it back, and each node's cabling from its latest LLDP facts. The routes parse, call the store and
// the pure rules (server/domain/cabling.ts, cabling-document.ts) and render; the check at registration is in
// server/api/agent.ts, the report columns in server/api/firmware.ts.
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { SmbiosUuid } from '../contract/common.ts';
import { cablingResult, type CablingResult } from '../domain/cabling.ts';
import { CablingDocumentError, formatCablingIssue, MAX_CABLING_BYTES, parseCablingDocument } from '../domain/cabling-document.ts';
import { AppError, notFound } from '../errors.ts';
import type { CablingNode, CablingStore } from '../store/cabling.ts';
import { audited } from './audit-context.ts';
import type { RouteDoc } from './openapi.ts';
import { parseWith, rejectBadStrings } from './validate.ts';

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => MiddlewareHandler;

export const CABLING_ROUTES: RouteDoc[] = [
  { method: 'put', path: '/api/v1/cabling', summary: 'Load the cabling plan (YAML: application/yaml; CSV: text/csv with header node,rack,nic,switch,port,policy); replaces the whole plan', tag: 'cabling', auth: 'operator' },
  { method: 'get', path: '/api/v1/cabling', summary: 'The loaded cabling plan: per node and per rack, who loaded it and when', tag: 'cabling', auth: 'viewer' },
  { method: 'get', path: '/api/v1/cabling/nodes', summary: "Every node's cabling from its latest LLDP facts (filter: status=compliant,failed,unplanned)", tag: 'cabling', auth: 'viewer' },
  { method: 'get', path: '/api/v1/cabling/nodes/{uuid}', summary: "One node's cabling from its latest LLDP facts", tag: 'cabling', auth: 'viewer' },
];

const StatusQuery = z.strictObject({
  status: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(z.enum(['compliant', 'failed', 'unplanned'])))
    .optional(),
});

/** The document's format from the request's content type: CSV, or YAML (JSON is YAML too). */
function formatOf(c: Context): 'yaml' | 'csv' {
  const type = (c.req.header('content-type') ?? '').toLowerCase();
  if (/^text\/csv\b/.test(type)) return 'csv';
  if (/^(application\/(yaml|x-yaml|json)|text\/(yaml|x-yaml))\b/.test(type)) return 'yaml';
  throw new AppError(415, 'unsupported_media_type', `send the cabling plan as application/yaml or text/csv, not ${type || 'a body without a content type'}`);
}

export interface NodeCabling extends CablingResult {
  uuid: string;
  hostname: string | null;
  nodeState: string;
  factsAt: string | null;
}

export const nodeCabling = (n: CablingNode, r: CablingResult): NodeCabling => ({ uuid: n.uuid, hostname: n.hostname, nodeState: n.state, ...r, factsAt: n.factsAt?.toISOString() ?? null });

export function cablingRoutes({ store }: { store: CablingStore }, requireRole: RequireRole): Hono {
  const app = new Hono();

  const results = async (uuid?: string) => {
    const [plans, list] = await Promise.all([store.list(), store.nodes(uuid ? { uuid } : {})]);
    return list.map((n) => nodeCabling(n, cablingResult(plans, n.uuid, n.labels, n.facts)));
  };

  app.put('/cabling', requireRole('operator'), async (c) => {
    const format = formatOf(c);
    const text = await c.req.text();
    if (Buffer.byteLength(text) > MAX_CABLING_BYTES) throw new AppError(413, 'payload_too_large', `a cabling plan may be at most ${MAX_CABLING_BYTES} bytes`);
    if (!text.trim()) throw new AppError(400, 'validation_failed', 'the cabling plan is empty; send YAML ("plans:" list) or CSV (header node,rack,nic,switch,port,policy)');
    rejectBadStrings(text, 'body');
    let entries;
    try {
      entries = parseCablingDocument(text, format);
    } catch (e) {
      if (e instanceof CablingDocumentError) throw new AppError(422, 'validation_failed', `cabling plan (${format}): ${e.issues.map(formatCablingIssue).join('; ')}`, { issues: e.issues });
      throw e;
    }
    const source = [format, c.req.query('source')?.slice(0, 256)].filter(Boolean).join(' ');
    const res = await audited(c, 'cabling.load', { kind: 'cabling', id: 'plan' }, (audit) => store.replace(entries, { actor: audit.actor, source, audit }));
    return c.json({ ...res, loadedAt: res.loadedAt.toISOString() });
  });

  app.get('/cabling', requireRole('viewer'), async (c) => {
    const plans = await store.list();
    const latest = plans.reduce<(typeof plans)[number] | null>((a, p) => (!a || p.loadedAt > a.loadedAt ? p : a), null);
    return c.json({
      loadedAt: latest?.loadedAt.toISOString() ?? null,
      loadedBy: latest?.loadedBy ?? null,
      source: latest?.source ?? null,
      plans: plans.map((p) => ({ scope: p.scope, key: p.key, policy: p.policy, links: p.links })),
    });
  });

  app.get('/cabling/nodes', requireRole('viewer'), async (c) => {
    const { status } = parseWith(StatusQuery, c.req.query());
    const all = await results();
    return c.json({ nodes: status ? all.filter((r) => status.includes(r.status)) : all });
  });

  app.get('/cabling/nodes/:uuid', requireRole('viewer'), async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const [row] = await results(uuid);
    if (!row) throw notFound(`node ${uuid}`, { uuid });
    return c.json(row);
  });

  return app;
}
