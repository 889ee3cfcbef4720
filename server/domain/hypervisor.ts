// How a node's hypervisor capacity (issue 16 item 2; contract HypervisorCapacity, stored in nodes.hypervisor) reads
// to a person: one line for the CLI and the UI summary.
import type { HypervisorCapacity } from '../contract/agent.ts';

export const runningGuests = (h: Pick<HypervisorCapacity, 'guests'>) => h.guests.filter((g) => g.status === 'running');

/** "2 CPUs, 987 MiB, KVM no (no usable /dev/kvm: …), QEMU 7.2.22; 1 running guest: selftest" */
export function describeCapacity(h: HypervisorCapacity): string {
  const running = runningGuests(h);
  const others = h.guests.filter((g) => g.status !== 'running');
  const kvm = h.kvm ? 'KVM yes' : `KVM no${h.kvmDetail ? ` (${h.kvmDetail})` : ''}`;
  const guests = `${running.length} running guest${running.length === 1 ? '' : 's'}${running.length ? `: ${running.map((g) => g.name).join(', ')}` : ''}${others.length ? `; ${others.map((g) => `${g.name} ${g.status}`).join(', ')}` : ''}`;
  return `${h.cpus} CPU${h.cpus === 1 ? '' : 's'}, ${h.memoryMiB} MiB, ${kvm}, ${h.qemu ? `QEMU ${h.qemu.version}` : 'no QEMU'}; ${guests}`;
}
