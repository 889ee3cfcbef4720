// Cabling compliance (issue 16 item 5): the cabling a node was supposed to get (NIC → switch and port) against
// the LLDP neighbours its agent saw at registration (IEEE 802.1AB: chassis ID / system name identify the switch,
// port ID / port description its port). Pure: no storage, no HTTP, no clock; never throws on whatever facts a
// node sends (a broken LLDP probe or an odd switch must not break registration).
//
// A NIC is named in the plan by interface name or MAC; a switch by its system name or chassis ID; a port by its
// port ID or port description (switches differ in which one carries "Ethernet1/7"). Comparison is
// case-insensitive and ignores surrounding spaces.

export type CablingPolicy = 'warn' | 'block';

export interface PlannedLink {
  /** interface name ("eno1") or MAC */
  nic: string;
  /** switch system name or chassis ID */
  switch: string;
  port: string;
}

export interface NodeCablingPlan {
  policy: CablingPolicy;
  links: PlannedLink[];
}

export interface SeenPort {
  switch: string;
  port: string;
}

export type CablingProblem =
  /** the NIC sees a switch port, but not the planned one */
  | { kind: 'wrong-port'; nic: string; expected: SeenPort; seen: SeenPort[] }
  /** no LLDP neighbour on the NIC (unplugged, or the switch sends no LLDP) */
  | { kind: 'missing-link'; nic: string; expected: SeenPort }
  /** the node has no NIC by that name or MAC */
  | { kind: 'unknown-nic'; nic: string; expected: SeenPort }
  /** two NICs, each on the other's planned port: the cables were swapped */
  | { kind: 'swapped'; nic: string; expected: SeenPort; seen: SeenPort[]; with: string };

export interface CablingVerdict {
  /** unplanned: no plan covers the node */
  status: 'compliant' | 'failed' | 'unplanned';
  policy: CablingPolicy | null;
  problems: CablingProblem[];
  /** block only for a failed check under policy block */
  action: 'pass' | 'warn' | 'block';
  /** one line for the node's state reason and the report; absent when compliant or unplanned */
  reason?: string;
}

const norm = (s: unknown) => (typeof s === 'string' ? s.trim().toLowerCase() : '');
const normMac = (s: string) => {
  const hex = s.toLowerCase().replace(/[^0-9a-f]/g, '');
  return hex.length === 12 && /^[0-9a-f:.-]+$/i.test(s.trim()) ? hex : null;
};
const rec = (v: unknown): Record<string, unknown> | null => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null);
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

interface Neighbour {
  iface: string;
  switchIds: string[];
  portIds: string[];
  shown: SeenPort;
}

function neighboursOf(lldp: unknown): Neighbour[] {
  const out: Neighbour[] = [];
  for (const raw of list(lldp)) {
    const n = rec(raw);
    if (!n || typeof n['interface'] !== 'string') continue;
    const switchIds = [n['systemName'], n['chassisId']].map(norm).filter(Boolean);
    const portIds = [n['portId'], n['portDescription']].map(norm).filter(Boolean);
    // only strings are shown: a hostile or broken probe's object must not reach String() (it may not convert)
    const text = (...vs: unknown[]) => (vs.find((v) => typeof v === 'string' && v.trim()) as string | undefined) ?? '?';
    const shown = { switch: text(n['systemName'], n['chassisId']), port: text(n['portId'], n['portDescription']) };
    out.push({ iface: norm(n['interface']), switchIds, portIds, shown });
  }
  return out;
}

/** The node's interface name for a plan's NIC (name or MAC), or null. */
function resolveNic(nic: string, nics: unknown): string | null {
  const mac = normMac(nic);
  for (const raw of list(nics)) {
    const n = rec(raw);
    if (!n) continue;
    if (mac && typeof n['mac'] === 'string' && normMac(n['mac']) === mac) return norm(n['name']) || null;
    if (!mac && norm(n['name']) === norm(nic)) return norm(n['name']);
  }
  // a name the NIC list does not have may still be an LLDP interface (a NIC probe failed): let LLDP decide
  return mac ? null : norm(nic) || null;
}

const matches = (n: Neighbour, p: SeenPort) => n.switchIds.includes(norm(p.switch)) && n.portIds.includes(norm(p.port));
const show = (p: SeenPort) => `${p.switch} ${p.port}`;

function describe(p: CablingProblem): string {
  // "eth1 expected on sw-a Ethernet1/3, seen on sw-b Ethernet1/4": what to walk to, and what is there now
  switch (p.kind) {
    case 'wrong-port':
      return `${p.nic} expected on ${show(p.expected)}, seen on ${p.seen.map(show).join(', ')}`;
    case 'missing-link':
      return `${p.nic} expected on ${show(p.expected)}, no LLDP neighbour seen (unplugged, or the switch sends no LLDP)`;
    case 'unknown-nic':
      return `${p.nic} expected on ${show(p.expected)}, but the node has no such NIC`;
    case 'swapped':
      return `${p.nic} and ${p.with} are swapped: ${p.nic} expected on ${show(p.expected)}, seen on ${p.seen.map(show).join(', ')}`;
  }
}

/** One line per problem (the node event's data and the report's detail). */
export const describeProblem = describe;

/** Checks a node's LLDP facts against its plan. `facts` is whatever the agent sent: only `nics` and `lldp` are read. */
export function checkCabling(plan: NodeCablingPlan | null | undefined, facts: unknown): CablingVerdict {
  if (!plan || plan.links.length === 0) return { status: 'unplanned', policy: plan?.policy ?? null, problems: [], action: 'pass' };
  const f = rec(facts) ?? {};
  const neighbours = neighboursOf(f['lldp']);
  const problems: CablingProblem[] = [];
  // what each problem's NIC sees, to tell a swap by any of the switch's identifiers (not only the shown ones)
  const seenBy = new Map<CablingProblem, Neighbour[]>();
  for (const link of plan.links) {
    const expected = { switch: link.switch, port: link.port };
    const iface = resolveNic(link.nic, f['nics']);
    if (!iface) {
      problems.push({ kind: 'unknown-nic', nic: link.nic, expected });
      continue;
    }
    const seen = neighbours.filter((n) => n.iface === iface);
    if (seen.some((n) => matches(n, expected))) continue;
    if (seen.length === 0) problems.push({ kind: 'missing-link', nic: link.nic, expected });
    else {
      const p: CablingProblem = { kind: 'wrong-port', nic: link.nic, expected, seen: seen.map((n) => n.shown) };
      problems.push(p);
      seenBy.set(p, seen);
    }
  }
  // swapped: A sees B's planned port and B sees A's. Pairs are taken in plan order, each NIC in at most one pair.
  for (let i = 0; i < problems.length; i++) {
    const a = problems[i]!;
    if (a.kind !== 'wrong-port') continue;
    for (let j = i + 1; j < problems.length; j++) {
      const b = problems[j]!;
      if (b.kind !== 'wrong-port') continue;
      if (seenBy.get(a)!.some((n) => matches(n, b.expected)) && seenBy.get(b)!.some((n) => matches(n, a.expected))) {
        problems[i] = { ...a, kind: 'swapped', with: b.nic };
        problems[j] = { ...b, kind: 'swapped', with: a.nic };
        break;
      }
    }
  }
  if (problems.length === 0) return { status: 'compliant', policy: plan.policy, problems, action: 'pass' };
  return { status: 'failed', policy: plan.policy, problems, action: plan.policy, reason: `cabling: ${problems.map(describe).join('; ')}` };
}

// ---- which plan a node falls under ------------------------------------------------------------------------

/** The label naming a node's rack (the fleet's rebuild.rackLabel defaults to the same). */
export const RACK_LABEL = 'rack';

/** A loaded plan as the store keeps it. */
export interface StoredCablingPlan extends NodeCablingPlan {
  scope: 'node' | 'rack';
  /** as the operator wrote it: serial, SMBIOS UUID or MAC (node), rack name (rack) */
  key: string;
}

/** What identifies a node to a plan. */
export interface CablingSubject {
  uuid: string;
  serial: string | null;
  macs: string[];
  labels: Record<string, string>;
}

/** A plan key as compared: a MAC in any spelling becomes its 12 hex digits, anything else lower case. */
export function cablingKey(key: string): string {
  return normMac(key) ?? key.trim().toLowerCase();
}

/** The node's identity from its labels and the facts its agent sent (whatever their shape). */
export function cablingSubjectOf(uuid: string, labels: Record<string, string>, facts: unknown): CablingSubject {
  const f = rec(facts) ?? {};
  const serial = rec(f['system'])?.['serial'];
  const macs = list(f['nics']).flatMap((n) => {
    const mac = rec(n)?.['mac'];
    return typeof mac === 'string' ? [mac] : [];
  });
  return { uuid, serial: typeof serial === 'string' && serial.trim() ? serial : null, macs, labels };
}

/** The keys a store looks plans up by: node keys (UUID, serial, MACs, normalised) and the rack. */
export function planKeys(s: CablingSubject): { node: string[]; rack: string | null } {
  const node = [s.uuid, ...(s.serial ? [s.serial] : []), ...s.macs].map(cablingKey).filter(Boolean);
  const rack = s.labels[RACK_LABEL];
  return { node: [...new Set(node)], rack: rack ? cablingKey(rack) : null };
}

/**
 * The plan for a node, most specific first: a node plan by UUID, then by serial, then by MAC (NIC order), then
 * its rack's plan. A serial is a weak key (vendors ship "To Be Filled By O.E.M."), so the UUID wins over it.
 */
export function selectCablingPlan<P extends StoredCablingPlan>(plans: readonly P[], s: CablingSubject): P | null {
  const keys = planKeys(s);
  const byNode = new Map(plans.filter((p) => p.scope === 'node').map((p) => [cablingKey(p.key), p]));
  for (const k of keys.node) {
    const p = byNode.get(k);
    if (p) return p;
  }
  if (!keys.rack) return null;
  return plans.find((p) => p.scope === 'rack' && cablingKey(p.key) === keys.rack) ?? null;
}

/** A node's cabling: the verdict and which plan (scope and key as written) it was checked against. */
export interface CablingResult extends CablingVerdict {
  plan: { scope: 'node' | 'rack'; key: string } | null;
}

/** The plan a node falls under (from `plans`) checked against its facts: for reports, the API and the gate. */
export function cablingResult(plans: readonly StoredCablingPlan[], uuid: string, labels: Record<string, string>, facts: unknown): CablingResult {
  const plan = selectCablingPlan(plans, cablingSubjectOf(uuid, labels, facts));
  return { ...checkCabling(plan, facts), plan: plan ? { scope: plan.scope, key: plan.key } : null };
}

/** Where the check reads plans (server/store/cabling.ts satisfies it): only those a node's keys may select. */
export interface CablingPlanSource {
  plansFor(keys: { node: string[]; rack: string | null }): Promise<StoredCablingPlan[]>;
}

/** The check registration runs (server/api/agent.ts): one lookup for the node's candidate plans, then the rule. */
export function createCablingCheck({ store }: { store: CablingPlanSource }) {
  return async function cablingCheck(node: { uuid: string; labels: Record<string, string> }, facts: unknown): Promise<CablingResult> {
    const plans = await store.plansFor(planKeys(cablingSubjectOf(node.uuid, node.labels, facts)));
    return cablingResult(plans, node.uuid, node.labels, facts);
  };
}
