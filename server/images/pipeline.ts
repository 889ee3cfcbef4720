// The image pipeline: push (blobs to the store, manifest to the store and the database), channels per image
// name (dev → canary → prod by default), gated promotion, manual and automatic rollback, channel history.
// Also the ImageCatalog the boot and agent routes use: a profile names an image and a channel, never a digest.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Db } from '../db/index.ts';
import { AppError } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import type { ImageCatalog, ResolvedImage } from '../domain/images.ts';
import {
  checkGates,
  decideRollback,
  DEFAULT_GATES,
  DEFAULT_ROLLBACK,
  rollbackTarget,
  validatePromotion,
  windowOutcomes,
  PromotionError,
  type BreakerSpan,
  type DigestHealth,
  type GateResult,
  type PromotionGates,
  type RollbackDecision,
  type RollbackPolicy,
} from '../domain/promotion.ts';
import { createImageDbStore, type HistoryRow, type ImageRow } from '../store/images.ts';
import type { AuditIntent } from '../store/audit.ts';
import type { CacheLogger } from './cache.ts';
import type { ImageManifest, ImageStore, PutProgress } from './store.ts';
import { ByteReader, checkCmdline, checkInitrd, checkKernel, ImagePartError, type InitrdInfo, type KernelInfo } from './parts.ts';

export const IMAGE_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const IMAGE_VERSION_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export async function sha256File(path: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: hash.digest('hex'), size };
}

export function manifestDigest(m: Pick<ImageManifest, 'name' | 'version' | 'arch' | 'kernel' | 'initrd' | 'cmdline'>): string {
  // Fixed key order: the same image always hashes the same.
  const canonical = JSON.stringify({ schema: 1, name: m.name, version: m.version, arch: m.arch, kernel: { digest: m.kernel.digest, size: m.kernel.size }, initrd: { digest: m.initrd.digest, size: m.initrd.size }, cmdline: m.cmdline });
  return createHash('sha256').update(canonical).digest('hex');
}

export interface PipelineOptions {
  db: Db;
  store: ImageStore;
  /** ordered least to most trusted */
  channels?: string[];
  gates?: PromotionGates;
  rollback?: RollbackPolicy;
  clock?: Clock;
  log?: CacheLogger;
  /** the fleet's circuit breaker, as the rollback gate needs it; default: never open */
  breaker?: FleetBreaker;
}

/**
 * What the image gates need of the fleet-wide circuit breaker (issue 12 item 3), injected so the image area does
 * not depend on the fleet controller. While it is open nothing is rolled back automatically; failures inside its
 * episodes never count against an image.
 */
export interface FleetBreaker {
  /** true while the breaker is open (the fleet is degraded, automatic repair stopped) */
  breakerOpen(): Promise<boolean>;
  /** episodes overlapping [since, now], each from the start of the window whose failures tripped it to the resume */
  spans?(since: Date): Promise<BreakerSpan[]>;
}

export const BREAKER_NEVER_OPEN: FleetBreaker = { breakerOpen: async () => false, spans: async () => [] };

export interface PushInput {
  name: string;
  version: string;
  arch?: string;
  kernelPath: string;
  initrdPath: string;
  cmdline?: string;
  notes?: string;
  actor: string;
  /** channel to publish the new version on; default: the first channel; null: none */
  channel?: string | null;
  /** publish straight onto a gated channel (any but the first), skipping promotion; the caller checks the role */
  force?: boolean;
  onProgress?: (part: 'kernel' | 'initrd', p: PutProgress) => void;
}

export interface RegisterInput {
  name: string;
  version: string;
  arch?: string;
  kernel: { digest: string; size?: number };
  initrd: { digest: string; size?: number };
  cmdline?: string;
  notes?: string;
  actor: string;
  channel?: string | null;
  force?: boolean;
  audit?: AuditIntent;
}

/** A part of an image that is not what it claims to be: 422 naming the part (kernel, initrd or cmdline). */
const partError = (e: ImagePartError) => new AppError(422, 'invalid_image', e.message, { part: e.part });

/** What the push checks found, for the log and the response. */
export interface PartsReport {
  kernel: KernelInfo;
  initrd: InitrdInfo;
}

async function checkParts(open: (part: 'kernel' | 'initrd') => Promise<AsyncIterable<Buffer>>, arch: string | undefined, cmdline: string): Promise<PartsReport> {
  try {
    checkCmdline(cmdline);
    const kernel = await checkKernel(ByteReader.of(await open('kernel')), arch);
    const initrd = await checkInitrd(ByteReader.of(await open('initrd')));
    return { kernel, initrd };
  } catch (e) {
    throw e instanceof ImagePartError ? partError(e) : e;
  }
}

const toApp = (e: PromotionError): AppError => {
  const status = e.code === 'unknown-channel' || e.code === 'same-channel' || e.code === 'wrong-direction' ? 400 : 409;
  return new AppError(status, e.code.replaceAll('-', '_'), e.message, e.details);
};

export function imageView(r: ImageRow) {
  return {
    name: r.name,
    version: r.version,
    arch: r.arch,
    kernel: { digest: r.kernelDigest, size: r.kernelSize },
    initrd: { digest: r.initrdDigest, size: r.initrdSize },
    cmdline: r.cmdline,
    size: r.size,
    manifestDigest: r.manifestDigest,
    notes: r.notes,
    createdBy: r.createdBy,
    createdAt: r.createdAt.toISOString(),
  };
}

export function historyView(h: HistoryRow) {
  return {
    id: h.id,
    name: h.name,
    channel: h.channel,
    action: h.action,
    from: h.fromImageId === null ? null : { version: h.fromVersion, digest: h.fromDigest },
    to: { version: h.toVersion, digest: h.toDigest },
    actor: h.actor,
    reason: h.reason,
    at: h.at.toISOString(),
    data: h.data,
  };
}

export function createImagePipeline({ db, store, channels = ['dev', 'canary', 'prod'], gates = DEFAULT_GATES, rollback: rollbackPolicy = DEFAULT_ROLLBACK, clock = systemClock, log, breaker = BREAKER_NEVER_OPEN }: PipelineOptions) {
  if (channels.length === 0 || new Set(channels).size !== channels.length) throw new RangeError('image channels must be a non-empty list of distinct names');
  const dbs = createImageDbStore(db);

  const checkName = (name: string) => {
    if (!IMAGE_NAME_RE.test(name)) throw new AppError(400, 'bad_request', `image names are 1-63 lower-case letters, digits, ".", "_", "-": got ${JSON.stringify(name).slice(0, 80)}`);
  };
  const checkChannel = (channel: string) => {
    if (!channels.includes(channel)) throw new AppError(400, 'unknown_channel', `unknown channel ${JSON.stringify(channel).slice(0, 80)}; channels are ${channels.join(', ')}`, { channels });
  };
  /** Gate figures of an image: nodes on it now, and its boots inside the window judged by judgeFailure. */
  const health = async (img: ImageRow, windowMs: number): Promise<DigestHealth> => {
    const since = new Date(clock.now().getTime() - windowMs);
    const [now, outcomes, spans] = await Promise.all([dbs.nodesOnImage(img.kernelDigest, img.initrdDigest), dbs.bootOutcomes(img.kernelDigest, img.initrdDigest, since), breaker.spans?.(since) ?? []]);
    return { ...now, ...windowOutcomes(outcomes, spans) };
  };

  const resolved = (i: ImageRow, channel: string): ResolvedImage => ({ name: i.name, version: i.version, channel, manifestDigest: i.manifestDigest, kernel: { digest: i.kernelDigest, size: i.kernelSize }, initrd: { digest: i.initrdDigest, size: i.initrdSize }, cmdline: i.cmdline });
  const catalog: ImageCatalog = {
    async resolve(name, channel): Promise<ResolvedImage | null> {
      const c = await dbs.channel(name, channel);
      return c ? resolved(c.image, channel) : null;
    },
    /** the channel's earlier images from its history, newest first (at most 10): the boot route's fallback */
    async previous(name, channel): Promise<ResolvedImage[]> {
      const cur = await dbs.channel(name, channel);
      const ids: number[] = [];
      for (const h of await dbs.history(name, channel, 200))
        for (const id of [h.toImageId, h.fromImageId]) if (id !== null && id !== cur?.image.id && !ids.includes(id)) ids.push(id);
      const out: ResolvedImage[] = [];
      for (const id of ids.slice(0, 10)) {
        const row = await dbs.getImageById(id);
        if (row) out.push(resolved(row, channel));
      }
      return out;
    },
  };

  const pipeline = {
    channels,
    catalog,

    /** Register a manifest whose blobs are already in the store (the API's upload path; push uses it too). */
    async register(input: RegisterInput) {
      checkName(input.name);
      if (!IMAGE_VERSION_RE.test(input.version)) throw new AppError(400, 'bad_request', `image versions are 1-64 letters, digits, ".", "_", "+", "-": got ${JSON.stringify(input.version).slice(0, 80)}`);
      const publish = input.channel === undefined ? channels[0]! : input.channel;
      if (publish !== null) checkChannel(publish);
      // Every channel after the first is reached through promotion gates; pushing straight onto one skips them.
      const gated = publish !== null && publish !== channels[0];
      if (gated && !input.force)
        throw new AppError(409, 'gated_channel', `${publish} is reached by promotion (${channels.join(' → ')}), which checks the image on real nodes first; push to ${channels[0]} and promote, or push with force (admin only) to skip the gates`, {
          channel: publish,
          channels,
        });
      const sizes: number[] = [];
      for (const [part, blob] of [['kernel', input.kernel], ['initrd', input.initrd]] as const) {
        const s = await store.stat(blob.digest);
        if (!s) throw new AppError(409, 'blob_missing', `the ${part} blob ${blob.digest} is not in the image store; upload it first`, { part, digest: blob.digest });
        if (blob.size !== undefined && blob.size !== s.size) throw new AppError(409, 'conflict', `the ${part} blob is ${s.size} bytes in the store, the manifest says ${blob.size}`, { part, digest: blob.digest });
        sizes.push(s.size);
      }
      const parts = await checkParts(async (part) => (await store.get(input[part].digest)).body, input.arch, input.cmdline ?? '');
      const manifest: ImageManifest = {
        schema: 1,
        name: input.name,
        version: input.version,
        arch: input.arch ?? 'x86_64',
        kernel: { digest: input.kernel.digest, size: sizes[0]! },
        initrd: { digest: input.initrd.digest, size: sizes[1]! },
        cmdline: input.cmdline ?? '',
        size: sizes[0]! + sizes[1]!,
        created: clock.now().toISOString(),
        ...(input.notes ? { notes: input.notes } : {}),
      };
      const md = manifestDigest(manifest);
      const { image, created } = await dbs.insertImage({
        name: manifest.name,
        version: manifest.version,
        arch: manifest.arch,
        kernelDigest: manifest.kernel.digest,
        kernelSize: manifest.kernel.size,
        initrdDigest: manifest.initrd.digest,
        initrdSize: manifest.initrd.size,
        cmdline: manifest.cmdline,
        size: manifest.size,
        manifestDigest: md,
        notes: input.notes ?? null,
        createdBy: input.actor,
        createdAt: clock.now(),
        // the audit row goes with the channel move when there is one, else with the new version
      }, publish === null ? input.audit : undefined);
      // The manifest is also written beside the blobs, so the store alone can rebuild the catalog.
      if (created) await store.putManifest({ ...manifest, created: image.createdAt.toISOString() });
      let moved: HistoryRow | undefined;
      if (publish !== null) {
        const cur = await dbs.channel(image.name, publish);
        if (cur?.image.id !== image.id)
          moved = await dbs.moveChannel({
            name: image.name,
            channel: publish,
            toImageId: image.id,
            action: 'push',
            actor: input.actor,
            // the history row is the audit record of a forced push: who, when, onto which channel, what it skipped
            reason: gated ? `pushed ${image.version} straight onto ${publish} with force: promotion gates skipped` : `pushed ${image.version}`,
            ...(gated ? { data: { forced: true, gatesSkipped: true } } : {}),
            at: clock.now(),
            audit: input.audit,
          });
      }
      if (gated && moved) log?.warn({ name: image.name, version: image.version, channel: publish, actor: input.actor }, 'image pushed straight onto a gated channel (forced)');
      log?.info({ name: image.name, version: image.version, manifest: md, created, channel: publish, kernel: parts.kernel, initrd: parts.initrd.segments.map((x) => x.kind) }, 'image registered');
      return { image: imageView(image), created, published: moved ? historyView(moved) : null };
    },

    /** Hash the files, upload them (resumable multipart on S3), then register. */
    async push(input: PushInput) {
      checkName(input.name);
      const paths = { kernel: input.kernelPath, initrd: input.initrdPath };
      for (const part of ['kernel', 'initrd'] as const) if ((await stat(paths[part])).size === 0) throw new AppError(400, 'bad_request', `the ${part} file ${paths[part]} is empty`);
      // checked before anything is uploaded, so a refused image leaves nothing in the store (register checks again)
      await checkParts(async (part) => createReadStream(paths[part], { highWaterMark: 1 << 16 }), input.arch, input.cmdline ?? '');
      const parts = { kernel: await sha256File(input.kernelPath), initrd: await sha256File(input.initrdPath) };
      for (const part of ['kernel', 'initrd'] as const) {
        const path = paths[part];
        await store.putFile(parts[part].digest, path, { onProgress: (p) => input.onProgress?.(part, p) });
      }
      return pipeline.register({ ...input, kernel: parts.kernel, initrd: parts.initrd });
    },

    async list() {
      const names = await dbs.listNames();
      const chans = await dbs.channels();
      return names.map((n) => ({
        ...n,
        latestAt: n.latestAt?.toISOString() ?? null,
        channels: Object.fromEntries(chans.filter((c) => c.name === n.name).map((c) => [c.channel, c.image.version])),
      }));
    },

    async show(name: string) {
      checkName(name);
      const versions = await dbs.listVersions(name);
      if (!versions.length) throw new AppError(404, 'not_found', `image ${name} not found`, { name });
      const chans = await dbs.channels(name);
      return {
        name,
        channels: Object.fromEntries(chans.map((c) => [c.channel, { version: c.image.version, manifestDigest: c.image.manifestDigest, updatedBy: c.updatedBy, updatedAt: c.updatedAt.toISOString() }])),
        versions: versions.map(imageView),
      };
    },

    async history(name: string, channel?: string, limit = 100) {
      checkName(name);
      if (channel !== undefined) checkChannel(channel);
      return (await dbs.history(name, channel, limit)).map(historyView);
    },

    /** Gate figures for the image now on a channel. */
    async gateReport(name: string, channel: string): Promise<{ version: string; health: DigestHealth; gates: GateResult }> {
      const cur = await dbs.channel(name, channel);
      if (!cur) throw toApp(new PromotionError('empty-channel', `channel ${name}:${channel} has nothing published`));
      const h = await health(cur.image, gates.windowMs);
      return { version: cur.image.version, health: h, gates: checkGates(h, gates) };
    },

    /** Move the image on `from` to `to` if the gates pass (force skips them and says so in history). */
    async promote({ name, from, to, actor, reason, force = false, audit }: { name: string; from: string; to: string; actor: string; reason?: string; force?: boolean; audit?: AuditIntent }) {
      checkName(name);
      try {
        validatePromotion(channels, from, to);
      } catch (e) {
        throw e instanceof PromotionError ? toApp(e) : e;
      }
      const src = await dbs.channel(name, from);
      if (!src) throw toApp(new PromotionError('empty-channel', `channel ${name}:${from} has nothing published to promote`));
      const dst = await dbs.channel(name, to);
      if (dst?.image.id === src.image.id) throw toApp(new PromotionError('already-there', `${name}:${to} is already on ${src.image.version}`, { version: src.image.version }));
      const h = await health(src.image, gates.windowMs);
      const result = checkGates(h, gates);
      if (!result.ok && !force) {
        throw new AppError(409, 'gate_failed', `promotion of ${name} ${src.image.version} from ${from} to ${to} refused: ${result.failures.map((f) => f.message).join('; ')}`, {
          failed: result.failures.map((f) => f.condition),
          checks: result.checks,
          health: h,
        });
      }
      const row = await dbs.moveChannel({
        name,
        channel: to,
        toImageId: src.image.id,
        action: 'promote',
        actor,
        reason: reason ?? `promoted from ${from}${force && !result.ok ? ' (gates overridden)' : ''}`,
        data: { from, gates: result.checks, health: h, forced: force && !result.ok },
        at: clock.now(),
        expectFromImageId: dst?.image.id ?? null,
        audit,
      });
      log?.info({ name, from, to, version: src.image.version, actor, forced: force && !result.ok }, 'image promoted');
      return historyView(row);
    },

    /** Put a channel back on the image it had before its current one came in. */
    async rollback({ name, channel, actor, reason, action = 'rollback', data, audit }: { name: string; channel: string; actor: string; reason?: string; action?: 'rollback' | 'auto-rollback'; data?: Record<string, unknown>; audit?: AuditIntent }) {
      checkName(name);
      checkChannel(channel);
      const cur = await dbs.channel(name, channel);
      if (!cur) throw toApp(new PromotionError('empty-channel', `channel ${name}:${channel} has nothing published`));
      const target = rollbackTarget(cur.image.id, await dbs.history(name, channel, 1000));
      if (target === null) throw toApp(new PromotionError('nothing-to-roll-back', `channel ${name}:${channel} has no earlier image to roll back to`));
      const row = await dbs.moveChannel({ name, channel, toImageId: target, action, actor, reason: reason ?? `rolled back from ${cur.image.version}`, data, at: clock.now(), expectFromImageId: cur.image.id, audit });
      log?.warn({ name, channel, from: cur.image.version, to: row.toVersion, actor, action }, 'image channel rolled back');
      return historyView(row);
    },

    /**
     * For the fleet controller: judge the image now on a channel from its nodes' recent outcomes and roll the
     * channel back when the failure ratio crosses the policy's threshold. Returns the decision either way.
     */
    async evaluateRollback({ name, channel, actor = 'rollback-controller' }: { name: string; channel: string; actor?: string }): Promise<RollbackDecision & { version?: string; rolledBackTo?: string }> {
      const cur = await dbs.channel(name, channel);
      if (!cur) return { rollback: false, reason: 'channel is empty', failureRatio: null, samples: 0 };
      // many nodes failing together is the fleet's problem (network, power, control plane), never an image's
      if (await breaker.breakerOpen()) return { rollback: false, reason: 'the fleet circuit breaker is open: no automatic rollback until an operator resumes', failureRatio: null, samples: 0, version: cur.image.version };
      const h = await health(cur.image, rollbackPolicy.windowMs);
      const hasPrevious = rollbackTarget(cur.image.id, await dbs.history(name, channel, 1000)) !== null;
      const d = decideRollback(h, rollbackPolicy, hasPrevious);
      if (!d.rollback) return { ...d, version: cur.image.version };
      const row = await pipeline.rollback({ name, channel, actor, reason: `automatic: ${d.reason}`, action: 'auto-rollback', data: { health: h, policy: rollbackPolicy } });
      return { ...d, version: cur.image.version, rolledBackTo: row.to.version ?? undefined };
    },

    /** evaluateRollback over every channel of every image (one controller tick). */
    async evaluateAllRollbacks(actor?: string) {
      const out = [];
      for (const c of await dbs.channels()) out.push({ name: c.name, channel: c.channel, ...(await pipeline.evaluateRollback({ name: c.name, channel: c.channel, actor })) });
      return out;
    },
  };
  return pipeline;
}

export type ImagePipeline = ReturnType<typeof createImagePipeline>;
