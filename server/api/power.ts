// Out-of-band control of one node through its BMC: what "bootfarm powers it on" means for an operator.
//   POST /api/v1/nodes/:uuid/power {action, bootdev?: pxe|disk, seconds?}                  (operator)
//        on | off | cycle | reset: hard power; soft: ACPI power button (the OS shuts down)
//        nmi: diagnostic interrupt (the OS panics and dumps, for a hung kernel)
//        identify: chassis LED for `seconds` (0 = off, default 15) — find the box in the rack
//        bmc-reset: restart the BMC itself (mc reset cold / Manager.Reset); the host keeps running
//   GET  /api/v1/nodes/:uuid/power                                                       (viewer)
// Powering on with bootdev pxe is the start of an unattended boot; the PXE override asks for UEFI when the node
// boots UEFI (bmc/index.ts pxeUefi). Every action is an event on the node, with the principal. BMC failures come
// back as the BmcError's own 502/422 with the error shape; the password never leaves the store except into the
// driver.
import { Hono, type Context } from 'hono';
import { SmbiosUuid } from '../contract/common.ts';
import type { BmcFactory } from '../bmc/index.ts';
import { isBmcError, pxeUefi, type PowerAction } from '../bmc/index.ts';
import type { BmcStore } from '../store/bmcs.ts';
import type { NodeStore } from '../store/nodes.ts';
import { AppError } from '../errors.ts';
import { principalOf } from './auth.ts';
import { audited } from './audit-context.ts';
import type { Mount, RequireRole } from './app.ts';
import type { RouteDoc } from './openapi.ts';
import type { PowerControl } from './deps.ts';
import { jsonBody, parseWith } from './validate.ts';
import { PowerRequest } from './requests.ts';

export { PowerRequest };

export const POWER_ROUTES: RouteDoc[] = [
  { method: 'post', path: '/api/v1/nodes/{uuid}/power', summary: 'Power action through the BMC (optionally set the next boot device first)', tag: 'nodes', auth: 'operator', request: PowerRequest },
  { method: 'get', path: '/api/v1/nodes/{uuid}/power', summary: 'Power state as the BMC reports it', tag: 'nodes', auth: 'viewer' },
];

type PowerDeps = { nodes: Pick<NodeStore, 'require' | 'addEvent' | 'expectBoot'>; bmcs: Pick<BmcStore, 'getCredentials'>; createBmc: BmcFactory };

async function bmcOf({ nodes, bmcs, createBmc }: PowerDeps, uuid: string) {
  const node = await nodes.require(uuid);
  const cred = await bmcs.getCredentials(uuid);
  if (!cred) throw new AppError(409, 'no_bmc', `node ${uuid} has no BMC enrolled (PUT /api/v1/nodes/${uuid}/bmc)`);
  return { node, cred, bmc: createBmc({ driver: cred.driver, address: cred.address, port: cred.port ?? undefined, username: cred.username, password: cred.password, options: cred.options }) };
}

/** Actions on the BMC or the board that are not a change of power (no boot follows them). */
const NOT_POWER: ReadonlySet<string> = new Set(['nmi', 'identify', 'bmc-reset']);

/** A power action on one node: the API's POST …/power and the dashboard's power form both come here. */
export function createPowerControl(deps: PowerDeps): PowerControl {
  const { nodes } = deps;
  return {
    async act(uuid, body, actor, audit) {
      const { node, cred, bmc } = await bmcOf(deps, uuid);
      try {
        if (NOT_POWER.has(body.action)) {
          let reason: string;
          if (body.action === 'nmi') {
            await bmc.nmi();
            reason = `diagnostic interrupt (NMI) via ${bmc.target}`;
          } else if (body.action === 'identify') {
            const seconds = body.seconds ?? 15;
            await bmc.identify(seconds);
            reason = seconds ? `identify LED on for ${seconds} s via ${bmc.target}` : `identify LED off via ${bmc.target}`;
          } else {
            await bmc.mcResetCold();
            reason = `BMC cold reset of ${bmc.target} (the host keeps running; the BMC answers again after a while)`;
          }
          const data = { action: body.action, ...(body.action === 'identify' ? { seconds: body.seconds ?? 15 } : {}) };
          await nodes.addEvent(uuid, { kind: 'bmc', reason, actor, data }, { audit, auditChange: { before: null, after: data } });
          // the BMC is restarting: asking it for the power state now would only time out
          return { action: body.action, bootdev: null, ...(body.action === 'bmc-reset' ? {} : { power: await bmc.powerStatus() }) };
        }
        const uefi = body.bootdev === 'pxe' ? pxeUefi(cred.options, node.bootPlatform) : undefined;
        if (body.bootdev) await bmc.setBootDevice(body.bootdev, uefi === undefined ? {} : { uefi });
        // "on" for a machine that is already on would do nothing: cycle it so the new boot device takes effect
        const before = body.action === 'on' ? await bmc.powerStatus() : undefined;
        const action = body.action === 'on' && before === 'on' && body.bootdev ? 'cycle' : body.action;
        await bmc.power(action as PowerAction);
        // the server started a boot: the node's next /ipxe may open a stage-1 attempt even if it is active
        // (after the BMC call: a failed power action leaves nothing expected). docs/security-model.md
        if (action === 'cycle' || action === 'reset' || (action === 'on' && before !== 'on')) await nodes.expectBoot(uuid, `power ${action} by ${actor}`);
        // the power action happened at the BMC; its audit row commits with the node's event of it
        if (audit) audit.action = `node.power.${action}`;
        await nodes.addEvent(uuid, { kind: 'bmc', reason: `power ${action}${body.bootdev ? ` (next boot ${body.bootdev})` : ''} via ${bmc.target}`, actor, data: { action, bootdev: body.bootdev ?? null, uefi: uefi ?? null, before: before ?? null } }, { audit, auditChange: { before: { power: before ?? null }, after: { action, bootdev: body.bootdev ?? null } } });
        return { action, bootdev: body.bootdev ?? null, power: await bmc.powerStatus() };
      } catch (e) {
        if (isBmcError(e)) await nodes.addEvent(uuid, { kind: 'bmc', reason: e.message, actor, data: { kind: e.kind, operation: e.operation } });
        throw e;
      }
    },
  };
}

export function powerMount(deps: PowerDeps) {
  const control = createPowerControl(deps);
  return (requireRole: RequireRole): Mount => {
    const app = new Hono();
    const uuidOf = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));

    app.get('/api/v1/nodes/:uuid/power', requireRole('viewer'), async (c) => {
      const { bmc } = await bmcOf(deps, uuidOf(c));
      return c.json({ power: await bmc.powerStatus(), bmc: bmc.target });
    });

    app.post('/api/v1/nodes/:uuid/power', requireRole('operator'), async (c) => {
      const body = await jsonBody(c, PowerRequest);
      const uuid = uuidOf(c);
      return c.json(await audited(c, `node.power.${body.action}`, { kind: 'node', id: uuid }, (audit) => control.act(uuid, body, `api:${principalOf(c).name}`, audit)));
    });
    return { at: '/', app, docs: POWER_ROUTES };
  };
}
