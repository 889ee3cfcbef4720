// The collect path against real lldpd peers in two network namespaces this test creates and deletes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnExec, type Exec } from '../exec.ts';
import { captureLldp } from './lldp-capture.ts';
import { startLldpPeers, type LldpPeers } from '../../test/support/agent/lldp-peers.ts';
import { collectLldp } from './lldp.ts';
import { until } from '../../test/harness/wait.ts';

describe('collectLldp with real lldpd peers', () => {
  let peers: LldpPeers;
  beforeAll(() => {
    peers = startLldpPeers({ nameA: 'leaf-sw01.live', nameB: 'node-live' });
  });
  afterAll(() => peers?.stop());

  it('sees the switch from the node side within the first transmit rounds', async () => {
    const exec = spawnExec();
    let found: Awaited<ReturnType<typeof collectLldp>> = [];
    // lldpd needs its socket up and one transmit round (~4 s with tx-interval 5, FACTS.md); poll, do not sleep blindly
    await until('lldpd to see the switch', async () => (found = await collectLldp(exec, { socket: peers.sockB }).catch(() => [])).length > 0, { limitMs: 60_000, pollMs: 250 });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ interface: peers.ifB, systemName: 'leaf-sw01.live', portIdSubtype: 'mac', ttl: 20 });
  });

  it('captures and decodes the switch\'s LLDPDU off the wire with tcpdump, like lldpd does', async () => {
    // the agent's exec, run inside the node's namespace (on a node it is simply the host's)
    const base = spawnExec();
    const inNodeNs: Exec = (cmd, args, opts) => base('ip', ['netns', 'exec', peers.nsB, cmd, ...args], opts);
    const { neighbors: found, failures } = await captureLldp(inNodeNs, [peers.ifB], { seconds: 15 });
    expect(failures).toEqual([]);
    expect(found).toHaveLength(1);
    const viaLldpd = (await collectLldp(base, { socket: peers.sockB }))[0]!;
    expect(found[0]).toEqual({
      interface: peers.ifB,
      chassisId: viaLldpd.chassisId,
      chassisIdSubtype: 'mac',
      portId: viaLldpd.portId,
      portIdSubtype: 'mac',
      ttl: 20,
      systemName: 'leaf-sw01.live',
      systemDescription: viaLldpd.systemDescription,
      portDescription: viaLldpd.portDescription,
      managementAddresses: viaLldpd.managementAddresses ?? expect.anything(),
    });
  });

  it('hears nothing on a silent interface within the wait, which is no error', async () => {
    const base = spawnExec();
    const inNodeNs: Exec = (cmd, args, opts) => base('ip', ['netns', 'exec', peers.nsB, cmd, ...args], opts);
    expect(await captureLldp(inNodeNs, ['lo'], { seconds: 1 })).toEqual({ neighbors: [], failures: [] });
  });

  it('reports a clear error when no lldpd listens on the socket', async () => {
    await expect(collectLldp(spawnExec(), { socket: '/nonexistent/lldpd.socket' })).rejects.toThrow(/lldpcli.*exit/);
  });
});
