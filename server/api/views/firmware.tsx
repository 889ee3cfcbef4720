// /ui/firmware: fleet firmware compliance — bars per model and per component, the filter form and the table of
// what is not compliant. Data comes from server/domain/firmware-report.ts; the route is in server/api/firmware.ts.
import { NODE_FIRMWARE_STATES } from '../../contract/firmware.ts';
import type { SummaryBucket } from '../../domain/firmware.ts';
import type { FirmwareReportData } from '../../domain/firmware-report.ts';
import { documentOf, Page, StackedBar, type Viewer } from './layout.tsx';

const STATE_ORDER = ['compliant', 'updating', 'outdated', 'failed', 'unknown', 'unmanaged'] as const;

function Bar({ b, kind }: { b: SummaryBucket; kind: 'model' | 'component' }) {
  const present = STATE_ORDER.filter((s) => b.counts[s] > 0);
  return (
    <div class="bar-row" {...{ [`data-${kind}`]: b.key }}>
      <div class="bar-label">{b.key}</div>
      <StackedBar label={`${b.percentCompliant}% compliant`} segments={present.map((s) => ({ key: s, count: b.counts[s], cls: `seg fw-${s}`, title: `${b.counts[s]} ${s}`, data: { state: s } }))} />
      <div class="bar-text">
        {`${b.percentCompliant}% compliant (${b.counts.compliant} of ${b.total})`} <span class="legend">{present.map((s) => `${b.counts[s]} ${s}`).join(' · ')}</span>
      </div>
    </div>
  );
}

function queryString(filters: FirmwareReportData['filters'], extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  if (filters.state?.length) p.set('state', filters.state.join(','));
  if (filters.label && Object.keys(filters.label).length) p.set('label', Object.entries(filters.label).map(([k, v]) => `${k}=${v}`).join(','));
  if (filters.model) p.set('model', filters.model);
  if (filters.component) p.set('component', filters.component);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** cabling beside firmware (issue 16 item 5): compliant, failed (warn|block) or unplanned */
const cablingText = (r: FirmwareReportData['nodes'][number]) => (r.cabling?.status === 'failed' ? `failed (${r.cabling.policy})` : (r.cabling?.status ?? 'unplanned'));

function CablingPill({ r }: { r: FirmwareReportData['nodes'][number] }) {
  const c = r.cabling;
  const status = c?.status ?? 'unplanned';
  const cls = status === 'compliant' ? 'fw-compliant' : status === 'failed' ? (c?.action === 'block' ? 'fw-failed' : 'fw-outdated') : 'fw-unmanaged';
  return <span class={`pill ${cls}`} title={c?.reason ?? ''} data-cabling={status}>{status === 'failed' ? `failed (${c?.policy})` : status}</span>;
}

/** every node whose cabling check failed, whatever its firmware: what is wrong, port by port */
function CablingRows({ report }: { report: FirmwareReportData }) {
  const bad = report.nodes.filter((r) => r.cabling?.status === 'failed');
  if (!bad.length) return <p id="cabling-good" class="meta">No node shown has a cabling problem.</p>;
  return (
    <table id="cabling">
      <thead>
        <tr><th>Node</th><th>Node state</th><th>Plan</th><th>Cabling</th><th>Problems</th></tr>
      </thead>
      <tbody>
        {bad.map((r) => (
          <tr data-uuid={r.uuid} data-cabling={r.cabling!.action}>
            <td class="node" title={r.uuid}>{r.hostname ?? r.uuid}</td>
            <td>{r.nodeState}</td>
            <td>{r.cabling!.plan ? `${r.cabling!.plan.scope} ${r.cabling!.plan.key}` : '—'}</td>
            <td><CablingPill r={r} /></td>
            <td class="note">{r.cabling!.reason?.replace(/^cabling: /, '')}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Rows({ report }: { report: FirmwareReportData }) {
  const bad = report.nodes.filter((r) => r.compliance.state !== 'compliant');
  return (
    <>
      {bad.flatMap((r) => {
        const links = (
          <td>
            <a class="facts" href={`/api/v1/nodes/${encodeURIComponent(r.uuid)}`}>facts</a> · <a class="timeline" href={`/api/v1/nodes/${encodeURIComponent(r.uuid)}/events`}>timeline</a>
          </td>
        );
        const b = r.compliance.baseline;
        const head = (
          <>
            <td class="node" title={r.uuid}>{r.hostname ?? r.uuid}</td>
            <td>{r.model}</td>
            <td>{r.nodeState}</td>
            <td>{b ? `${b.name} v${b.version} (${b.policy})` : '—'}</td>
            <td class="cabling" data-cabling={r.cabling?.status ?? 'unplanned'} title={r.cabling?.reason ?? ''}>{cablingText(r)}</td>
            {/* from the latest facts, whether or not the baseline requires it (issue 19); — : not reported */}
            <td class="secure-boot" data-secure-boot={r.secureBoot ?? 'not-reported'}>{r.secureBoot ?? '—'}</td>
          </>
        );
        if (r.compliance.state === 'unmanaged')
          return [
            <tr data-uuid={r.uuid} data-state="unmanaged">
              {head}
              <td>—</td>
              <td class="note">no baseline matches this model</td>
              <td><span class="pill fw-unmanaged">unmanaged</span></td>
              {links}
            </tr>,
          ];
        return r.compliance.components
          .filter((c) => c.status !== 'compliant')
          .map((c) => (
            <tr data-uuid={r.uuid} data-component={c.component} data-state={c.status}>
              {head}
              <td>{c.component}{c.devices.length > 0 && <> <small>{c.devices.join(' ')}</small></>}</td>
              <td class="change">
                <span class="current">{c.current ?? 'unknown'}</span> → <span class="required">{c.required}</span>
                {c.detail && <div class="detail">{c.detail}</div>}
              </td>
              <td><span class={`pill fw-${c.status}`}>{c.status}</span></td>
              {links}
            </tr>
          ));
      })}
    </>
  );
}

export function FirmwarePage({ report, options, viewer }: { report: FirmwareReportData; options: { models: string[]; components: string[] }; viewer?: Viewer | null }) {
  const s = report.summary;
  const f = report.filters;
  const bad = report.nodes.filter((r) => r.compliance.state !== 'compliant');
  const stateNow = f.state?.length === 1 ? f.state[0] : undefined;
  const Option = ({ value, current }: { value: string; current: string | undefined }) => <option value={value} selected={current === value}>{value}</option>;
  return (
    <Page title="Firmware compliance" viewer={viewer}>
      <div class="meta">
        Generated {report.generatedAt} · <a href={`/api/v1/reports/firmware${queryString(f)}`}>JSON</a> · <a id="csv" href={`/api/v1/reports/firmware${queryString(f, { format: 'csv' })}`}>CSV</a>
      </div>
      <p>
        <span class="big" id="fleet-percent">{`${s.percentCompliant}%`}</span> of <span id="fleet-total">{s.total}</span> nodes compliant
      </p>
      <div class="keys">
        {STATE_ORDER.map((st) => (
          <span><i class={`fw-${st}`}></i>{`${st} ${s.counts[st]}`}</span>
        ))}
      </div>
      <form class="filters" method="get" action="/ui/firmware">
        <label>State<select name="state"><option value="">any</option>{NODE_FIRMWARE_STATES.map((st) => <Option value={st} current={stateNow} />)}</select></label>
        <label>Model<select name="model"><option value="">any</option>{options.models.map((m) => <Option value={m} current={f.model} />)}</select></label>
        <label>Component<select name="component"><option value="">any</option>{options.components.map((c) => <Option value={c} current={f.component} />)}</select></label>
        <label>Labels (k=v,…)<input name="label" value={f.label ? Object.entries(f.label).map(([k, v]) => `${k}=${v}`).join(',') : ''} /></label>
        <button type="submit">Filter</button> <a href="/ui/firmware">reset</a>
      </form>
      <h2>By model</h2>
      <section id="by-model">{s.byModel.length ? s.byModel.map((b) => <Bar b={b} kind="model" />) : <p class="meta">No nodes.</p>}</section>
      <h2>By component</h2>
      <section id="by-component">{s.byComponent.length ? s.byComponent.map((b) => <Bar b={b} kind="component" />) : <p class="meta">No managed components.</p>}</section>
      <h2>Not compliant <span class="meta">{`(${bad.length} node${bad.length === 1 ? '' : 's'})`}</span></h2>
      {bad.length ? (
        <table id="noncompliant">
          <thead>
            <tr><th>Node</th><th>Model</th><th>Node state</th><th>Baseline</th><th>Cabling</th><th>Secure Boot</th><th>Component</th><th>Current → required</th><th>Status</th><th>Links</th></tr>
          </thead>
          <tbody><Rows report={report} /></tbody>
        </table>
      ) : (
        <p id="all-good">Every node shown is compliant.</p>
      )}
      <h2>Cabling <span class="meta">(planned NIC → switch port against the LLDP neighbours seen at registration)</span></h2>
      <CablingRows report={report} />
    </Page>
  );
}

export const renderFirmwarePage = (props: Parameters<typeof FirmwarePage>[0]) => documentOf(<FirmwarePage {...props} />);
