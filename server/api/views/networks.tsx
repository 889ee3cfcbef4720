// /ui/networks: the IPAM networks (issue 16 item 1) with their pools and how full they are, and every address held:
// allocated, reserved, or in conflict (another device answered for it; it stays out of the pool until an operator
// releases it with `bootfarm ipam release`). Read only: changes go through the API and the CLI, which audit them.
import { Page, documentOf, type Viewer } from './layout.tsx';

export interface NetworkRowView {
  name: string;
  cidr: string;
  gateway: string | null;
  vlan: number | null;
  dns: string[];
  pool: { start: string; end: string };
  usage: { size: string; used: string; free: string; conflict: number };
}

export interface AllocationRowView {
  network: string;
  address: string;
  node: string | null;
  interface: string | null;
  mac: string | null;
  reserved: boolean;
  state: string;
  note: string | null;
}

export interface NetworksView {
  viewer: Viewer | null;
  networks: NetworkRowView[];
  allocations: AllocationRowView[];
}

const kindOf = (a: AllocationRowView) => (a.state === 'conflict' ? 'conflict' : a.reserved ? 'reserved' : 'allocated');

export function NetworksPage({ viewer, networks, allocations }: NetworksView) {
  const conflicts = allocations.filter((a) => a.state === 'conflict').length;
  return (
    <Page title="Networks" viewer={viewer}>
      {networks.length === 0 ? (
        <p class="muted" id="no-networks">No networks yet: <code>bootfarm networks add NAME --cidr 10.20.0.0/24 --gateway 10.20.0.1</code>.</p>
      ) : (
        <table class="networks">
          <thead>
            <tr><th>Network</th><th>CIDR</th><th>Gateway</th><th>VLAN</th><th>DNS</th><th>Pool</th><th>Used</th><th>Free</th><th>Conflicts</th></tr>
          </thead>
          <tbody>
            {networks.map((n) => (
              <tr data-network={n.name}>
                <td>{n.name}</td>
                <td class="mono">{n.cidr}</td>
                <td class="mono">{n.gateway ?? '—'}</td>
                <td>{n.vlan ?? '—'}</td>
                <td class="mono">{n.dns.join(', ') || '—'}</td>
                <td class="mono">{`${n.pool.start} – ${n.pool.end}`}</td>
                <td>{n.usage.used}</td>
                <td>{n.usage.free}</td>
                <td>{n.usage.conflict}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h2>Addresses {conflicts > 0 && <span class="muted">{`(${conflicts} in conflict)`}</span>}</h2>
      <table class="allocations">
        <thead>
          <tr><th>Network</th><th>Address</th><th>Node or MAC</th><th>Interface</th><th>Kind</th><th>Note</th></tr>
        </thead>
        <tbody>
          {allocations.map((a) => (
            <tr data-kind={kindOf(a)}>
              <td>{a.network}</td>
              <td class="mono">{a.address}</td>
              <td class="mono">{a.node ? <a href={`/ui/nodes/${a.node}`}>{a.node}</a> : a.mac ? `MAC ${a.mac}` : '—'}</td>
              <td>{a.interface ?? '—'}</td>
              <td>{kindOf(a)}</td>
              <td>{a.note ?? ''}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Page>
  );
}

export const renderNetworksPage = (v: NetworksView) => documentOf(<NetworksPage {...v} />);
