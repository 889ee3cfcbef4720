// The node registry: the only code (with the other store/ files) that touches drizzle for nodes.
// Every state change goes through the pure lifecycle function and is written together with its event row
// in one transaction, with the node row locked (SELECT … FOR UPDATE), so two replicas cannot interleave.
import { and, desc, eq, gt, inArray, isNull, lt, lte, ne, or, sql, type SQL } from 'drizzle-orm';
import { createHash } from 'node:crypto';
import type { Db } from '../db/index.ts';
import { pageOf, type Cursor } from '../contract/cursor.ts';
import { bootAttempts, conflicts, events, facts, interfaces, nodes } from '../db/schema/index.ts';
import type { Facts, ProbeFailure } from '../contract/facts.ts';
import type { NodeState } from '../contract/lifecycle.ts';
import { transition, TransitionError, type LifecycleEvent } from '../domain/lifecycle.ts';
import { AppError, notFound } from '../errors.ts';
import { systemClock, type Clock } from '../clock.ts';
import { deriveNodeCredential, hashToken, newToken, tokenMatches } from '../secrets.ts';
import { writeAudit, type AuditIntent } from './audit.ts';
import { nodeWritten } from './node-writes.ts';

export type NodeRow = typeof nodes.$inferSelect;
export type BootAttemptRow = typeof bootAttempts.$inferSelect;

/** More new nodes in the last minute than boot.discoveredPerMinute allows: this one is not enrolled (yet). */
export class DiscoveryCapError extends AppError {
  constructor(readonly perMinute: number) {
    super(429, 'rate_limited', `more than ${perMinute} new nodes were discovered in the last minute (boot.discoveredPerMinute); try again shortly`, { perMinute }, { 'retry-after': '60' });
    this.name = 'DiscoveryCapError';
  }
}

/** What an agent's bearer token turned out to be for one node (server/api/auth.ts decides what each may call). */
export type AgentCredential =
  | { kind: 'stage1'; attempt: BootAttemptRow }
  | { kind: 'node' }
  | { kind: 'invalid'; why: string };

/** pg_advisory_xact_lock key that serialises the discovered-per-minute count with the insert ("boot" in ASCII) */
const DISCOVERY_LOCK = 0x626f6f74;
export type EventRow = typeof events.$inferSelect;
export type InterfaceRow = typeof interfaces.$inferSelect;
export type ConflictRow = typeof conflicts.$inferSelect;
export type FactsRow = typeof facts.$inferSelect;

export interface NodeFilter {
  state?: NodeState | NodeState[];
  /** every key=value must match */
  labels?: Record<string, string>;
  manufacturer?: string;
  product?: string;
  /** only nodes with (true) / without (false) an open identity conflict */
  conflict?: boolean;
  limit?: number;
  offset?: number;
}

export interface NewEvent {
  kind: string;
  reason?: string | null;
  actor: string;
  data?: Record<string, unknown> | null;
  fromState?: string | null;
  toState?: string | null;
}

/** Serial numbers vendors ship unset; two nodes sharing one of these is not a conflict. */
const PLACEHOLDER_SERIALS = new Set(['', '0', 'none', 'n/a', 'na', 'not specified', 'not available', 'default string', 'to be filled by o.e.m.', 'system serial number', '0123456789', '123456789']);
export const isRealSerial = (s: string | undefined | null): s is string => !!s && !PLACEHOLDER_SERIALS.has(s.trim().toLowerCase());

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** Runs first inside a write's transaction and throws to refuse it (the fleet controller's leader epoch). */
export type TxGuard = (tx: Db) => Promise<void>;

/** What a decision assumed about a node's row; every given field must still hold under the row lock. */
export interface NodeExpectation {
  state?: string;
  stateSince?: Date;
  rebuildAttempts?: number;
  lastHeartbeat?: Date | null;
}

/** The row changed since the decision was made (a heartbeat, an operator, another replica): the decision is dropped. */
export class StaleDecisionError extends Error {
  constructor(
    readonly uuid: string,
    readonly field: keyof NodeExpectation,
    readonly expected: unknown,
    readonly actual: unknown,
  ) {
    super(`node ${uuid} changed since the decision: ${field} is ${fmt(actual)}, expected ${fmt(expected)}`);
    this.name = 'StaleDecisionError';
  }
}
const fmt = (v: unknown) => (v instanceof Date ? v.toISOString() : JSON.stringify(v));
const sameTime = (a: Date | null | undefined, b: Date | null | undefined) => (a?.getTime() ?? null) === (b?.getTime() ?? null);

function checkExpectation(row: NodeRow, e: NodeExpectation): void {
  if (e.state !== undefined && row.state !== e.state) throw new StaleDecisionError(row.uuid, 'state', e.state, row.state);
  if (e.stateSince !== undefined && !sameTime(row.stateSince, e.stateSince)) throw new StaleDecisionError(row.uuid, 'stateSince', e.stateSince, row.stateSince);
  if (e.rebuildAttempts !== undefined && row.rebuildAttempts !== e.rebuildAttempts) throw new StaleDecisionError(row.uuid, 'rebuildAttempts', e.rebuildAttempts, row.rebuildAttempts);
  if (e.lastHeartbeat !== undefined && !sameTime(row.lastHeartbeat, e.lastHeartbeat)) throw new StaleDecisionError(row.uuid, 'lastHeartbeat', e.lastHeartbeat, row.lastHeartbeat);
}

/** The WHERE terms of a node filter (state, model, labels, open conflicts). */
function filterWhere(filter: NodeFilter): SQL[] {
  const where: SQL[] = [];
  if (filter.state) where.push(Array.isArray(filter.state) ? inArray(nodes.state, filter.state) : eq(nodes.state, filter.state));
  if (filter.manufacturer) where.push(eq(nodes.manufacturer, filter.manufacturer));
  if (filter.product) where.push(eq(nodes.product, filter.product));
  if (filter.labels && Object.keys(filter.labels).length) where.push(sql`${nodes.labels} @> ${JSON.stringify(filter.labels)}::jsonb`);
  if (filter.conflict !== undefined) {
    const open = sql`exists (select 1 from ${conflicts} where ${conflicts.nodeUuid} = ${nodes.uuid} and ${conflicts.resolvedAt} is null)`;
    where.push(filter.conflict ? open : sql`not ${open}`);
  }
  return where;
}

/** two bind parameters per beat; PostgreSQL's protocol allows 65535 per statement */
const BEATS_PER_STATEMENT = 5000;
/** a stage-1 token's expiry slides at most this often (well under the shortest ttl, 60 s) */
const ATTEMPT_SLIDE_MIN_MS = 5_000;

/** JSON with object keys sorted: the same content serialises alike whatever the key order. */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

/** sha256 of a facts document normalised: keys sorted, NICs and LLDP neighbours in a fixed order (the kernel
 * enumerates them in no promised order). */
export function factsHash(f: Facts): string {
  const sorted = <T>(xs: T[] | undefined, key: (x: T) => string) => (xs ? [...xs].sort((a, b) => key(a).localeCompare(key(b))) : xs);
  const norm = { ...f, nics: sorted(f.nics, (n) => n.mac), lldp: sorted(f.lldp, (n) => `${n.interface}|${n.chassisId ?? ''}|${n.portId ?? ''}`) };
  return createHash('sha256').update(canonicalJson(norm)).digest('hex');
}

/** The part of a node an action changes, for the audit log's before/after. */
const lifecycleOf = (r: NodeRow) => ({ state: r.state, heldFrom: r.heldFrom, stateReason: r.stateReason, rebuildAttempts: r.rebuildAttempts });

export function createNodeStore(db: Db, { clock = systemClock }: { clock?: Clock } = {}) {
  let byUuid: { execute(p: { uuid: string }): Promise<NodeRow[]> } | undefined;
  async function lockNode(tx: Tx, uuid: string): Promise<NodeRow> {
    const [row] = await tx.select().from(nodes).where(eq(nodes.uuid, uuid)).for('update');
    if (!row) throw notFound(`node ${uuid}`);
    return row;
  }

  async function applyTransition(tx: Tx, row: NodeRow, event: LifecycleEvent, actor: string, data?: Record<string, unknown>, audit?: AuditIntent): Promise<NodeRow> {
    const next = transition({ state: row.state as NodeState, heldFrom: (row.heldFrom as NodeState | null) ?? null, rebuildAttempts: row.rebuildAttempts }, event);
    const now = clock.now();
    const [updated] = await tx
      .update(nodes)
      .set({ state: next.state, heldFrom: next.heldFrom, rebuildAttempts: next.rebuildAttempts, stateReason: next.reason, stateSince: now, updatedAt: now })
      .where(eq(nodes.uuid, row.uuid))
      .returning();
    await tx.insert(events).values({ nodeUuid: row.uuid, at: now, kind: 'transition', fromState: row.state, toState: next.state, reason: next.reason ?? event.type, actor, data: { event: event.type, ...data } });
    await writeAudit(tx, audit, { before: lifecycleOf(row), after: lifecycleOf(updated!) }, now);
    // the boot-trust bookkeeping of docs/security-model.md rides on the transitions that imply it
    if (next.state === 'rebuilding') return expectBootTx(tx, row.uuid, `rebuild: ${next.reason ?? event.type}`);
    if (next.state === 'active') await closeAttemptsTx(tx, row.uuid, 'the compute OS is up');
    return updated!;
  }

  /** The server started a boot of this node: the next /ipxe opens a server-started attempt. */
  async function expectBootTx(tx: Tx, uuid: string, reason: string): Promise<NodeRow> {
    const [row] = await tx.update(nodes).set({ bootExpectedAt: clock.now(), bootExpectedReason: reason.slice(0, 500) }).where(eq(nodes.uuid, uuid)).returning();
    if (!row) throw notFound(`node ${uuid}`);
    return row;
  }

  async function closeAttemptsTx(tx: Tx | Db, uuid: string, reason: string, { keepServerStarted = false } = {}): Promise<number> {
    const conds = [eq(bootAttempts.nodeUuid, uuid), isNull(bootAttempts.closedAt)];
    if (keepServerStarted) conds.push(eq(bootAttempts.serverStarted, false));
    const done = await tx.update(bootAttempts).set({ closedAt: clock.now(), closeReason: reason }).where(and(...conds)).returning({ id: bootAttempts.id });
    return done.length;
  }

  const store = {
    db,

    async get(uuid: string): Promise<NodeRow | null> {
      // prepared once: every agent call reads its node here, and building the select of the row's columns anew each
      // time was a fifth of a heartbeat's CPU (BENCHMARKS.md "Agent API hot paths", profile)
      byUuid ??= db.select().from(nodes).where(eq(nodes.uuid, sql.placeholder('uuid'))).prepare('bootfarm_node_by_uuid');
      const [row] = await byUuid.execute({ uuid });
      return row ?? null;
    },

    async require(uuid: string): Promise<NodeRow> {
      const row = await store.get(uuid);
      if (!row) throw notFound(`node ${uuid}`, { uuid });
      return row;
    },

    /** Creates the node as `discovered` if it is new (first PXE request); returns it either way. */
    async enroll(uuid: string, attrs: { serial?: string; manufacturer?: string; product?: string; mac?: string }, actor: string, reason = 'first boot request', opts: { newPerMinute?: number } = {}): Promise<{ node: NodeRow; created: boolean }> {
      return db.transaction(async (tx) => {
        const now = clock.now();
        if (opts.newPerMinute !== undefined) {
          // Unauthenticated requests create nodes: bound how fast (issue 13). Only a new UUID pays for the count; the
          // lock makes count-then-insert exact across connections and replicas.
          const [known] = await tx.select({ uuid: nodes.uuid }).from(nodes).where(eq(nodes.uuid, uuid));
          if (!known) {
            await tx.execute(sql`select pg_advisory_xact_lock(${DISCOVERY_LOCK})`);
            const [recent] = await tx.select({ n: sql<number>`count(*)::int` }).from(nodes).where(gt(nodes.createdAt, new Date(now.getTime() - 60_000)));
            if (Number(recent?.n ?? 0) >= opts.newPerMinute) throw new DiscoveryCapError(opts.newPerMinute);
          }
        }
        const inserted = await tx
          .insert(nodes)
          .values({ uuid, state: 'discovered', stateSince: now, stateReason: reason, serial: attrs.serial || null, manufacturer: attrs.manufacturer || null, product: attrs.product || null, lastSeen: now, createdAt: now, updatedAt: now })
          .onConflictDoNothing()
          .returning();
        if (inserted[0]) {
          await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'transition', fromState: null, toState: 'discovered', reason, actor, data: attrs.mac ? { mac: attrs.mac } : null });
          return { node: inserted[0], created: true };
        }
        const [row] = await tx.update(nodes).set({ lastSeen: now }).where(eq(nodes.uuid, uuid)).returning();
        return { node: row!, created: false };
      });
    },

    /**
     * Applies one lifecycle event; throws TransitionError (→ 409) when the lifecycle forbids it. With `expect`
     * (the fleet controller's check before act), the locked row must still be what the decision was made from,
     * else StaleDecisionError and nothing is written.
     */
    async transition(uuid: string, event: LifecycleEvent, actor: string, data?: Record<string, unknown>, opts: { expect?: NodeExpectation; guard?: TxGuard; audit?: AuditIntent } = {}): Promise<NodeRow> {
      return db.transaction(async (tx) => {
        // the fleet controller's leader epoch (store/fence.ts): checked first, in this transaction
        await opts.guard?.(tx as unknown as Db);
        const row = await lockNode(tx, uuid);
        if (opts.expect) checkExpectation(row, opts.expect);
        return applyTransition(tx, row, event, actor, data, opts.audit);
      });
    },

    /**
     * Registration from stage-1: upsert identity by SMBIOS UUID, keep the facts document as history, claim
     * interfaces, and record identity conflicts (a MAC owned by another UUID, a serial seen under another UUID)
     * on both nodes instead of overwriting. Moves the node to `inspecting` when its state allows.
     */
    async register(input: { facts: Facts; failures: ProbeFailure[]; agentVersion?: string }, actor: string) {
      const f = input.facts;
      const uuid = f.system.uuid;
      return db.transaction(async (tx) => {
        const now = clock.now();
        const ident = { serial: f.system.serial ?? null, manufacturer: f.system.manufacturer ?? null, product: f.system.product ?? null };
        const created = (await tx.insert(nodes).values({ uuid, state: 'discovered', stateSince: now, stateReason: 'registered', ...ident, lastSeen: now, createdAt: now, updatedAt: now }).onConflictDoNothing().returning()).length > 0;
        if (created) await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'transition', fromState: null, toState: 'discovered', reason: 'registered without a boot request', actor });
        let row = await lockNode(tx, uuid);
        if (row.state === 'retired') throw new AppError(409, 'invalid_transition', `node ${uuid} is retired and may not register`, { state: row.state });
        [row] = await tx.update(nodes).set({ ...ident, lastSeen: now, updatedAt: now }).where(eq(nodes.uuid, uuid)).returning() as [NodeRow];
        // facts are history kept only when they change: a held or firmware-gated node re-registers every minute
        // with the same machine, which wrote one identical row a minute per node
        const hash = factsHash(f);
        const [latest] = await tx.select({ hash: facts.hash }).from(facts).where(eq(facts.nodeUuid, uuid)).orderBy(desc(facts.collectedAt), desc(facts.id)).limit(1);
        if (latest?.hash !== hash) await tx.insert(facts).values({ nodeUuid: uuid, collectedAt: now, agentVersion: input.agentVersion ?? null, facts: f as Record<string, unknown>, failures: input.failures, hash });

        const found: { kind: 'mac' | 'serial'; value: string; otherUuid: string }[] = [];
        const lldpByIf = new Map((f.lldp ?? []).map((n) => [n.interface, n]));
        for (const nic of f.nics) {
          const [owner] = await tx.select().from(interfaces).where(eq(interfaces.mac, nic.mac));
          if (owner && owner.nodeUuid !== uuid) {
            found.push({ kind: 'mac', value: nic.mac, otherUuid: owner.nodeUuid });
            continue;
          }
          const n = lldpByIf.get(nic.name);
          const values = { name: nic.name, driver: nic.driver ?? null, firmwareVersion: nic.firmwareVersion ?? null, switchChassis: n?.chassisId ?? null, switchName: n?.systemName ?? null, switchPort: n?.portId ?? null, switchPortDescription: n?.portDescription ?? null, updatedAt: now };
          await tx.insert(interfaces).values({ mac: nic.mac, nodeUuid: uuid, ...values }).onConflictDoUpdate({ target: interfaces.mac, set: values });
        }
        if (isRealSerial(f.system.serial)) {
          const others = await tx.select({ uuid: nodes.uuid }).from(nodes).where(and(eq(nodes.serial, f.system.serial), ne(nodes.uuid, uuid)));
          for (const o of others) found.push({ kind: 'serial', value: f.system.serial, otherUuid: o.uuid });
        }
        for (const c of found) {
          for (const [a, b] of [[uuid, c.otherUuid], [c.otherUuid, uuid]] as const) {
            const fresh = await tx.insert(conflicts).values({ nodeUuid: a, kind: c.kind, value: c.value, otherUuid: b, detectedAt: now }).onConflictDoNothing().returning();
            if (fresh.length) await tx.insert(events).values({ nodeUuid: a, at: now, kind: 'conflict', reason: `${c.kind} ${c.value} is also claimed by node ${b}`, actor, data: { kind: c.kind, value: c.value, otherUuid: b } });
          }
        }
        await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'phase', reason: 'registered', actor, data: { phase: 'registered', nics: f.nics.length, failures: input.failures.length } });
        const held = row.state === 'maintenance' || row.state === 'quarantined';
        if (!held && row.state !== 'inspecting') row = await applyTransition(tx, row, { type: 'inspect', reason: 'stage-1 registered' }, actor);
        const open = await tx.select().from(conflicts).where(and(eq(conflicts.nodeUuid, uuid), isNull(conflicts.resolvedAt)));
        return { node: row, created, conflicts: open, held };
      });
    },

    async list(filter: NodeFilter = {}): Promise<NodeRow[]> {
      const where = filterWhere(filter);
      return db
        .select()
        .from(nodes)
        .where(where.length ? and(...where) : undefined)
        .orderBy(nodes.uuid)
        .limit(filter.limit ?? 1000)
        .offset(filter.offset ?? 0);
    },

    /**
     * One page of nodes in UUID order, by keyset (the dashboard's fleet table): `after` continues past a UUID,
     * `before` goes back from one. Every page costs the same (an index range on the primary key), however deep
     * into 10,000 nodes it is, where OFFSET reads and throws away every row in front of the page. `next` / `prev`
     * are the cursors of the neighbouring pages, null at either end.
     */
    async listPage(filter: Omit<NodeFilter, 'limit' | 'offset'>, { after, before, limit = 100 }: { after?: string; before?: string; limit?: number } = {}): Promise<{ nodes: NodeRow[]; next: string | null; prev: string | null }> {
      const where = filterWhere(filter);
      const backwards = before !== undefined && after === undefined;
      if (after !== undefined) where.push(gt(nodes.uuid, after));
      if (backwards) where.push(lt(nodes.uuid, before));
      // one row more than the page says whether there is another page in that direction
      const rows = await db
        .select()
        .from(nodes)
        .where(where.length ? and(...where) : undefined)
        .orderBy(backwards ? desc(nodes.uuid) : nodes.uuid)
        .limit(limit + 1);
      const more = rows.length > limit;
      const page = rows.slice(0, limit);
      if (backwards) page.reverse();
      const first = page[0]?.uuid ?? null;
      const last = page.at(-1)?.uuid ?? null;
      if (backwards) return { nodes: page, prev: more ? first : null, next: last };
      return { nodes: page, next: more ? last : null, prev: after !== undefined ? first : null };
    },

    /** How many nodes match a filter (limit and offset ignored). */
    async count(filter: NodeFilter = {}): Promise<number> {
      const where = filterWhere(filter);
      const [row] = await db.select({ n: sql<number>`count(*)::int` }).from(nodes).where(where.length ? and(...where) : undefined);
      return Number(row?.n ?? 0);
    },

    async countByState(): Promise<Record<string, number>> {
      const rows = await db.select({ state: nodes.state, n: sql<number>`count(*)::int` }).from(nodes).groupBy(nodes.state);
      return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
    },

    /**
     * A node's events newest first, one page at a time: `before` is the previous page's nextCursor. Keyset on
     * (at, id), so events written while an operator pages back never shift a page or show twice (the API, the
     * CLI and the dashboard's timeline read this).
     */
    async eventsPage(uuid: string, { limit = 100, before }: { limit?: number; before?: Cursor } = {}): Promise<{ rows: EventRow[]; nextCursor: string | null }> {
      const where = [eq(events.nodeUuid, uuid)];
      if (before) where.push(or(lt(events.at, before.at), and(eq(events.at, before.at), lt(events.id, before.id)))!);
      const rows = await db.select().from(events).where(and(...where)).orderBy(desc(events.at), desc(events.id)).limit(limit + 1);
      return pageOf(rows, limit);
    },

    async events(uuid: string, { limit = 500, afterId = 0 }: { limit?: number; afterId?: number } = {}): Promise<EventRow[]> {
      return db.select().from(events).where(and(eq(events.nodeUuid, uuid), gt(events.id, afterId))).orderBy(events.id).limit(limit);
    },

    /**
     * With `coalesce`, an event identical (kind, reason, actor, data) to the node's latest event only bumps that
     * row's `count` and `lastAt`: an iPXE client polling /ipxe, or someone replaying it, adds no rows.
     */
    async addEvent(uuid: string, e: NewEvent, opts: { coalesce?: boolean; audit?: AuditIntent; auditChange?: { before?: unknown; after?: unknown } } = {}): Promise<EventRow> {
      if (opts.coalesce && !e.fromState && !e.toState) {
        // under the node's row lock: concurrent identical requests (iPXE clients, a script) must find each
        // other's row, not each insert one
        return db.transaction(async (tx) => {
          await lockNode(tx, uuid);
          const now = clock.now();
          const latest = sql`(select max(${events.id}) from ${events} where ${events.nodeUuid} = ${uuid})`;
          const [bumped] = await tx
            .update(events)
            .set({ count: sql`${events.count} + 1`, lastAt: now })
            .where(and(sql`${events.id} = ${latest}`, eq(events.kind, e.kind), sql`${events.reason} is not distinct from ${e.reason ?? null}`, eq(events.actor, e.actor), isNull(events.fromState), isNull(events.toState), e.data ? sql`${events.data} = ${JSON.stringify(e.data)}::jsonb` : isNull(events.data)))
            .returning();
          if (bumped) return bumped;
          const [row] = await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: e.kind, reason: e.reason ?? null, actor: e.actor, data: e.data ?? null }).returning();
          return row!;
        });
      }
      const insert = async (tx: Tx | Db) => {
        const at = clock.now();
        const [row] = await tx.insert(events).values({ nodeUuid: uuid, at, kind: e.kind, reason: e.reason ?? null, actor: e.actor, data: e.data ?? null, fromState: e.fromState ?? null, toState: e.toState ?? null }).returning();
        // an action recorded only as an event (a BMC power action): its audit row commits with the event
        await writeAudit(tx, opts.audit, opts.auditChange ?? { after: e.data ?? null }, at);
        return row!;
      };
      return opts.audit ? db.transaction(insert) : insert(db);
    },

    async addEvents(uuid: string, list: (NewEvent & { at?: Date })[]): Promise<void> {
      if (!list.length) return;
      await db.insert(events).values(list.map((e) => ({ nodeUuid: uuid, at: e.at ?? clock.now(), kind: e.kind, reason: e.reason ?? null, actor: e.actor, data: e.data ?? null })));
    },

    async latestFacts(uuid: string): Promise<FactsRow | null> {
      const [row] = await db.select().from(facts).where(eq(facts.nodeUuid, uuid)).orderBy(desc(facts.collectedAt), desc(facts.id)).limit(1);
      return row ?? null;
    },

    async interfaces(uuid: string): Promise<InterfaceRow[]> {
      return db.select().from(interfaces).where(eq(interfaces.nodeUuid, uuid)).orderBy(interfaces.mac);
    },

    async conflicts(uuid: string): Promise<ConflictRow[]> {
      return db.select().from(conflicts).where(and(eq(conflicts.nodeUuid, uuid), isNull(conflicts.resolvedAt))).orderBy(conflicts.id);
    },

    async setLabels(uuid: string, patch: Record<string, string | null>, actor: string, audit?: AuditIntent): Promise<NodeRow> {
      return db.transaction(async (tx) => {
        const row = await lockNode(tx, uuid);
        const labels = { ...row.labels };
        for (const [k, v] of Object.entries(patch)) {
          if (v === null) delete labels[k];
          else labels[k] = v;
        }
        const now = clock.now();
        const [updated] = await tx.update(nodes).set({ labels, updatedAt: now }).where(eq(nodes.uuid, uuid)).returning();
        await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'action', reason: 'labels changed', actor, data: { patch } });
        await writeAudit(tx, audit, { before: { labels: row.labels }, after: { labels: updated!.labels } }, now);
        return updated!;
      });
    },

    // ---- boot trust (docs/security-model.md): stage-1 attempts and the node credential -------------------------

    /**
     * Opens a stage-1 boot attempt and returns its token (only the hash is kept). Under the node's row lock:
     * expired attempts are closed; this address's older attempts are superseded (the same machine asking again:
     * an iPXE retry, a reboot); with `maxOpen` attempts from other addresses still open the request is refused,
     * so other addresses can delay a boot but never strand one that is under way.
     */
    async openAttempt(uuid: string, o: { address: string | null; reason: string; serverStarted: boolean; ttlSeconds: number; maxOpen: number; platform?: 'efi' | 'pcbios' }): Promise<{ token: string; attempt: BootAttemptRow } | { refused: string }> {
      return db.transaction(async (tx) => {
        await lockNode(tx, uuid);
        const now = clock.now();
        // the firmware this boot runs under, for the BMC's next PXE override (written only when it changes)
        if (o.platform) await tx.update(nodes).set({ bootPlatform: o.platform }).where(and(eq(nodes.uuid, uuid), sql`${nodes.bootPlatform} is distinct from ${o.platform}`));
        const open = and(eq(bootAttempts.nodeUuid, uuid), isNull(bootAttempts.closedAt));
        await tx.update(bootAttempts).set({ closedAt: now, closeReason: 'expired' }).where(and(open, lte(bootAttempts.expiresAt, now)));
        const sameAddress = o.address === null ? isNull(bootAttempts.address) : eq(bootAttempts.address, o.address);
        await tx.update(bootAttempts).set({ closedAt: now, closeReason: 'superseded by a newer attempt from the same address' }).where(and(open, sameAddress));
        const [others] = await tx.select({ n: sql<number>`count(*)::int` }).from(bootAttempts).where(open);
        if (Number(others?.n ?? 0) >= o.maxOpen) return { refused: `${others!.n} boot attempts from other addresses are open (boot.attempts.maxOpen)` };
        const token = newToken();
        const [attempt] = await tx
          .insert(bootAttempts)
          .values({ nodeUuid: uuid, tokenHash: hashToken(token), address: o.address, reason: o.reason, serverStarted: o.serverStarted, openedAt: now, expiresAt: new Date(now.getTime() + o.ttlSeconds * 1000) })
          .returning();
        return { token, attempt: attempt! };
      });
    },

    /**
     * What `token` is for node `uuid`: its running boot's node credential, an open stage-1 attempt's token, or
     * nothing valid (with the reason, for the 403's message). Reads only.
     */
    async agentCredential(node: Pick<NodeRow, 'uuid' | 'credentialHash'>, token: string): Promise<AgentCredential> {
      if (tokenMatches(token, node.credentialHash)) return { kind: 'node' };
      const [a] = await db.select().from(bootAttempts).where(eq(bootAttempts.tokenHash, hashToken(token)));
      if (!a || a.nodeUuid !== node.uuid) return { kind: 'invalid', why: `the token is neither a boot token nor the node credential of node ${node.uuid}` };
      const now = clock.now();
      if (a.closedAt) return { kind: 'invalid', why: `the stage-1 boot token's attempt ended at ${a.closedAt.toISOString()} (${a.closeReason ?? 'closed'})` };
      if (a.expiresAt.getTime() <= now.getTime()) return { kind: 'invalid', why: `the stage-1 boot token expired at ${a.expiresAt.toISOString()}` };
      return { kind: 'stage1', attempt: a };
    },

    /**
     * A stage-1 call with this attempt's token succeeded: its expiry slides forward by its ttl (an agent busy for a
     * long time, held in maintenance or flashing firmware, keeps its attempt). Called after the response, so a
     * rejected request changes nothing.
     */
    async attemptUsed(id: number, seen?: Pick<BootAttemptRow, 'openedAt' | 'lastUsedAt'>): Promise<void> {
      const now = clock.now();
      // the attempt as the request's auth read it: used within the last tenth of its ttl, the expiry is still at
      // least 0.9 ttl away, so a busy stage-1 (five calls a boot) writes once rather than on every call
      if (seen && now.getTime() - (seen.lastUsedAt ?? seen.openedAt).getTime() < ATTEMPT_SLIDE_MIN_MS) return;
      // one statement: the ttl the attempt was opened with (expiry − last use) keeps as the expiry slides
      await db
        .update(bootAttempts)
        .set({ lastUsedAt: now, expiresAt: sql`${now.toISOString()}::timestamptz + (${bootAttempts.expiresAt} - coalesce(${bootAttempts.lastUsedAt}, ${bootAttempts.openedAt}))` })
        .where(and(eq(bootAttempts.id, id), isNull(bootAttempts.closedAt)));
    },

    /**
     * The compute OS's credential for the boot a stage-1 attempt is about to kexec into (only its hash is kept).
     * It replaces the previous boot's: that OS is gone, its node is in stage-1. The boot the server waited for
     * has arrived, so the expectation ends here.
     */
    async issueNodeCredential(uuid: string, attemptId: number, stage1Token: string): Promise<string> {
      const token = deriveNodeCredential(stage1Token, uuid, attemptId);
      const res = await db
        .update(nodes)
        .set({ credentialHash: hashToken(token), credentialIssuedAt: clock.now(), credentialAttemptId: attemptId, bootExpectedAt: null, bootExpectedReason: null })
        .where(eq(nodes.uuid, uuid))
        .returning({ uuid: nodes.uuid });
      if (!res.length) throw notFound(`node ${uuid}`);
      return token;
    },

    /**
     * The running boot proved itself (a call with its node credential): stage-1 attempts opened on the guess that
     * the node was gone or not running are closed. Attempts of a boot the server started stay: that reboot may be
     * on its way while a last heartbeat is still in flight.
     */
    async nodeCredentialUsed(uuid: string): Promise<number> {
      return closeAttemptsTx(db, uuid, 'the running boot called in with its node credential', { keepServerStarted: true });
    },

    /** The server is starting a boot (power action with the BMC); the next /ipxe opens a server-started attempt. */
    async expectBoot(uuid: string, reason: string): Promise<NodeRow> {
      return db.transaction((tx) => expectBootTx(tx, uuid, reason));
    },

    async attempts(uuid: string): Promise<BootAttemptRow[]> {
      return db.select().from(bootAttempts).where(eq(bootAttempts.nodeUuid, uuid)).orderBy(bootAttempts.id);
    },

    async touch(uuid: string, patch: Partial<Pick<NodeRow, 'lastSeen' | 'lastHeartbeat' | 'kernelDigest' | 'initrdDigest' | 'imageName' | 'imageVersion' | 'profile' | 'hostname' | 'hypervisor' | 'hypervisorAt'>>): Promise<void> {
      await db.update(nodes).set({ ...patch, updatedAt: clock.now() }).where(eq(nodes.uuid, uuid));
    },

    /**
     * Heartbeats buffered in memory (server/fleet/beats.ts), written in one statement per flush: last_seen and
     * last_heartbeat of every node in the batch (never moved backwards: two replicas may flush out of order), and
     * the stage-1 attempts opened before the beat on the guess that the node was gone are closed, as
     * nodeCredentialUsed does for an unbuffered call. At most BEATS_PER_STATEMENT nodes per statement (bind limit).
     */
    async flushBeats(beats: { uuid: string; at: Date }[]): Promise<void> {
      const now = clock.now();
      for (let i = 0; i < beats.length; i += BEATS_PER_STATEMENT) {
        const chunk = beats.slice(i, i + BEATS_PER_STATEMENT);
        const values = sql.join(chunk.map((b) => sql`(${b.uuid}::text, ${b.at.toISOString()}::timestamptz)`), sql`, `);
        await db.execute(sql`with beats(uuid, at) as (values ${values}),
          seen as (update nodes set last_seen = greatest(nodes.last_seen, beats.at), last_heartbeat = greatest(nodes.last_heartbeat, beats.at), updated_at = ${now.toISOString()}::timestamptz
                   from beats where nodes.uuid = beats.uuid returning nodes.uuid)
          update boot_attempts set closed_at = ${now.toISOString()}::timestamptz, close_reason = 'the running boot called in with its node credential'
          from beats where boot_attempts.node_uuid = beats.uuid and boot_attempts.closed_at is null and boot_attempts.server_started = false and boot_attempts.opened_at <= beats.at`);
      }
    },

    /** Every known MAC with what DHCP needs of its node: one query for the boot backend's snapshot. */
    async macTable(): Promise<{ mac: string; state: string; hostname: string | null; labels: Record<string, string>; profile: string | null }[]> {
      return db.select({ mac: interfaces.mac, state: nodes.state, hostname: nodes.hostname, labels: nodes.labels, profile: nodes.profile }).from(interfaces).innerJoin(nodes, eq(nodes.uuid, interfaces.nodeUuid));
    },

    /** Nodes whose MAC is known: DHCP reservations ask this. */
    async byMac(mac: string): Promise<NodeRow | null> {
      const [row] = await db.select({ node: nodes }).from(interfaces).innerJoin(nodes, eq(nodes.uuid, interfaces.nodeUuid)).where(eq(interfaces.mac, mac));
      return row?.node ?? null;
    },

    async resolveConflicts(uuid: string, actor: string, filter: { kind?: string; value?: string } = {}, audit?: AuditIntent): Promise<number> {
      return db.transaction(async (tx) => {
        const now = clock.now();
        const conds = [eq(conflicts.nodeUuid, uuid), isNull(conflicts.resolvedAt)];
        if (filter.kind) conds.push(eq(conflicts.kind, filter.kind));
        if (filter.value) conds.push(eq(conflicts.value, filter.value));
        const done = await tx.update(conflicts).set({ resolvedAt: now }).where(or(and(...conds))).returning();
        if (done.length) await tx.insert(events).values({ nodeUuid: uuid, at: now, kind: 'action', reason: `resolved ${done.length} conflict(s)`, actor, data: filter });
        const open = done.map((c) => ({ kind: c.kind, value: c.value, otherUuid: c.otherUuid }));
        await writeAudit(tx, audit, { before: { open }, after: { resolved: done.length } }, now);
        return done.length;
      });
    },
  };
  // the changes a cached node row (server/api/beat-cache.ts) must not outlive: state, credential, digests. Counted
  // when the call is over (its transaction committed), also when it threw: a count too many only costs a read.
  for (const name of ['transition', 'issueNodeCredential', 'expectBoot', 'touch'] as const) {
    const call = store[name] as (uuid: string, ...rest: never[]) => Promise<unknown>;
    (store as Record<string, unknown>)[name] = async (uuid: string, ...rest: never[]) => {
      try {
        return await call(uuid, ...rest);
      } finally {
        nodeWritten(uuid);
      }
    };
  }
  const register = store.register;
  store.register = async (input, actor) => {
    try {
      return await register(input, actor);
    } finally {
      nodeWritten(input.facts.system.uuid);
    }
  };
  return store;
}

export type NodeStore = ReturnType<typeof createNodeStore>;
export { TransitionError };
