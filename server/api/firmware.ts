// Firmware compliance over HTTP (issue 7): baselines in the admin API, the agent's plan and report, the fleet
// report as JSON / CSV, the /ui/firmware page, and Prometheus gauges. The routes parse the request, call the
// domain (server/domain/firmware-report.ts: rows, filters, summary) and render through
// server/api/firmware-views.ts. Mounted by createApp through `extra`:
//   createApp(deps, { extra: [firmwareMount({ nodes, firmware, clock })] })
// and the gate goes in as deps.inspection = createFirmwareGate({ store: firmware }).
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { SmbiosUuid } from '../contract/common.ts';
import { PLAN_SIGNATURE_HEADER, type PlanSigner } from '../contract/plan-signature.ts';
import { FirmwarePlan, FirmwareReport, NodeFirmwareState, type FirmwareReportResponse } from '../contract/firmware.ts';
import { BaselineDocumentError, formatIssue, MAX_DOCUMENT_BYTES, parseBaselineDocument } from '../domain/firmware-baseline.ts';
import type { NodeCompliance, ReportRow } from '../domain/firmware.ts';
import { complianceRows, filterReport, reportOptions } from '../domain/firmware-report.ts';
import { AppError, notFound } from '../errors.ts';
import type { Clock } from '../clock.ts';
import type { FirmwareStore } from '../store/firmware.ts';
import type { NodeStore } from '../store/nodes.ts';
import type { CablingStore } from '../store/cabling.ts';
import { agentNode, principalOf } from './auth.ts';
import { auditIntent, audited } from './audit-context.ts';
import { LabelFilter } from './admin.ts';
import type { Mount } from './app.ts';
import { registerFirmwareMetrics, reportCsv } from './firmware-views.ts';
import { renderFirmwarePage } from './views/firmware.tsx';
import type { RouteDoc } from './openapi.ts';
import { jsonBody, parseWith } from './validate.ts';

export interface FirmwareApiDeps {
  nodes: Pick<NodeStore, 'get' | 'agentCredential'>;
  firmware: FirmwareStore;
  /** the cabling plan: its compliance is reported beside firmware (issue 16 item 5); without it every node is unplanned */
  cabling?: Pick<CablingStore, 'list'>;
  clock: Clock;
  /** the app's prom-client registry: the firmware gauges are registered on it */
  metrics?: Registry;
  /** signs every plan body (ed25519 over the exact bytes sent); the agent runs nothing it cannot verify */
  planSigner: PlanSigner;
}

type RequireRole = (role: 'viewer' | 'operator' | 'admin') => MiddlewareHandler;

export const ReportQuery = z.strictObject({
  /** firmware state(s), comma separated: compliant,outdated,unknown,updating,failed,unmanaged */
  state: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(NodeFirmwareState))
    .optional(),
  /** label=key=value[,key=value] */
  label: LabelFilter
    .optional(),
  /** model as reports name it: "<manufacturer> <product>" (case-insensitive) */
  model: z.string().max(512).optional(),
  /** component id: bios, bmc, nic:<driver>, nic:<vendor:device> */
  component: z.string().max(128).optional(),
  format: z.enum(['json', 'csv']).default('json'),
});
export type ReportQuery = z.infer<typeof ReportQuery>;

/** Compliance rows for the whole fleet (or one node), from each node's latest facts. */
async function fleetRows(firmware: FirmwareStore, only?: { uuid: string }, cabling?: Pick<CablingStore, 'list'>): Promise<ReportRow[]> {
  const [fleet, baselines, plans] = await Promise.all([firmware.fleet(only), firmware.listBaselines(), cabling?.list() ?? []]);
  return complianceRows(fleet, baselines, plans);
}

/** One node's compliance from its latest facts (the dashboard's node page; null for an unknown node). */
export async function nodeCompliance(firmware: FirmwareStore, uuid: string): Promise<NodeCompliance | null> {
  return (await fleetRows(firmware, { uuid }))[0]?.compliance ?? null;
}

const BaselineListItem = z.object({
  name: z.string(),
  version: z.number(),
  policy: z.string(),
  selector: z.record(z.string(), z.string()),
  components: z.number(),
  /** the baseline's Secure Boot requirement (contract Baseline.secureBoot); null: none */
  secureBoot: z.enum(['required']).nullable(),
  updatedAt: z.string(),
  updatedBy: z.string(),
});

export const FIRMWARE_ROUTES: RouteDoc[] = [
  { method: 'get', path: '/api/v1/firmware/baselines', summary: 'List firmware baselines', tag: 'firmware', auth: 'viewer', response: z.object({ baselines: z.array(BaselineListItem) }) },
  { method: 'post', path: '/api/v1/firmware/baselines', summary: 'Apply baselines (YAML or JSON body; same document the CLI takes); unchanged documents keep their version', tag: 'firmware', auth: 'admin' },
  { method: 'get', path: '/api/v1/firmware/baselines/{name}', summary: 'One baseline with its change history', tag: 'firmware', auth: 'viewer' },
  { method: 'delete', path: '/api/v1/firmware/baselines/{name}', summary: 'Delete a baseline (kept in history)', tag: 'firmware', auth: 'admin' },
  { method: 'get', path: '/api/v1/firmware/nodes/{uuid}', summary: "One node's firmware compliance from its latest facts", tag: 'firmware', auth: 'viewer' },
  { method: 'get', path: '/api/v1/agent/{uuid}/firmware', summary: 'Firmware plan for stage-1 (steps to run, empty when nothing to do)', tag: 'agent', auth: 'boot-token', response: FirmwarePlan },
  { method: 'post', path: '/api/v1/agent/{uuid}/firmware', summary: "The agent's report of each update command (exit code, output); compliance changes only with fresh facts", tag: 'agent', auth: 'boot-token', request: FirmwareReport },
  { method: 'get', path: '/api/v1/reports/firmware', summary: 'Fleet firmware report (filters: state, label=k=v, model, component; format=json|csv)', tag: 'reports', auth: 'viewer' },
  { method: 'get', path: '/ui/firmware', summary: 'Firmware compliance page', tag: 'ui', auth: 'viewer', produces: 'text/html' },
];


export function firmwareRoutes(deps: FirmwareApiDeps, requireRole: RequireRole): Hono {
  const app = new Hono();
  const { firmware, nodes, clock } = deps;
  const actorOf = (c: Context) => `api:${principalOf(c).name}`;
  const uuidParam = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));

  const agentNodeOf = (c: Context) => agentNode(c, nodes, uuidParam(c));

  app.get('/api/v1/firmware/baselines', requireRole('viewer'), async (c) => {
    const list = await firmware.listBaselines();
    return c.json({
      // secureBoot is listed explicitly (null when absent): it decides compliance as much as the components do, and a
      // list that leaves it out shows a Secure-Boot-requiring baseline as the same as one that does not
      baselines: list.map((b) => ({
        name: b.spec.name,
        version: b.version,
        policy: b.spec.policy,
        selector: b.spec.selector,
        components: b.spec.components.length,
        secureBoot: b.spec.secureBoot ?? null,
        updatedAt: b.updatedAt.toISOString(),
        updatedBy: b.updatedBy,
      })),
    });
  });

  app.post('/api/v1/firmware/baselines', requireRole('admin'), async (c) => {
    const type = (c.req.header('content-type') ?? '').toLowerCase();
    if (type && !/^(application\/(json|yaml|x-yaml)|text\/(yaml|x-yaml|plain))\b/.test(type)) {
      throw new AppError(415, 'unsupported_media_type', `send the baseline as application/json or application/yaml, not ${type}`);
    }
    const text = await c.req.text();
    if (Buffer.byteLength(text) > MAX_DOCUMENT_BYTES) throw new AppError(413, 'payload_too_large', `a baseline document may be at most ${MAX_DOCUMENT_BYTES} bytes`);
    const source = c.req.query('source')?.slice(0, 256) || 'request body';
    let specs;
    try {
      specs = parseBaselineDocument(text, source);
    } catch (e) {
      if (e instanceof BaselineDocumentError) {
        throw new AppError(422, 'validation_failed', e.issues.map((i) => formatIssue(source, i)).join('; '), { issues: e.issues });
      }
      throw e;
    }
    const results = [];
    // a document may hold several baselines: one audit row each, written with that baseline's change
    for (const spec of specs) results.push(await firmware.applyBaseline(spec, { actor: actorOf(c), source, audit: auditIntent(c, 'firmware.baseline.apply', { kind: 'baseline', id: spec.name }) }));
    return c.json({ results }, results.some((r) => r.action === 'created') ? 201 : 200);
  });

  app.get('/api/v1/firmware/baselines/:name', requireRole('viewer'), async (c) => {
    const name = c.req.param('name');
    const b = await firmware.getBaseline(name);
    if (!b) throw notFound(`baseline ${name}`, { name });
    return c.json({ baseline: b.spec, version: b.version, source: b.source, createdAt: b.createdAt, updatedAt: b.updatedAt, updatedBy: b.updatedBy, history: await firmware.history(name) });
  });

  app.delete('/api/v1/firmware/baselines/:name', requireRole('admin'), async (c) => {
    const name = c.req.param('name');
    await audited(c, 'firmware.baseline.delete', { kind: 'baseline', id: name }, (audit) => firmware.deleteBaseline(name, actorOf(c), audit));
    return c.body(null, 204);
  });

  app.get('/api/v1/firmware/nodes/:uuid', requireRole('viewer'), async (c) => {
    const uuid = uuidParam(c);
    const [row] = await fleetRows(firmware, { uuid }, deps.cabling);
    if (!row) throw notFound(`node ${uuid}`, { uuid });
    return c.json(row);
  });

  app.get('/api/v1/agent/:uuid/firmware', async (c) => {
    const node = await agentNodeOf(c);
    const open = await firmware.openAttempts(node.uuid);
    const current = open.at(-1);
    let plan: FirmwarePlan;
    if (current) {
      const b = await firmware.getBaseline(current.baselineName);
      plan = {
        uuid: node.uuid,
        baseline: { name: current.baselineName, version: current.baselineVersion, policy: b?.spec.policy ?? 'enforce' },
        attempt: current.number,
        steps: current.steps,
        reboot: current.steps.some((s) => s.reboot),
      };
    } else {
      // nothing to run: still say which baseline the node falls under, for the agent's log
      const [row] = await fleetRows(firmware, { uuid: node.uuid });
      plan = { uuid: node.uuid, baseline: row?.compliance.baseline ?? null, attempt: null, steps: [], reboot: false };
    }
    // the signature covers these exact bytes: serialise once, sign, send the same string
    const body = JSON.stringify(plan);
    return c.body(body, 200, { 'content-type': 'application/json; charset=utf-8', [PLAN_SIGNATURE_HEADER]: deps.planSigner.sign(body), 'cache-control': 'no-store' });
  });

  app.post('/api/v1/agent/:uuid/firmware', async (c) => {
    const node = await agentNodeOf(c);
    const body = await jsonBody(c, FirmwareReport);
    const attempt = await firmware.recordReport(node.uuid, body.attempt, body.results, 'agent');
    const res: FirmwareReportResponse = { attempt: attempt.number, ok: attempt.ok === true, next: attempt.ok && attempt.steps.some((s) => s.reboot) ? 'reboot' : 'register' };
    return c.json(res);
  });

  app.get('/api/v1/reports/firmware', requireRole('viewer'), async (c) => {
    const { format, ...filters } = parseWith(ReportQuery, c.req.query());
    const data = filterReport(await fleetRows(firmware, undefined, deps.cabling), filters, clock.now());
    if (format === 'csv') {
      return c.body(reportCsv(data), 200, { 'content-type': 'text/csv; charset=utf-8; header=present', 'content-disposition': 'attachment; filename="firmware-report.csv"' });
    }
    return c.json(data);
  });

  app.get('/ui/firmware', requireRole('viewer'), async (c) => {
    // a form submits empty fields for "any", and links pick up stray parameters: keep only the filters we know
    const known = new Set(['state', 'label', 'model', 'component']);
    const raw = Object.fromEntries(Object.entries(c.req.query()).filter(([k, v]) => v !== '' && known.has(k)));
    const { format: _html, ...filters } = parseWith(ReportQuery, raw);
    const all = await fleetRows(firmware, undefined, deps.cabling);
    const data = filterReport(all, filters, clock.now());
    // the dashboard's headers (CSP without script or inline styles) come from app.ts for all of /ui
    return c.html(renderFirmwarePage({ report: data, options: reportOptions(all), viewer: principalOf(c) }));
  });

  return app;
}

/** For createApp's `extra`: mounts the firmware routes at the root (their paths are absolute). */
export function firmwareMount(deps: FirmwareApiDeps): (requireRole: RequireRole) => Mount {
  if (deps.metrics) registerFirmwareMetrics(deps.metrics, () => fleetRows(deps.firmware));
  return (requireRole) => ({ at: '/', app: firmwareRoutes(deps, requireRole), docs: FIRMWARE_ROUTES });
}
