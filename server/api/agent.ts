// Agent routes (/api/v1/agent/*): stage-1 registration and profile, the compute OS's installed and heartbeat.
// Every call carries the credential the server put on the node's kernel command line (bootfarm.token=): stage-1
// calls the boot attempt's stage-1 token, the compute OS its node credential (issued here with the profile).
// docs/security-model.md
import { Hono, type Context } from 'hono';
import { AddressConflict, AgentEvents, HeartbeatRequest, InstalledRequest, RegisterRequest, type Detail, type Profile, type RegisterResponse } from '../contract/agent.ts';
import { SmbiosUuid } from '../contract/common.ts';
import type { NodeState } from '../contract/lifecycle.ts';
import { selectProfile } from '../domain/profiles.ts';
import { renderableImage } from '../domain/images.ts';
import { cablingResult, cablingSubjectOf, createCablingCheck, describeProblem, planKeys, type CablingResult } from '../domain/cabling.ts';
import { bootMacOf, networkMismatch, networkPlan, type NodeAddress } from '../domain/ipam.ts';
import { AppError } from '../errors.ts';
import type { InterfaceRow, NodeRow } from '../store/nodes.ts';
import type { IpamStore } from '../store/ipam.ts';
import { agentAuth, agentUseRecorded, bearer, nodeCredentialAccepted, type AgentScope } from './auth.ts';
import { createBeatCache } from './beat-cache.ts';
import { tokenMatches } from '../secrets.ts';
import type { Deps } from './deps.ts';
import { jsonBody, parseWith } from './validate.ts';
import { baseUrlOf } from './url.ts';
import { safeCmdline } from '../../boot/ipxe/script.ts';
import { createHeartbeats } from '../fleet/heartbeat.ts';

const INVENTORY_ONLY = 'inventory only';

export function agentRoutes(deps: Deps & { cabling: NonNullable<Deps['cabling']>; ipam: IpamStore }) {
  const app = new Hono();
  const { nodes } = deps;
  const cablingCheck = createCablingCheck({ store: deps.cabling });
  const heartbeat = createHeartbeats({ nodes, db: deps.db.db, clock: deps.clock, beats: deps.beats });
  const beatRows = createBeatCache({ clock: deps.clock });

  const authedNode = async (c: Context, uuid: string, scope: AgentScope = 'stage1'): Promise<NodeRow> => (await agentAuth(c, nodes, uuid, scope)).node;

  const uuidParam = (c: Context) => parseWith(SmbiosUuid, c.req.param('uuid'));
  /** the node's profile says inventory only (per label: a profile that matches it) */
  const inventoryOnly = (node: NodeRow) => {
    const name = selectProfile(deps.config.profiles, node);
    return !!(name && deps.config.profiles[name]?.inventoryOnly);
  };

  app.post('/register', async (c) => {
    // the boot budget (server/images/budget.ts): over it, a 503 with a jittered Retry-After the agent waits out
    const release = deps.budget ? deps.budget.register() : () => {};
    if (!release) {
      const seconds = deps.budget!.retrySeconds();
      throw new AppError(503, 'busy', `this server is registering as many nodes as it takes at once; try again in ${seconds} s`, { retryAfterSeconds: seconds }, { 'retry-after': String(seconds) });
    }
    try {
      return await register(c);
    } finally {
      release();
    }
  });

  async function register(c: Context) {
    const body = await jsonBody(c, RegisterRequest);
    const uuid = body.facts.system.uuid;
    await authedNode(c, uuid);
    const reg = await nodes.register(body, 'agent');
    let node = reg.node;
    let next: RegisterResponse['next'] = 'provision';
    let reason: string | undefined;
    if (reg.held) {
      next = 'hold';
      reason = `node is ${node.state}: ${node.stateReason ?? 'held by an operator'}`;
    } else {
      const verdict = await deps.inspection({ uuid, state: node.state as NodeState, manufacturer: node.manufacturer, product: node.product, labels: node.labels }, body.facts);
      // two copies of one registration at once (an agent retry while the first waited on a stalled replica): the
      // one that finds the node already ready answers the same (issue 14)
      if (verdict.action === 'ready') {
        // inventory only (issue 16 item 6): checked, then off. The agent powers the node off itself: new hardware
        // often has no BMC credentials on record yet, and stage-1 is already running there
        const inventory = inventoryOnly(node);
        // cabling (issue 16 item 5): the plan against the LLDP neighbours just seen. Under policy block the node
        // becomes ready but is told to hold and re-registers (new facts, a new check) until the cables are right
        const cabling = await cablingCheck(node, body.facts);
        const blocked = cabling.action === 'block';
        const reasons = [inventory ? INVENTORY_ONLY : (verdict.reason ?? 'inspection passed'), ...(cabling.reason ? [`${cabling.reason} (policy ${cabling.policy})`] : [])];
        node = await nodes.transition(uuid, { type: 'inspected', reason: reasons.join('; ') }, 'inspection').catch(async (e: unknown) => {
          const now = await nodes.get(uuid);
          if (now?.state === 'ready') return now;
          throw e;
        });
        if (cabling.status === 'failed') await cablingEvent(uuid, cabling);
        if (inventory) {
          next = 'poweroff';
          reason = reasons.join('; ');
        } else if (blocked) {
          next = 'hold';
          reason = cabling.reason;
        }
      } else if (verdict.action === 'firmware') {
        node = await nodes.transition(uuid, { type: 'firmware-required', reason: verdict.reason }, 'inspection');
        next = 'firmware';
        reason = verdict.reason;
      } else {
        node = await nodes.transition(uuid, { type: 'quarantine', reason: verdict.reason }, 'inspection');
        next = 'hold';
        reason = verdict.reason;
      }
    }
    const res: RegisterResponse = {
      uuid,
      state: node.state as NodeState,
      created: reg.created,
      conflicts: reg.conflicts.map((x) => ({ kind: x.kind as 'mac' | 'serial', value: x.value, otherUuid: x.otherUuid, detectedAt: x.detectedAt.toISOString() })),
      next,
      ...(reason ? { reason } : {}),
    };
    return c.json(res, reg.created ? 201 : 200);
  }

  /** one event per failed check, naming each wrong port; a node that re-registers unchanged bumps the same one */
  const cablingEvent = (uuid: string, r: CablingResult) =>
    nodes.addEvent(uuid, { kind: 'cabling', reason: r.reason ?? 'cabling', actor: 'inspection', data: { status: r.status, policy: r.policy, action: r.action, plan: r.plan, problems: r.problems.map((p) => ({ ...p, message: describeProblem(p) })) } }, { coalesce: true });

  app.get('/:uuid/profile', async (c) => {
    const uuid = uuidParam(c);
    const auth = await agentAuth(c, nodes, uuid, 'stage1');
    let node = auth.node;
    // the latest facts, read once for this request (the cabling check below, BOOTIF on the compute command line)
    let facts: ReturnType<typeof deps.cabling.latestFacts> | undefined;
    const latestFacts = () => (facts ??= deps.cabling.latestFacts(uuid));
    if (inventoryOnly(node)) throw new AppError(409, 'inventory_only', `node ${uuid} is inventory only (its profile says inventoryOnly): it is never provisioned`, { state: node.state });
    if (node.state === 'ready') {
      // cabling under policy block (issue 16 item 5), from the latest facts and today's plan: a plan corrected
      // since registration lets the node go, a cable still wrong does not
      const seen = await latestFacts();
      const plans = seen ? await deps.cabling.plansFor(planKeys(cablingSubjectOf(uuid, node.labels, seen))) : [];
      const cabling = cablingResult(plans, uuid, node.labels, seen);
      if (cabling.action === 'block') throw new AppError(409, 'cabling_blocked', `node ${uuid} is not cabled as planned (policy block): ${cabling.reason}`, { state: node.state, problems: cabling.problems });
    }
    // inspecting is a moment long: a copy of this boot's registration that ran late is inspecting the node again;
    // ask again in a second instead of a 409 that ends the boot (issue 14)
    const busy = () => new AppError(503, 'unavailable', `node ${uuid} is being inspected; ask again`, { state: 'inspecting' }, { 'retry-after': '1' });
    if (node.state === 'inspecting') throw busy();
    if (node.state !== 'ready' && node.state !== 'provisioning') {
      throw new AppError(409, 'invalid_transition', `node ${uuid} is ${node.state}; a profile is handed out only to ready nodes`, { state: node.state });
    }
    const name = selectProfile(deps.config.profiles, node);
    const profile = name ? deps.config.profiles[name] : undefined;
    if (!name || !profile) throw new AppError(409, 'no_profile', `no profile matches node ${uuid} (labels ${JSON.stringify(node.labels)}) and there is no "default" profile`);
    // an image whose command line cannot be rendered gives the node the channel's last good one; nothing is written
    // before the choice is made, so a refusal leaves the node as it was (issue 12 item 7)
    const pick = await renderableImage(deps.images, profile.image, profile.channel, (img) => [...safeCmdline(img.cmdline), ...safeCmdline(profile.cmdline)]);
    if (pick.kind === 'none') throw new AppError(503, 'image_unavailable', `nothing is published in ${profile.image}:${profile.channel} for profile ${name}`, { image: profile.image, channel: profile.channel }, { 'retry-after': '30' });
    if (pick.kind !== 'current') {
      const data = { channel: profile.channel, broken: `${pick.broken.name}@${pick.broken.version}`, error: pick.error, used: pick.kind === 'fallback' ? `${pick.image.name}@${pick.image.version}` : null };
      deps.log.error({ uuid, profile: name, ...data }, pick.kind === 'fallback' ? 'compute image does not render; node gets the last good image of its channel' : 'no compute image of the channel renders');
      await nodes.addEvent(uuid, { kind: 'image', reason: 'image-fallback', actor: 'agent', data }, { coalesce: true });
      if (pick.kind === 'broken') throw new AppError(503, 'image_unavailable', `compute image ${data.broken} cannot be booted (${pick.error}) and no earlier image of ${profile.image}:${profile.channel} can`, { image: profile.image, channel: profile.channel }, { 'retry-after': '30' });
    }
    const image = pick.image;
    if (node.state === 'ready') {
      // two copies of this request (an agent retry while the first waited on a stalled replica) both saw `ready`:
      // the one that finds the node provisioning already hands out the same profile (issue 14)
      node = await nodes.transition(uuid, { type: 'provision', reason: `profile ${name}: ${image.name}@${image.version} (${profile.channel})` }, 'agent', { profile: name, image: image.name, version: image.version, kernel: image.kernel.digest, initrd: image.initrd.digest }).catch(async (e: unknown) => {
        const now = await nodes.get(uuid);
        if (now?.state === 'provisioning') return now;
        if (now?.state === 'inspecting') throw busy();
        throw e;
      });
    }
    // what the node was told to boot; `installed` and heartbeats overwrite it with what it actually booted, and a
    // failure before that still counts against this image in the promotion gates
    await nodes.touch(uuid, { imageName: image.name, imageVersion: image.version, kernelDigest: image.kernel.digest, initrdDigest: image.initrd.digest });
    const base = baseUrlOf(c, deps.config);
    // the compute OS's own credential for this boot; the stage-1 token stays behind in stage-1
    // derived from this attempt's stage-1 token: a second copy of this request gets the same one (secrets.ts)
    const token = await nodes.issueNodeCredential(uuid, auth.attempt!.id, bearer(c)!);
    const iscsi = iscsiFor(profile, uuid);
    const bootMac = bootMacOf(await latestFacts());
    const args = [
      ...safeCmdline(image.cmdline),
      ...safeCmdline(profile.cmdline),
      `bootfarm.server=${base}`,
      `bootfarm.uuid=${uuid}`,
      `bootfarm.token=${token}`,
      'bootfarm.mode=compute',
      `bootfarm.kernel=${image.kernel.digest}`,
      `bootfarm.initrd=${image.initrd.digest}`,
      `bootfarm.heartbeat=${profile.heartbeatIntervalSeconds}`,
      // the NIC stage-1 booted from (pxelinux's BOOTIF): the compute OS's /init takes its DHCP lease there. Without it
      // /init takes the first NIC with a carrier, which on a node with several cabled NICs need not be the boot one
      ...(bootMac ? [`BOOTIF=01-${bootMac.replace(/:/g, '-')}`] : []),
      ...(iscsi
        ? [
            `bootfarm.iscsi.portal=${iscsi.portal}`,
            `bootfarm.iscsi.target=${iscsi.target}`,
            `bootfarm.iscsi.lun=${iscsi.lun}`,
            `bootfarm.iscsi.initiator=${iscsi.initiator}`,
            ...(iscsi.chapUser ? [`bootfarm.iscsi.user=${iscsi.chapUser}`, `bootfarm.iscsi.password=${iscsi.chapPassword ?? ''}`] : []),
          ]
        : []),
    ];
    const res: Profile = {
      uuid,
      profile: name,
      image: { name: image.name, channel: image.channel, version: image.version, manifestDigest: image.manifestDigest },
      kernel: { url: `${base}/images/${image.kernel.digest}`, sha256: image.kernel.digest, size: image.kernel.size },
      initrd: { url: `${base}/images/${image.initrd.digest}`, sha256: image.initrd.digest, size: image.initrd.size },
      cmdline: args.join(' '),
      heartbeatIntervalSeconds: profile.heartbeatIntervalSeconds,
    };
    return c.json(res);
  });

  function iscsiFor(profile: Deps['config']['profiles'][string], uuid: string) {
    if (!profile.iscsi) return undefined;
    const i = profile.iscsi;
    return { portal: i.portal, target: `${i.targetPrefix}${uuid}`, lun: i.lun, initiator: `${i.initiatorPrefix}${uuid}`, chapUser: i.chapUser, chapPassword: i.chapPassword };
  }

  type ProfileOf = Deps['config']['profiles'][string];
  /** the node's NICs for the bond: LLDP from its latest registration's interfaces, and which one it booted from (the
   * bond leaves that one out when it can: server/domain/ipam.ts chooseBondMembers) */
  const nicsOf = async (uuid: string, ifs?: InterfaceRow[]) => {
    const [rows, bootMac] = await Promise.all([ifs ?? nodes.interfaces(uuid), deps.cabling.latestFacts(uuid).then(bootMacOf)]);
    return rows.map((i) => ({ name: i.name, mac: i.mac, switchChassis: i.switchChassis, ...(bootMac && i.mac.toLowerCase() === bootMac ? { boot: true } : {}) }));
  };
  const bondOf = (profile: ProfileOf | undefined) => profile?.bond ?? { name: 'bond0', mode: '802.3ad' as const };

  /** The node's address on each network of its profile (issue 16 item 1): allocated at the first call, the same
   * ones at every later call and every rebuild. A new address is a node event. */
  async function addressesOf(uuid: string, name: string | null, profile: ProfileOf | undefined): Promise<NodeAddress[]> {
    const wants = profile?.networks ?? [];
    if (!wants.length) return [];
    const exist = new Set((await deps.ipam.networksNamed(wants.map((w) => w.name))).map((n) => n.name));
    const missing = wants.filter((w) => !exist.has(w.name)).map((w) => w.name);
    if (missing.length) throw new AppError(409, 'network_missing', `profile ${name} names network(s) ${missing.join(', ')} that IPAM does not have; create them (PUT /api/v1/networks/{name}) or fix the profile`, { profile: name, networks: missing });
    const out: NodeAddress[] = [];
    for (const w of wants) {
      const a = await deps.ipam.allocate(w.name, uuid, w.interface);
      out.push({ network: a.network, interface: w.interface, address: a.row.address });
      if (a.created) await nodes.addEvent(uuid, { kind: 'ipam', reason: 'address-allocated', actor: 'agent', data: { network: w.name, interface: w.interface, address: a.row.address, reserved: a.row.reserved } });
    }
    return out;
  }

  // Stage-1 reads it before kexec; the compute OS reads it with its node credential to apply its network (issue 16
  // item 1, agent/network). The iSCSI block (CHAP password) stays stage-1's: the compute OS logs in with what its
  // kernel command line carries, and a long-lived credential need not read the secret again.
  app.get('/:uuid/detail', async (c) => {
    const uuid = uuidParam(c);
    const { node, kind } = await agentAuth(c, nodes, uuid, 'either');
    const name = selectProfile(deps.config.profiles, node);
    const profile = name ? deps.config.profiles[name] : undefined;
    const ifs = await nodes.interfaces(uuid);
    const iscsi = profile ? iscsiFor(profile, uuid) : undefined;
    // the bond's members from the LLDP neighbours of the latest registration (interfaces.switch_chassis)
    const plan = networkPlan(await nicsOf(uuid, ifs), bondOf(profile), await addressesOf(uuid, name, profile));
    const res: Detail = {
      uuid,
      hostname: node.hostname ?? `node-${uuid.slice(0, 8)}`,
      interfaces: ifs.map((i) => ({ name: i.name ?? '', mac: i.mac, addresses: plan.addresses.filter((a) => a.device === (i.name || i.mac)).map((a) => a.address) })),
      ...(plan.bond ? { bond: plan.bond } : {}),
      vlans: plan.vlans,
      addresses: plan.addresses,
      routes: plan.routes,
      dns: plan.dns,
      ...(iscsi && kind === 'stage1' ? { iscsi } : {}),
      labels: node.labels,
    };
    return c.json(res);
  });

  /** The heartbeat's report of what the compute OS configured against what detail handed out (the node's profile
   * networks, its allocations, its bond): a difference is a node event, coalesced while it stays the same. */
  async function compareConfigured(node: NodeRow, seen: NonNullable<HeartbeatRequest['network']>) {
    const name = selectProfile(deps.config.profiles, node);
    const profile = name ? deps.config.profiles[name] : undefined;
    const held = await deps.ipam.nodeAddresses(node.uuid);
    const wanted = (profile?.networks ?? []).flatMap((w) => held.filter((h) => h.network.name === w.name && h.interface === w.interface));
    const plan = networkPlan(await nicsOf(node.uuid), bondOf(profile), wanted);
    const mismatch = networkMismatch(plan, seen);
    if (!mismatch) return;
    const parts = [mismatch.missing.length ? `${mismatch.missing.length} address(es) not configured (${mismatch.missing.map((m) => `${m.address} on ${m.device}`).join(', ')})` : '', mismatch.unexpected.length ? `${mismatch.unexpected.length} not handed out (${mismatch.unexpected.map((m) => `${m.address} on ${m.device}`).join(', ')})` : '', mismatch.bond ? `bond ${mismatch.bond.seen ? `${mismatch.bond.seen.mode} [${mismatch.bond.seen.members.join(', ')}]` : 'absent'}, expected ${mismatch.bond.expected ? `${mismatch.bond.expected.mode} [${mismatch.bond.expected.members.join(', ')}]` : 'none'}` : ''].filter(Boolean);
    await nodes.addEvent(node.uuid, { kind: 'ipam', reason: 'network-mismatch', actor: 'agent', data: { message: `the compute OS configured its network differently: ${parts.join('; ')}`, ...mismatch } }, { coalesce: true });
  }

  // another device answers for an address the node was given (DHCPDECLINE, ARP probe, IPv6 DAD): the address is
  // marked conflict, out of every pool until an operator releases it, and the node gets the next free one
  app.post('/:uuid/addresses/conflict', async (c) => {
    const uuid = uuidParam(c);
    const node = await authedNode(c, uuid, 'either');
    const body = await jsonBody(c, AddressConflict);
    const res = await deps.ipam.decline(uuid, body.address, { network: body.network, reason: `${body.how}${body.detail ? `: ${body.detail}` : ''}` });
    const { declined, replacement } = res;
    const iface = replacement.row.interface!;
    await nodes.addEvent(uuid, { kind: 'ipam', reason: 'address-conflict', actor: 'agent', data: { network: declined.network, interface: iface, declined: declined.address, replacement: replacement.row.address, how: body.how, ...(body.detail ? { detail: body.detail } : {}) } });
    const profile = deps.config.profiles[selectProfile(deps.config.profiles, node) ?? ''];
    const [address] = networkPlan(await nicsOf(uuid), bondOf(profile), [{ network: replacement.network, interface: iface, address: replacement.row.address }]).addresses;
    return c.json({ declined: declined.address, network: declined.network, replacement: address });
  });

  app.post('/:uuid/events', async (c) => {
    const uuid = uuidParam(c);
    await authedNode(c, uuid, 'either');
    const body = await jsonBody(c, AgentEvents);
    const list = 'events' in body ? body.events : [body];
    await nodes.addEvents(
      uuid,
      list.map((e) => ({ kind: 'phase', reason: e.phase, actor: 'agent', data: { phase: e.phase, ...(e.message ? { message: e.message } : {}), ...(e.data ? { data: e.data } : {}), ...(e.at ? { agentAt: e.at } : {}) } })),
    );
    await nodes.touch(uuid, { lastSeen: deps.clock.now() });
    return c.json({ accepted: list.length }, 202);
  });

  app.post('/:uuid/installed', async (c) => {
    const uuid = uuidParam(c);
    let node = await authedNode(c, uuid, 'node');
    const body = await jsonBody(c, InstalledRequest);
    const now = deps.clock.now();
    await nodes.touch(uuid, { lastSeen: now, lastHeartbeat: now, ...(body.kernelDigest ? { kernelDigest: body.kernelDigest } : {}), ...(body.initrdDigest ? { initrdDigest: body.initrdDigest } : {}) });
    if (node.state === 'provisioning') node = await nodes.transition(uuid, { type: 'installed', reason: 'compute OS reported in' }, 'agent', { ...body });
    else if (node.state !== 'active') throw new AppError(409, 'invalid_transition', `node ${uuid} is ${node.state}; installed is accepted only while provisioning`, { state: node.state });
    return c.json({ state: node.state });
  });

  app.post('/:uuid/heartbeat', async (c) => {
    const uuid = uuidParam(c);
    // a steady-state beat takes its node row from beat-cache.ts (the row's read was most of a beat's cost); the
    // credential is checked against that row all the same, as agentAuth would. Anything else reads the row.
    const cached = beatRows.get(uuid);
    const token = cached ? bearer(c) : null;
    let node: NodeRow;
    let writes: number | undefined;
    if (cached && token && tokenMatches(token, cached.credentialHash)) {
      node = cached;
      nodeCredentialAccepted(c, uuid);
    } else {
      writes = beatRows.mark(uuid);
      node = await authedNode(c, uuid, 'node');
    }
    const body = await jsonBody(c, HeartbeatRequest);
    // what the heartbeat means for the lifecycle (installed, recover, old boot) lives in server/fleet/heartbeat.ts
    const res = await heartbeat(node, body);
    if (body.network) await compareConfigured(node, body.network);
    // a buffered beat closes guessed stage-1 attempts at its flush (server/fleet/beats.ts), not per request
    if (res.buffered) {
      agentUseRecorded(c);
      if (writes !== undefined) beatRows.remember(node, writes);
    }
    return c.json({ state: res.node.state, next: res.next });
  });

  return app;
}
