import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DhcpConfigSchema } from '../boot/dhcp/config.ts';
import { MemoryLeaseStore } from '../boot/dhcp/leases.ts';
import { MessageType } from '../boot/dhcp/packet.ts';
import { createResponder } from '../boot/dhcp/responder.ts';
import { FixedBackend, request } from '../test/support/dhcp/fakes.ts';
import { registerDhcpMetrics } from './dhcp-metrics.ts';

describe('DHCP metrics', () => {
  it('the spoofing counters reach /metrics at scrape time', async () => {
    const config = DhcpConfigSchema.parse({ mode: 'full', interface: 'x', serverIp: '10.0.0.1', httpBase: 'http://10.0.0.1', pools: [{ subnet: '10.0.0.0/24', range: { start: '10.0.0.10', end: '10.0.0.20' } }] });
    const r = createResponder({ config, backend: new FixedBackend(), leases: new MemoryLeaseStore() });
    const registry = new Registry();
    registerDhcpMetrics(registry, r.stats);
    const p = request({ type: MessageType.RELEASE, mac: '02:00:00:00:00:01', ciaddr: '10.0.0.10' });
    p.hlen = 0;
    await r.handle(p, { on: 'dhcp', from: { address: '0.0.0.0', port: 68 } });
    const text = await registry.metrics();
    expect(text).toMatch(/^bootfarm_dhcp_bad_hlen_dropped 1$/m);
    expect(text).toMatch(/^bootfarm_dhcp_reserved_declines_refused 0$/m);
  });
});
