// DHCPv6 metrics: the responder's counters reach /metrics, moved by exactly what a Rapid Commit exchange did.
import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { Dhcp6ConfigSchema } from '../boot/dhcp6/config.ts';
import { MemoryLease6Store } from '../boot/dhcp6/leases.ts';
import { createResponder6 } from '../boot/dhcp6/responder.ts';
import { FixedBackend } from '../test/support/dhcp/fakes.ts';
import { MsgType, duidLlOf, msg6 } from '../test/support/dhcp/fakes6.ts';
import { registerDhcp6Metrics } from './dhcp6-metrics.ts';

it('a bound lease, a released one and an ignored message show up as labelled counters', async () => {
  const config = Dhcp6ConfigSchema.parse({ interface: 'x', serverAddress: 'fd5b::1', httpBase: 'http://[fd5b::1]', pools: [{ prefix: 'fd5b::/64', range: { start: 'fd5b::10', end: 'fd5b::10' } }] });
  const serverDuid = duidLlOf('02:bf:00:00:00:fe');
  const r = createResponder6({ config, serverDuid, backend: new FixedBackend([]), leases: new MemoryLease6Store() });
  const registry = new Registry();
  registerDhcp6Metrics(registry, r);
  const from = { from: { address: 'fe80::1%x', port: 546 } };
  const duid = duidLlOf('02:bf:00:00:00:01');
  await r.handle(msg6({ type: MsgType.SOLICIT, duid, rapidCommit: true, ias: [{ iaid: 1 }] }), from);
  await r.handle(msg6({ type: MsgType.RELEASE, duid, serverDuid, ias: [{ iaid: 1, addrs: ['fd5b::10'] }] }), from);
  await r.handle(msg6({ type: MsgType.ADVERTISE, duid }), from);
  const text = await registry.metrics();
  expect(text).toMatch(/^bootfarm_dhcp6_messages_total\{event="received"\} 3$/m);
  expect(text).toMatch(/^bootfarm_dhcp6_messages_total\{event="replied"\} 2$/m);
  expect(text).toMatch(/^bootfarm_dhcp6_messages_total\{event="ignored"\} 1$/m);
  expect(text).toMatch(/^bootfarm_dhcp6_lease_events_total\{event="bound"\} 1$/m);
  expect(text).toMatch(/^bootfarm_dhcp6_lease_events_total\{event="released"\} 1$/m);
  expect(text).toMatch(/^bootfarm_dhcp6_lease_failures_total\{reason="pool_exhausted"\} 0$/m);
});
