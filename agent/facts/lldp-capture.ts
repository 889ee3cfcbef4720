// LLDP without lldpd: listen on the wire for one LLDPDU per interface with tcpdump and decode it ourselves
// (lldp-tlv.ts). Switches send every 30 s by default (802.1AB msgTxInterval), so this waits up to
// `seconds` on all interfaces at once; an interface that hears nothing is simply absent, not a failure.
import type { LldpNeighbor } from '../../server/contract/facts.ts';
import type { Exec } from '../exec.ts';
import { ExecError } from '../exec.ts';
import { decodeLldpFrame, frameToNeighbor, parseTcpdumpHex } from './lldp-tlv.ts';

export async function captureLldp(
  exec: Exec,
  ifaces: string[],
  { seconds = 35 } = {},
): Promise<{ neighbors: LldpNeighbor[]; failures: Array<{ iface: string; error: unknown }> }> {
  const settled = await Promise.allSettled(
    ifaces.map(async (iface) => {
      // -Q in: only what the switch sent, not our own frames; -l: flush the line before tcpdump exits
      const r = await exec('tcpdump', ['-i', iface, '-Q', 'in', '-c', '1', '-l', '-n', '-xx', 'ether', 'proto', '0x88cc'], { timeoutMs: seconds * 1000 });
      if (r.timedOut && !r.stdout.trim()) return [];
      if (!r.timedOut && r.exitCode !== 0) throw new ExecError(r);
      return parseTcpdumpHex(r.stdout).map((f) => frameToNeighbor(iface, decodeLldpFrame(f)));
    }),
  );
  const neighbors: LldpNeighbor[] = [];
  const failures: Array<{ iface: string; error: unknown }> = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') neighbors.push(...s.value);
    else failures.push({ iface: ifaces[i]!, error: s.reason });
  });
  return { neighbors, failures };
}
