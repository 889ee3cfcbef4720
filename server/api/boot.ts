// Boot routes: GET /boot.ipxe and GET /ipxe/:uuid, and their Secure Boot twins GET /grub/grub.cfg and /grub/<uuid>.cfg. The script is chosen from the node's state:
// stage-1 for every running state (a diskless node passes through stage-1 on each boot), a hold script that
// says why for quarantined / maintenance / retired nodes, a retry script when nothing is published to boot.
// The request is unauthenticated, so it opens a stage-1 boot attempt (and hands out its token) only when a boot is
// expected (server/domain/boot-trust.ts); a running node's credential is never touched here. Repeated identical
// requests add no event rows (a counter), and new UUIDs are enrolled at most boot.discoveredPerMinute a minute.
// docs/security-model.md
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { renderBootScript, renderHoldScript, renderKernelScript, renderRetryScript, safeCmdline, safeArg } from '../../boot/ipxe/script.ts';
import { SmbiosUuid, Mac } from '../contract/common.ts';
import { decideBootAttempt } from '../domain/boot-trust.ts';
import { selectProfile } from '../domain/profiles.ts';
import { DiscoveryCapError, type NewEvent } from '../store/nodes.ts';
import { renderGrubHoldConfig, renderGrubKernelConfig, renderGrubRetryConfig, renderGrubTopConfig } from '../../boot/grub/script.ts';
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

type NodeRow = Awaited<ReturnType<Deps['nodes']['enroll']>>['node'];
/** what a node asking for its boot script is told, before it is rendered in iPXE or GRUB */
type BootOutcome =
  | { kind: 'retry'; message: string; seconds: number; headers?: Record<string, string> }
  | { kind: 'hold'; state: string; reason: string }
  | { kind: 'stage1'; node: NodeRow; image: ResolvedImage; token: string };

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

  /** The per-node decision, shared by /ipxe/<uuid> and /grub/<uuid>.cfg so that both boot paths enroll, hold, retry
   * and open boot attempts by the same rules; only the script language differs. `renders` checks that an image can
   * be put into the caller's script (the channel's last good image otherwise), `retryUrl` is where the node asks again. */
  async function decideNodeBoot(c: Context, uuid: string, q: z.infer<typeof BootQuery>, retryUrl: string, renders: (image: ResolvedImage, node: NodeRow) => unknown): Promise<BootOutcome> {
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
      return { kind: 'retry', message: 'too many new machines at once; this one is not enrolled yet', seconds: boot.retrySeconds };
    }
    const { node, created } = enrolled;
    if (HELD.has(node.state)) {
      await bootEvent(uuid, 'ipxe-held', { state: node.state });
      return { kind: 'hold', state: node.state, reason: node.stateReason ?? 'held by an operator' };
    }
    const { stage1 } = boot;
    // an image that cannot be rendered gives the node the channel's last good one, never a 500 (issue 12 item 7)
    const pick = await renderableImage(deps.images, stage1.image, stage1.channel, (img) => renders(img, node));
    if (pick.kind === 'none') {
      deps.log.warn({ uuid, image: stage1.image, channel: stage1.channel }, 'no stage-1 image published; node told to retry');
      return { kind: 'retry', message: `no stage-1 image is published in ${stage1.image}:${stage1.channel}`, seconds: boot.retrySeconds };
    }
    if (pick.kind !== 'current') {
      const data = { channel: stage1.channel, broken: `${pick.broken.name}@${pick.broken.version}`, error: pick.error, used: pick.kind === 'fallback' ? `${pick.image.name}@${pick.image.version}` : null };
      deps.log.error({ uuid, ...data }, pick.kind === 'fallback' ? 'stage-1 image does not render; node gets the last good image of its channel' : 'no stage-1 image of the channel renders; node told to retry');
      await deps.nodes.addEvent(uuid, { kind: 'image', reason: 'image-fallback', actor: 'ipxe', data }, { coalesce: true });
      if (pick.kind === 'broken') return { kind: 'retry', message: `stage-1 image ${data.broken} cannot be booted and no earlier image of ${stage1.image}:${stage1.channel} can`, seconds: boot.retrySeconds };
    }
    const image = pick.image;
    const profileName = selectProfile(deps.config.profiles, node);
    const interval = (profileName ? deps.config.profiles[profileName]?.heartbeatIntervalSeconds : undefined) ?? 30;
    const watched = node.state === 'active' && node.credentialHash ? await watchedSinceOf(deps) : null;
    const decision = decideBootAttempt(node, deps.clock.now(), interval, boot.attempts, boot.retrySeconds, watched);
    if (!decision.open) {
      await bootEvent(uuid, 'ipxe-refused', { state: node.state, why: 'running' });
      return { kind: 'retry', message: decision.why, seconds: decision.retryAfterSeconds };
    }
    // the boot budget (server/images/budget.ts): one more kernel download would exceed this replica's, so the node
    // sleeps a jittered while and asks again — no attempt opened, nothing written
    if (deps.budget && !deps.budget.admitBoot()) {
      const seconds = deps.budget.retrySeconds();
      return { kind: 'retry', message: 'busy: many machines are booting; waiting for a turn', seconds, headers: { 'retry-after': String(seconds) } };
    }
    const platform = q.platform === 'efi' || q.platform === 'pcbios' ? q.platform : undefined;
    const opened = await deps.nodes.openAttempt(uuid, { address: clientAddressOf(c), reason: decision.reason, serverStarted: decision.serverStarted, ttlSeconds: boot.attempts.tokenTtlSeconds, maxOpen: boot.attempts.maxOpen, platform });
    if ('refused' in opened) {
      await bootEvent(uuid, 'ipxe-refused', { state: node.state, why: 'max-open' });
      return { kind: 'retry', message: opened.refused, seconds: boot.retrySeconds };
    }
    await bootEvent(uuid, 'ipxe-script', { state: node.state, created, mac: q.mac ?? null, platform: q.platform ?? null, image: `${image.name}@${image.version}`, attempt: decision.reason, serverStarted: decision.serverStarted, ...(retryUrl.includes('/grub/') ? { loader: 'shim-grub' } : {}) });
    return { kind: 'stage1', node, image, token: opened.token };
  }

  /** kernel arguments of stage-1, the same for both loaders (each renderer checks them for its own language) */
  const stage1Args = (base: string, uuid: string, image: ResolvedImage, token: string) => [
    ...safeCmdline(image.cmdline),
    ...safeCmdline(deps.config.boot.stage1.cmdline),
    safeArg(`bootfarm.server=${base}`),
    `bootfarm.uuid=${uuid}`,
    `bootfarm.token=${token}`,
    'bootfarm.mode=stage1',
    // the key that verifies firmware plans comes with the boot, not over the plan's own HTTP channel (issue 16 item 7)
    ...(deps.planSigner ? [`bootfarm.planKey=${deps.planSigner.publicKey}`] : []),
  ];

  app.get('/ipxe/:uuid', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('uuid'));
    const q = parseWith(BootQuery, c.req.query());
    const base = baseUrlOf(c, deps.config);
    const retryUrl = `${base}/ipxe/${uuid}`;
    const stage1Script = (image: ResolvedImage, node: NodeRow, token: string) =>
      renderKernelScript({ comment: `stage-1 for ${uuid} (${node.state})`, kernelUrl: `${base}/images/${image.kernel.digest}`, initrdUrl: `${base}/images/${image.initrd.digest}`, args: stage1Args(base, uuid, image, token), retryUrl });
    const out = await decideNodeBoot(c, uuid, q, retryUrl, (img, node) => stage1Script(img, node, PROBE_TOKEN));
    if (out.kind === 'retry') return ipxe(renderRetryScript({ message: out.message, seconds: out.seconds, retryUrl }), out.headers);
    if (out.kind === 'hold') return ipxe(renderHoldScript({ uuid, state: out.state, reason: out.reason }));
    return ipxe(stage1Script(out.image, out.node, out.token));
  });

  // The Secure Boot path (issue 19 item 1; docs/secure-boot.md): shim → grubnetx64 loads /grub/grub.cfg, which reads
  // the SMBIOS UUID and chains here. Same decision as /ipxe/<uuid>, rendered as a GRUB script.
  app.get('/grub/grub.cfg', (c) => ipxe(renderGrubTopConfig({ baseUrl: baseUrlOf(c, deps.config) })));
  app.get('/grub/:file{[^/]+\\.cfg}', async (c) => {
    const uuid = parseWith(SmbiosUuid, c.req.param('file').slice(0, -'.cfg'.length));
    const base = baseUrlOf(c, deps.config);
    const retryUrl = `${base}/grub/${uuid}.cfg`;
    const stage1Config = (image: ResolvedImage, node: NodeRow, token: string) =>
      renderGrubKernelConfig({ comment: `stage-1 for ${uuid} (${node.state})`, kernelUrl: `${base}/images/${image.kernel.digest}`, initrdUrl: `${base}/images/${image.initrd.digest}`, args: stage1Args(base, uuid, image, token), retryUrl });
    // GRUB sends no query: what iPXE reports about the machine comes later, from stage-1's facts
    const out = await decideNodeBoot(c, uuid, { platform: 'efi' }, retryUrl, (img, node) => stage1Config(img, node, PROBE_TOKEN));
    if (out.kind === 'retry') return ipxe(renderGrubRetryConfig({ message: out.message, seconds: out.seconds, retryUrl }), out.headers);
    if (out.kind === 'hold') return ipxe(renderGrubHoldConfig({ uuid, state: out.state, reason: out.reason }));
    return ipxe(stage1Config(out.image, out.node, out.token));
  });
  return app;
}
