// /ui: the fleet — counts per state, the circuit-breaker banner, and one keyset page of the node table, filtered
// by state and labels on the server (server/api/ui.ts reads the query; the store pages by UUID).
import { NODE_STATES } from '../../contract/lifecycle.ts';
import type { NodeRow } from '../../store/nodes.ts';
import { ago, documentOf, labelText, Page, StackedBar, StatePill, type Viewer } from './layout.tsx';

export interface FleetFilters {
  state?: string[];
  label?: Record<string, string>;
  limit?: number;
}

export interface FleetView {
  viewer: Viewer | null;
  counts: Record<string, number>;
  filters: FleetFilters;
  /** nodes matching the filters (all pages) */
  matching: number;
  page: { nodes: NodeRow[]; next: string | null; prev: string | null };
  breaker?: { open: boolean; reason: string | null; openedAt: Date | null } | null;
  now: Date;
}

/** /ui?… for these filters plus a cursor: the pager and the state links keep what the operator chose. */
export function fleetHref(f: FleetFilters, extra: Record<string, string> = {}): string {
  const p = new URLSearchParams();
  if (f.state?.length) p.set('state', f.state.join(','));
  if (f.label && Object.keys(f.label).length) p.set('label', Object.entries(f.label).map(([k, v]) => `${k}=${v}`).join(','));
  if (f.limit) p.set('limit', String(f.limit));
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `/ui?${s}` : '/ui';
}

export function FleetPage({ viewer, counts, filters, matching, page, breaker, now }: FleetView) {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const states = NODE_STATES.filter((s) => counts[s]);
  const oneState = filters.state?.length === 1 ? filters.state[0] : undefined;
  const labelValue = filters.label ? Object.entries(filters.label).map(([k, v]) => `${k}=${v}`).join(',') : '';
  const filtered = !!(filters.state?.length || labelValue);
  return (
    <Page title="Fleet" viewer={viewer}>
      {breaker?.open && (
        <p id="degraded" class="alert" role="alert">
          <strong>Fleet degraded: automatic repair is stopped</strong> since {breaker.openedAt ? new Date(breaker.openedAt).toISOString() : '?'}: {breaker.reason}. An operator resumes it:{' '}
          <code>bootfarm fleet resume</code>.
        </p>
      )}
      <p id="total">{`${total} nodes`}</p>
      <StackedBar label="nodes by state" segments={states.map((s) => ({ key: s, count: counts[s]!, cls: `st-${s}`, title: `${s}: ${counts[s]}`, data: { state: s } }))} />
      <div class="legend" id="counts">
        {states.map((s) => (
          <span data-state={s}>
            <a href={fleetHref({ ...filters, state: [s] })}>{s}</a> {counts[s]}
          </span>
        ))}
      </div>
      <form class="filters" method="get" action="/ui" id="filters">
        <label>
          State
          <select name="state">
            <option value="">any</option>
            {NODE_STATES.map((s) => (
              <option value={s} selected={s === oneState}>{`${s} (${counts[s] ?? 0})`}</option>
            ))}
          </select>
        </label>
        <label>
          Labels (k=v,…)
          <input name="label" value={labelValue} placeholder="rack=r7,role=hv" />
        </label>
        <button type="submit">Filter</button> <a href="/ui">reset</a>
      </form>
      <h2>{filtered ? `Nodes: ${[filters.state?.join(', '), labelValue].filter(Boolean).join(' · ')}` : 'Nodes'}</h2>
      <p class="muted" id="matching">{`${matching} matching · ${page.nodes.length} on this page`}</p>
      <table id="nodes">
        <thead>
          <tr><th>Node</th><th>State</th><th>Since</th><th>Model</th><th>Serial</th><th>Image</th><th>Heartbeat</th><th>Labels</th></tr>
        </thead>
        <tbody>
          {page.nodes.map((n) => (
            <tr data-uuid={n.uuid} data-state={n.state}>
              <td><a href={`/ui/nodes/${n.uuid}`}>{n.hostname ?? n.uuid}</a></td>
              <td>
                <StatePill state={n.state} />
                {n.stateReason && <div class="muted">{n.stateReason}</div>}
              </td>
              <td>{ago(n.stateSince, now)}</td>
              <td>{[n.manufacturer, n.product].filter(Boolean).join(' ') || '—'}</td>
              <td class="mono">{n.serial ?? '—'}</td>
              <td>{n.imageName ? `${n.imageName}@${n.imageVersion ?? '?'}` : '—'}</td>
              <td>{ago(n.lastHeartbeat, now)}</td>
              <td class="mono">{labelText(n.labels)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="pager">
        {page.prev ? <a id="prev" rel="prev" href={fleetHref(filters, { before: page.prev })}>← previous</a> : <span class="muted">← previous</span>}
        {page.next ? <a id="next" rel="next" href={fleetHref(filters, { after: page.next })}>next →</a> : <span class="muted">next →</span>}
      </div>
    </Page>
  );
}

export const renderFleetPage = (v: FleetView) => documentOf(<FleetPage {...v} />);
