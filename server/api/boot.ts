// Boot routes: GET /boot.ipxe and GET /ipxe/:uuid. The script is chosen from the node's state:
// stage-1 for every running state (a diskless node passes through stage-1 on each boot), a hold script that
// says why for quarantined / maintenance / retired nodes, a retry script when nothing is published to boot.
// The request is unauthenticated, so it opens a stage-1 boot attempt (and hands out its token) only when a boot is
// expected (server/domain/boot-trust.ts); a running node's credential is never touched here. Repeated identical
// requests add no event rows (a counter), and new UUIDs are enrolled at most boot.discoveredPerMinute a minute.
// docs/security-model.md
import { Hono } from 'hono';
import { z } from 'zod';
import { renderBootScript, renderHoldScript, renderKernelScript, renderRetryScript, safeCmdline, safeArg } from '../../boot/ipxe/script.ts';
import { SmbiosUuid, Mac } from '../contract/common.ts';
import { decideBootAttempt } from '../domain/boot-trust.ts';
import { selectProfile } from '../domain/profiles.ts';
import { DiscoveryCapError, type NewEvent } from '../store/nodes.ts';
import { renderableImage, type ResolvedImage } from '../domain/images.ts';
import type { Deps } from './deps.ts';
import { parseWith } from './validate.ts';
import { clientAddressOf } from './trusted.ts';
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
/** stands in for the stage-1 token while checking that an image renders (tokens are URL-safe, always renderable) */
/** The fleet's watched-since time; an unreadable one counts as "just started watching" (refuse, never open). */
async function watchedSinceOf(deps: Deps): Promise<Date | null> {
  if (!deps.fleetWatchedSince) return null;
  try {
    return await deps.fleetWatchedSince();
  } catch (e) {
    deps.log.warn({ err: (e as Error).message }, 'fleet liveness unreadable; running nodes are not counted as gone');
    return deps.clock.now();
  }
}

const PROBE_TOKEN = '0'.repeat(43);

export function bootRoutes(deps: Deps) {
  const app = new Hono();
  const ipxe = (body: string, extra: Record<string, string> = {}) => new Response(body, { headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...extra } });

  app.get('/boot.ipxe', (c) => ipxe(renderBootScript({ baseUrl: baseUrlOf(c, deps.config) })));

  /** iPXE polls: identical consecutive events of a node become one row with a count */
  const bootEvent = (uuid: string, phase: string, data: Record<string, unknown>) => deps.nodes.addEvent(uuid, { kind: 'phase', reason: phase, actor: 'ipxe', data: { phase, ...data } } satisfies NewEvent, { coalesce: true });
  let capWarnedAt = 0;

  app.get('/ipxe/:uuid', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const q = parseWith(BootQuery, c.req.query());
    const base = baseUrlOf(c, deps.config);
    const retryUrl = `${base}/ipxe/${uuid}`;
    const { boot } = deps.config;
    let enrolled;
    try {
      enrolled = await deps.nodes.enroll(uuid, { serial: q.serial, manufacturer: q.manufacturer, product: q.product, mac: q.mac }, 'ipxe', undefined, { newPerMinute: boot.discoveredPerMinute });
    } catch (e) {
      if (!(e instanceof DiscoveryCapError)) throw e;
      // a flood of made-up UUIDs must not flood the log either: one line a minute
      const now = deps.clock.now().getTime();
      if (now - capWarnedAt > 60_000) {
        capWarnedAt = now;
        deps.log.warn({ uuid, perMinute: boot.discoveredPerMinute }, 'discovered-node cap reached; new nodes are told to retry');
      }
      return ipxe(renderRetryScript({ message: 'too many new machines at once; this one is not enrolled yet', seconds: boot.retrySeconds, retryUrl }));
    }
    const { node, created } = enrolled;
    if (HELD.has(node.state)) {
      await bootEvent(uuid, 'ipxe-held', { state: node.state });
      return ipxe(renderHoldScript({ uuid, state: node.state, reason: node.stateReason ?? 'held by an operator' }));
    }
    const { stage1 } = boot;
    // the key that verifies firmware plans comes with the boot, not over the plan's own HTTP channel (issue 16 item 7)
    const planKeyArg = deps.planSigner ? [`bootfarm.planKey=${deps.planSigner.publicKey}`] : [];
    const stage1Script = (image: ResolvedImage, token: string) =>
      renderKernelScript({
        comment: `stage-1 for ${uuid} (${node.state})`,
        kernelUrl: `${base}/images/${image.kernel.digest}`,
        initrdUrl: `${base}/images/${image.initrd.digest}`,
        args: [...safeCmdline(image.cmdline), ...safeCmdline(stage1.cmdline), safeArg(`bootfarm.server=${base}`), `bootfarm.uuid=${uuid}`, `bootfarm.token=${token}`, 'bootfarm.mode=stage1', ...planKeyArg],
        retryUrl,
      });
    // an image that cannot be rendered gives the node the channel's last good one, never a 500 (issue 12 item 7)
    const pick = await renderableImage(deps.images, stage1.image, stage1.channel, (img) => stage1Script(img, PROBE_TOKEN));
    if (pick.kind === 'none') {
      deps.log.warn({ uuid, image: stage1.image, channel: stage1.channel }, 'no stage-1 image published; node told to retry');
      return ipxe(renderRetryScript({ message: `no stage-1 image is published in ${stage1.image}:${stage1.channel}`, seconds: boot.retrySeconds, retryUrl }));
    }
    if (pick.kind !== 'current') {
      const data = { channel: stage1.channel, broken: `${pick.broken.name}@${pick.broken.version}`, error: pick.error, used: pick.kind === 'fallback' ? `${pick.image.name}@${pick.image.version}` : null };
      deps.log.error({ uuid, ...data }, pick.kind === 'fallback' ? 'stage-1 image does not render; node gets the last good image of its channel' : 'no stage-1 image of the channel renders; node told to retry');
      await deps.nodes.addEvent(uuid, { kind: 'image', reason: 'image-fallback', actor: 'ipxe', data }, { coalesce: true });
      if (pick.kind === 'broken') return ipxe(renderRetryScript({ message: `stage-1 image ${data.broken} cannot be booted and no earlier image of ${stage1.image}:${stage1.channel} can`, seconds: boot.retrySeconds, retryUrl }));
    }
    const image = pick.image;
    const profileName = selectProfile(deps.config.profiles, node);
    const interval = (profileName ? deps.config.profiles[profileName]?.heartbeatIntervalSeconds : undefined) ?? 30;
    const watched = node.state === 'active' && node.credentialHash ? await watchedSinceOf(deps) : null;
    const decision = decideBootAttempt(node, deps.clock.now(), interval, boot.attempts, boot.retrySeconds, watched);
    if (!decision.open) {
      await bootEvent(uuid, 'ipxe-refused', { state: node.state, why: 'running' });
      return ipxe(renderRetryScript({ message: decision.why, seconds: decision.retryAfterSeconds, retryUrl }));
    }
    // the boot budget (server/images/budget.ts): one more kernel download would exceed this replica's, so the node
    // sleeps a jittered while and asks again — no attempt opened, nothing written
    if (deps.budget && !deps.budget.admitBoot()) {
      const seconds = deps.budget.retrySeconds();
      return ipxe(renderRetryScript({ message: 'busy: many machines are booting; waiting for a turn', seconds, retryUrl }), { 'retry-after': String(seconds) });
    }
    const platform = q.platform === 'efi' || q.platform === 'pcbios' ? q.platform : undefined;
    const opened = await deps.nodes.openAttempt(uuid, { address: clientAddressOf(c), reason: decision.reason, serverStarted: decision.serverStarted, ttlSeconds: boot.attempts.tokenTtlSeconds, maxOpen: boot.attempts.maxOpen, platform });
    if ('refused' in opened) {
      await bootEvent(uuid, 'ipxe-refused', { state: node.state, why: 'max-open' });
      return ipxe(renderRetryScript({ message: opened.refused, seconds: boot.retrySeconds, retryUrl }));
    }
    await bootEvent(uuid, 'ipxe-script', { state: node.state, created, mac: q.mac ?? null, platform: q.platform ?? null, image: `${image.name}@${image.version}`, attempt: decision.reason, serverStarted: decision.serverStarted });
    return ipxe(stage1Script(image, opened.token));
  });
  return app;
}
