// Node boot histories written through the real node store (transitions + events, as the agent routes and the fleet
// controller leave them), for the image gate tests: provision with the image's digests, the agent's kexec-started
// phase, installed, fails with the fleet's data.cause.
import type { NodeStore } from '../../server/store/nodes.ts';

export interface ImageDigests {
  kernel: string;
  initrd: string;
}

export type BootStep =
  /** the agent reports kexec-started (stage-1 hands over to the image's kernel) */
  | 'kexec'
  /** the compute OS reports installed: provisioning → active */
  | 'active'
  /** a fail transition with the fleet's data.cause (null: none, like an operator's `fail` action) and more data */
  | { fail: string | null; data?: Record<string, unknown> };

/**
 * Boot `uuid` once with `img` and apply `steps`. A new node is enrolled and inspected; a failed one is rebuilt
 * first (failed → rebuilding → inspecting → ready), so one node can boot several times.
 */
export async function bootNode(nodes: NodeStore, uuid: string, img: ImageDigests, steps: BootStep[]): Promise<void> {
  const { node } = await nodes.enroll(uuid, {}, 'ipxe');
  if (node.state === 'failed') await nodes.transition(uuid, { type: 'rebuild', reason: 'test rebuild' }, 'fleet');
  if (node.state !== 'ready') {
    await nodes.transition(uuid, { type: 'inspect' }, 'agent');
    await nodes.transition(uuid, { type: 'inspected' }, 'inspection');
  }
  // the agent route's provision records the digests the node is told to boot
  await nodes.transition(uuid, { type: 'provision', reason: 'test profile' }, 'agent', { profile: 'default', image: 'compute', kernel: img.kernel, initrd: img.initrd });
  await nodes.touch(uuid, { kernelDigest: img.kernel, initrdDigest: img.initrd, imageName: 'compute' });
  for (const step of steps) {
    if (step === 'kexec') await nodes.addEvent(uuid, { kind: 'phase', reason: 'kexec-started', actor: 'agent', data: { phase: 'kexec-started' } });
    else if (step === 'active') await nodes.transition(uuid, { type: 'installed', reason: 'compute OS reported in' }, 'agent');
    else await nodes.transition(uuid, { type: 'fail', reason: `test: ${step.fail ?? 'no cause'}` }, step.fail === null ? 'api:operator' : 'fleet', step.fail === null ? step.data : { cause: step.fail, ...step.data });
  }
}
