// /ui/nodes/:uuid: one node as an operator needs it — identity, actions (power through the BMC, lifecycle),
// hardware facts, NICs with the switch port each one's LLDP neighbour reports, firmware, the timeline newest
// first, and the end of the serial console as IPMI SOL captured it (fleet/console.ts, issue 16 item 4).
import type { Facts, LldpNeighbor, NicFacts } from '../../contract/facts.ts';
import type { NodeCompliance } from '../../domain/firmware.ts';
import type { ConflictRow, EventRow, FactsRow, InterfaceRow, NodeRow } from '../../store/nodes.ts';
import { describeCapacity } from '../../domain/hypervisor.ts';
import { ago, CsrfField, documentOf, Flash, isoMinute, labelText, Page, StatePill, type Viewer } from './layout.tsx';

export interface NodeView {
  viewer: Viewer | null;
  node: NodeRow;
  facts: FactsRow | null;
  interfaces: InterfaceRow[];
  conflicts: ConflictRow[];
  bmc: { driver: string; address: string; port: number | null; username: string } | null;
  /** newest first */
  events: EventRow[];
  /** more events exist than are shown */
  moreEvents: boolean;
  now: Date;
  /** the session's form token; null when the page was opened with a bearer token (no forms then) */
  csrf: string | null;
  canOperate: boolean;
  isAdmin: boolean;
  /** power control is wired (a server without BMC drivers shows no power form) */
  power: boolean;
  /** compliance with the firmware baseline that matches the node; null when the server has no firmware area */
  firmware?: NodeCompliance | null;
  flash?: { ok?: string | null; error?: string | null };
  /** the last lines of the serial console and the boot they belong to; null when nothing was captured */
  console?: { lines: string[]; bootAt: Date | null } | null;
}

const bytes = (n: number | undefined) => (n === undefined ? '—' : n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(1)} GiB` : `${Math.round(n / 2 ** 20)} MiB`);

const POWER_ACTIONS = ['on', 'off', 'cycle', 'reset', 'soft'] as const;
const LIFECYCLE_ACTIONS = [
  ['maintenance-on', 'Maintenance on'],
  ['maintenance-off', 'Maintenance off'],
  ['rebuild', 'Rebuild'],
  ['quarantine', 'Quarantine'],
  ['fail', 'Mark failed'],
] as const;

function Actions({ node, csrf, canOperate, isAdmin, power, bmc }: Pick<NodeView, 'node' | 'csrf' | 'canOperate' | 'isAdmin' | 'power' | 'bmc'>) {
  if (!canOperate) return <p class="muted" id="actions-readonly">Power and lifecycle actions need the operator role.</p>;
  if (!csrf) return <p class="muted">Actions are available in a dashboard session (log in at /ui/login).</p>;
  return (
    <>
      {power && bmc ? (
        <form class="act" id="power" method="post" action={`/ui/nodes/${node.uuid}/power`}>
          <CsrfField token={csrf} />
          <label>
            Power action
            <select name="action">{POWER_ACTIONS.map((a) => <option value={a}>{a}</option>)}</select>
          </label>
          <label>
            Next boot
            <select name="bootdev">
              <option value="">unchanged</option>
              <option value="pxe">pxe</option>
              <option value="disk">disk</option>
            </select>
          </label>
          <button type="submit">Send to BMC</button>
        </form>
      ) : (
        <p class="muted" id="power-none">{bmc ? 'Power control is not available on this server.' : 'No BMC enrolled: power actions need one (PUT /api/v1/nodes/{uuid}/bmc).'}</p>
      )}
      <form class="act" id="lifecycle" method="post" action={`/ui/nodes/${node.uuid}/actions`}>
        <CsrfField token={csrf} />
        <label>
          Reason
          <input name="reason" size={32} maxlength={1024} placeholder="why (kept in the timeline)" />
        </label>
        {LIFECYCLE_ACTIONS.map(([a, text]) => (
          <button type="submit" name="action" value={a}>{text}</button>
        ))}
        {isAdmin && <button type="submit" name="action" value="retire">Retire</button>}
      </form>
    </>
  );
}

function Hardware({ f }: { f: Partial<Facts> }) {
  const cpu = f.cpu;
  return (
    <dl id="hardware">
      <dt>System</dt>
      <dd>{[f.system?.manufacturer, f.system?.product, f.system?.version].filter(Boolean).join(' ') || '—'}</dd>
      <dt>Baseboard</dt>
      <dd>{[f.baseboard?.manufacturer, f.baseboard?.product].filter(Boolean).join(' ') || '—'}</dd>
      <dt>CPU</dt>
      <dd>{cpu ? `${cpu.model ?? '?'} · ${cpu.sockets ?? '?'} socket(s), ${cpu.cores ?? '?'} cores, ${cpu.threads ?? '?'} threads` : '—'}</dd>
      <dt>Memory</dt>
      <dd>{bytes(f.memory?.totalBytes)}</dd>
      <dt>Disks</dt>
      <dd>{f.disks?.length ? f.disks.map((d) => `${d.name} ${bytes(d.sizeBytes)}${d.model ? ` ${d.model}` : ''}`).join(', ') : '—'}</dd>
      <dt>BMC (facts)</dt>
      <dd>{f.bmc ? `${f.bmc.ipAddress ?? '?'} ${f.bmc.macAddress ?? ''}` : '—'}</dd>
    </dl>
  );
}

/** One row per NIC: from the facts when there are any (with the LLDP neighbour on that interface), else from
 * the interfaces the server learned (DHCP, registration). */
function Nics({ f, interfaces }: { f: Partial<Facts>; interfaces: InterfaceRow[] }) {
  const lldp = new Map<string, LldpNeighbor>((f.lldp ?? []).map((n) => [n.interface, n]));
  const nics: NicFacts[] = f.nics ?? [];
  return (
    <table id="nics">
      <thead>
        <tr><th>MAC</th><th>Name</th><th>Driver / firmware</th><th>Link</th><th>Switch (LLDP)</th><th>Port</th><th>VLAN</th></tr>
      </thead>
      <tbody>
        {nics.length
          ? nics.map((n) => {
              const nb = lldp.get(n.name);
              return (
                <tr data-mac={n.mac}>
                  <td class="mono">{n.mac}{n.boot ? ' (boot)' : ''}</td>
                  <td>{n.name}</td>
                  <td>{[n.driver, n.firmwareVersion].filter(Boolean).join(' ')}</td>
                  <td>{n.link === undefined ? '—' : n.link ? `up${n.speedMbps ? ` ${n.speedMbps} Mb/s` : ''}` : 'down'}</td>
                  <td>{nb ? `${nb.systemName ?? nb.chassisId ?? '?'}` : '—'}</td>
                  <td>{nb ? [nb.portId, nb.portDescription].filter(Boolean).join(' · ') : '—'}</td>
                  <td>{nb?.vlan ?? '—'}</td>
                </tr>
              );
            })
          : interfaces.map((i) => (
              <tr data-mac={i.mac}>
                <td class="mono">{i.mac}</td>
                <td>{i.name ?? ''}</td>
                <td>{[i.driver, i.firmwareVersion].filter(Boolean).join(' ')}</td>
                <td>—</td>
                <td>{i.switchName ?? i.switchChassis ?? '—'}</td>
                <td>{i.switchPortDescription ?? i.switchPort ?? '—'}</td>
                <td>—</td>
              </tr>
            ))}
      </tbody>
    </table>
  );
}

function Firmware({ f, compliance }: { f: Partial<Facts>; compliance?: NodeCompliance | null }) {
  const b = compliance?.baseline;
  return (
    <>
      <dl id="firmware">
        <dt>BIOS</dt>
        <dd>{f.bios ? `${f.bios.vendor ?? ''} ${f.bios.version ?? ''} (${f.bios.releaseDate ?? '?'})` : '—'}</dd>
        <dt>BMC firmware</dt>
        <dd>{f.bmc?.firmwareVersion ?? '—'}</dd>
        <dt>NIC firmware</dt>
        <dd>{(f.nics ?? []).filter((n) => n.firmwareVersion).map((n) => `${n.name}: ${n.firmwareVersion}`).join(', ') || '—'}</dd>
        <dt>Compliance</dt>
        <dd id="firmware-state">
          {compliance ? <><span class={`pill fw-${compliance.state}`}>{compliance.state}</span> {b ? `baseline ${b.name} v${b.version} (${b.policy})` : 'no baseline matches this model'}</> : '—'}{' '}
          <a href="/ui/firmware">fleet report</a>
        </dd>
      </dl>
      {compliance && compliance.components.length > 0 && (
        <table id="firmware-components">
          <thead>
            <tr><th>Component</th><th>Current → required</th><th>Status</th></tr>
          </thead>
          <tbody>
            {compliance.components.map((c) => (
              <tr data-component={c.component} data-state={c.status}>
                <td>{c.component}{c.devices.length > 0 && <> <small>{c.devices.join(' ')}</small></>}</td>
                <td class="change">{`${c.current ?? 'unknown'} → ${c.required}`}{c.detail && <div class="detail">{c.detail}</div>}</td>
                <td><span class={`pill fw-${c.status}`}>{c.status}</span></td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

/** What the compute OS last reported it can host (issue 16 item 2): capacity and guests. */
function Hypervisor({ node, now }: { node: NodeRow; now: Date }) {
  const h = node.hypervisor;
  if (!h) return <p class="muted" id="hypervisor">not reported (the compute OS reports it in its heartbeats)</p>;
  return (
    <>
      <dl id="hypervisor">
        <dt>Capacity</dt><dd>{describeCapacity(h)}</dd>
        <dt>CPUs</dt><dd>{h.cpus}</dd>
        <dt>Memory</dt><dd>{h.memoryMiB} MiB</dd>
        <dt>KVM</dt><dd class={h.kvm ? '' : 'warn'}>{h.kvm ? 'usable' : `not usable${h.kvmDetail ? `: ${h.kvmDetail}` : ''}`}</dd>
        <dt>QEMU</dt><dd>{h.qemu?.version ?? 'none'}</dd>
        <dt>Reported</dt><dd>{ago(node.hypervisorAt, now)}</dd>
      </dl>
      {h.guests.length > 0 && (
        <table id="guests">
          <thead>
            <tr><th>Guest</th><th>Status</th><th>vCPUs</th><th>Memory</th></tr>
          </thead>
          <tbody>
            {h.guests.map((g) => (
              <tr><td class="mono">{g.name}</td><td>{g.status}</td><td>{g.vcpus ?? '—'}</td><td>{g.memoryMiB ? `${g.memoryMiB} MiB` : '—'}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function NodePage(v: NodeView) {
  const { node, facts, now, bmc } = v;
  const f = (facts?.facts ?? {}) as Partial<Facts>;
  return (
    <Page title={node.hostname ?? node.uuid} viewer={v.viewer}>
      <Flash ok={v.flash?.ok} error={v.flash?.error} />
      <dl id="summary">
        <dt>UUID</dt><dd class="mono">{node.uuid}</dd>
        <dt>State</dt>
        <dd><StatePill state={node.state} /> {node.stateReason ?? ''} <span class="muted">({ago(node.stateSince, now)})</span></dd>
        <dt>Model</dt><dd>{[node.manufacturer, node.product].filter(Boolean).join(' ') || '—'}</dd>
        <dt>Serial</dt><dd class="mono">{node.serial ?? '—'}</dd>
        <dt>Image</dt>
        <dd>{node.imageName ? `${node.imageName}@${node.imageVersion}` : '—'} <span class="mono muted">{node.kernelDigest?.slice(0, 12) ?? ''}</span></dd>
        <dt>Last heartbeat</dt><dd>{ago(node.lastHeartbeat, now)}</dd>
        <dt>Rebuild attempts</dt><dd>{node.rebuildAttempts}</dd>
        <dt>BMC</dt><dd>{bmc ? `${bmc.driver} ${bmc.address}${bmc.port ? `:${bmc.port}` : ''} as ${bmc.username}` : 'none enrolled'}</dd>
        <dt>Labels</dt><dd class="mono" id="labels">{labelText(node.labels) || '—'}</dd>
        <dt>Facts</dt>
        <dd>
          <a href={`/api/v1/nodes/${node.uuid}`}>JSON</a>{' '}
          {facts && <span class="muted">{`collected ${ago(facts.collectedAt, now)}; ${(facts.failures as unknown[]).length} probe failure(s)`}</span>}
        </dd>
      </dl>
      {v.conflicts.length > 0 && (
        <>
          <h2 class="warn">Identity conflicts</h2>
          <ul>
            {v.conflicts.map((x) => (
              <li class="warn">{x.kind} <code>{x.value}</code> is also claimed by <a href={`/ui/nodes/${x.otherUuid}`}>{x.otherUuid}</a></li>
            ))}
          </ul>
        </>
      )}
      <h2>Actions</h2>
      <Actions node={node} csrf={v.csrf} canOperate={v.canOperate} isAdmin={v.isAdmin} power={v.power} bmc={bmc} />
      <h2>Hardware</h2>
      <Hardware f={f} />
      <h2>Hypervisor</h2>
      <Hypervisor node={node} now={now} />
      <h2>Network interfaces</h2>
      <Nics f={f} interfaces={v.interfaces} />
      <h2>Firmware</h2>
      <Firmware f={f} compliance={v.firmware} />
      <h2>Timeline</h2>
      <table id="timeline">
        <thead>
          <tr><th>Time</th><th>Kind</th><th>Change</th><th>Actor</th><th>Reason</th></tr>
        </thead>
        <tbody>
          {v.events.map((e) => (
            <tr data-kind={e.kind} data-id={String(e.id)}>
              <td class="mono">{isoMinute(e.at)}{e.count > 1 ? ` (×${e.count})` : ''}</td>
              <td>{e.kind}</td>
              <td>{e.toState ? <>{e.fromState ?? '∅'} → <StatePill state={e.toState} /></> : ''}</td>
              <td>{e.actor}</td>
              <td>{e.reason ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {v.moreEvents && <p class="muted" id="timeline-more">Older events: <a href={`/api/v1/nodes/${node.uuid}/events`}>the events API</a>.</p>}
      <h2>Console</h2>
      {v.console?.lines.length ? (
        <>
          <p class="muted" id="console-boot">
            Boot of {v.console.bootAt ? isoMinute(v.console.bootAt) : '—'}; the whole capture: <a href={`/api/v1/nodes/${node.uuid}/console`}>the console API</a> or <code>bootfarm nodes console {node.uuid} --follow</code>.
          </p>
          <pre class="console" id="console">{v.console.lines.join('\n')}</pre>
        </>
      ) : (
        <pre class="console" id="console">no console captured</pre>
      )}
    </Page>
  );
}

export const renderNodePage = (v: NodeView) => documentOf(<NodePage {...v} />);
