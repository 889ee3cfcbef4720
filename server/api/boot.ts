// Boot routes: GET /boot.ipxe and GET /ipxe/:uuid. The script is chosen from the node's state:
// stage-1 for every running state (a diskless node passes through stage-1 on each boot), a hold script that
// says why for quarantined / maintenance / retired nodes, a retry script when nothing is published to boot.
import { Hono } from 'hono';
import { z } from 'zod';
import { renderBootScript, renderHoldScript, renderKernelScript, renderRetryScript, safeCmdline, safeArg } from '../../boot/ipxe/script.ts';
import { SmbiosUuid, Mac } from '../contract/common.ts';
import type { Deps } from './deps.ts';
import { parseWith } from './validate.ts';
import { baseUrlOf } from './url.ts';

const BootQuery = z.object({
  mac: Mac.optional().catch(undefined),
  serial: z.string().max(128).optional(),
  manufacturer: z.string().max(128).optional(),
  product: z.string().max(128).optional(),
  platform: z.string().max(32).optional(),
  buildarch: z.string().max(32).optional(),
});

const HELD = new Set(['quarantined', 'maintenance', 'retired']);

export function bootRoutes(deps: Deps) {
  const app = new Hono();
  const ipxe = (body: string) => new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' } });

  app.get('/boot.ipxe', (c) => ipxe(renderBootScript({ baseUrl: baseUrlOf(c, deps.config) })));

  app.get('/ipxe/:uuid', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const q = parseWith(BootQuery, c.req.query());
    const base = baseUrlOf(c, deps.config);
    const { node, created } = await deps.nodes.enroll(uuid, { serial: q.serial, manufacturer: q.manufacturer, product: q.product, mac: q.mac }, 'ipxe');
    const retryUrl = `${base}/ipxe/${uuid}`;
    if (HELD.has(node.state)) {
      await deps.nodes.addEvent(uuid, { kind: 'phase', reason: 'ipxe-held', actor: 'ipxe', data: { phase: 'ipxe-held', state: node.state } });
      return ipxe(renderHoldScript({ uuid, state: node.state, reason: node.stateReason ?? 'held by an operator' }));
    }
    const { stage1 } = deps.config.boot;
    const image = await deps.images.resolve(stage1.image, stage1.channel);
    if (!image) {
      deps.log.warn({ uuid, image: stage1.image, channel: stage1.channel }, 'no stage-1 image published; node told to retry');
      return ipxe(renderRetryScript({ message: `no stage-1 image is published in ${stage1.image}:${stage1.channel}`, seconds: deps.config.boot.retrySeconds, retryUrl }));
    }
    const token = await deps.nodes.issueBootToken(uuid);
    await deps.nodes.addEvent(uuid, { kind: 'phase', reason: 'ipxe-script', actor: 'ipxe', data: { phase: 'ipxe-script', state: node.state, created, mac: q.mac ?? null, platform: q.platform ?? null, image: `${image.name}@${image.version}` } });
    const args = [
      ...safeCmdline(image.cmdline),
      ...safeCmdline(stage1.cmdline),
      safeArg(`bootfarm.server=${base}`),
      `bootfarm.uuid=${uuid}`,
      `bootfarm.token=${token}`,
      'bootfarm.mode=stage1',
    ];
    return ipxe(
      renderKernelScript({
        comment: `stage-1 for ${uuid} (${node.state})`,
        kernelUrl: `${base}/images/${image.kernel.digest}`,
        initrdUrl: `${base}/images/${image.initrd.digest}`,
        args,
        retryUrl,
      }),
    );
  });
  return app;
}
