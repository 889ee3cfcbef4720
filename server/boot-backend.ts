// server/'s side of the BootBackend seam: DHCP asks "who is this MAC?" and gets what the registry knows.
// An unknown MAC is an outcome (null), not an error; a retired node is known but gets no answer.
import type { BootBackend, DhcpHost } from '../boot/backend.ts';
import type { NodeStore } from './store/nodes.ts';

export function createBootBackend({ nodes }: { nodes: Pick<NodeStore, 'byMac'> }): BootBackend {
  return {
    async dhcpHost(mac: string): Promise<DhcpHost | null> {
      const node = await nodes.byMac(mac.toLowerCase());
      if (!node) return null;
      const hostname = node.hostname ?? node.labels['bootfarm.io/hostname'];
      const ipv4 = node.labels['bootfarm.io/ipv4'];
      return { mac, allowBoot: node.state !== 'retired', ...(hostname ? { hostname } : {}), ...(ipv4 ? { ipv4 } : {}) };
    },
  };
}
