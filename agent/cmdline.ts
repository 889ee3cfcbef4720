// The agent's configuration is the kernel command line (/proc/cmdline): the server puts it there in the iPXE
// script (stage-1) or in the profile's cmdline (compute), so a node needs no local state at all.
// bootfarm.token= is the credential of the OS it is on: stage-1's boot-attempt token, or the compute OS's node
// credential (server/api/auth.ts says which endpoint takes which; docs/security-model.md).
//   bootfarm.server=URL  bootfarm.token=T  bootfarm.uuid=U  bootfarm.mode=stage1|compute  bootfarm.dryrun=1
//   bootfarm.kernel=SHA256  bootfarm.initrd=SHA256  bootfarm.heartbeat=SECONDS  BOOTIF=01-aa-bb-…
//   bootfarm.lldpcapture=SECONDS (listen for LLDP with tcpdump when no lldpd runs)
//   bootfarm.lldpwait=SECONDS (wait up to this long for the switch's LLDP neighbour on the boot NIC; default 10)
//   bootfarm.iscsi.target=IQN (compute: the heartbeat says whether its session is up)
//   bootfarm.planKey=BASE64URL (stage-1: the ed25519 public key firmware plans must be signed with; issue 16 item 7)
//   bootfarm.selftest=hypervisor (compute: boot one small guest after installed and report it; agent/hypervisor)
import { z } from 'zod';
import { Digest, SmbiosUuid } from '../server/contract/common.ts';

/**
 * Splits a command line the way the kernel does (lib/cmdline.c next_arg): whitespace separates words, double
 * quotes group a value with spaces (`foo="a b"`), and the quotes themselves are dropped. A later `key=` wins.
 */
export function splitCmdline(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  const s = text.trim();
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    let word = '';
    let quoted = false;
    while (i < s.length && (quoted || !/\s/.test(s[i]!))) {
      if (s[i] === '"') quoted = !quoted;
      else word += s[i];
      i++;
    }
    if (!word) continue;
    const eq = word.indexOf('=');
    if (eq < 0) out.set(word, '');
    else out.set(word.slice(0, eq), word.slice(eq + 1));
  }
  return out;
}

export const AgentConfig = z.object({
  server: z.url({ protocol: /^https?$/, error: 'bootfarm.server= must be an http(s) URL' }).transform((u) => u.replace(/\/+$/, '')),
  token: z.string({ error: 'bootfarm.token= is missing from the kernel command line' }).min(1, 'bootfarm.token= is empty'),
  uuid: SmbiosUuid.optional(),
  mode: z.enum(['stage1', 'compute']).default('stage1'),
  dryRun: z.boolean().default(false),
  kernelDigest: Digest.optional(),
  initrdDigest: Digest.optional(),
  heartbeatSeconds: z.coerce.number().int().positive().max(86_400).optional(),
  bootif: z.string().optional(),
  lldpCaptureSeconds: z.coerce.number().int().nonnegative().max(300).optional(),
  lldpWaitSeconds: z.coerce.number().int().nonnegative().max(300).optional(),
  iscsiTarget: z.string().optional(),
  /** compute: the iSCSI portal (host[:port]) the disk comes over; its path is never cut by the network plan */
  iscsiPortal: z.string().optional(),
  /** checked when a plan arrives (server/contract/plan-signature.ts verifyPlan): a bad key refuses the plan, not the boot */
  planKey: z.string().optional(),
  /** compute: self-tests to run once the node is installed (a profile's cmdline asks for them); an unknown name is
   * reported by the flow, never a reason to refuse the whole command line */
  selfTests: z.array(z.string().max(32)).max(8).default([]),
});
export type AgentConfig = z.infer<typeof AgentConfig>;

export class CmdlineError extends Error {
  override name = 'CmdlineError';
}

export function parseAgentCmdline(text: string): AgentConfig {
  const m = splitCmdline(text);
  const raw: Record<string, unknown> = {
    server: m.get('bootfarm.server'),
    token: m.get('bootfarm.token'),
    uuid: m.get('bootfarm.uuid') || undefined,
    mode: m.get('bootfarm.mode') || undefined,
    dryRun: ['1', 'true', 'yes', ''].includes(m.get('bootfarm.dryrun') ?? 'no'),
    kernelDigest: m.get('bootfarm.kernel') || undefined,
    initrdDigest: m.get('bootfarm.initrd') || undefined,
    heartbeatSeconds: m.get('bootfarm.heartbeat') || undefined,
    bootif: m.get('BOOTIF') || undefined,
    lldpCaptureSeconds: m.get('bootfarm.lldpcapture') || undefined,
    lldpWaitSeconds: m.get('bootfarm.lldpwait') || undefined,
    iscsiTarget: m.get('bootfarm.iscsi.target') || undefined,
    iscsiPortal: m.get('bootfarm.iscsi.portal') || undefined,
    planKey: m.get('bootfarm.planKey') || undefined,
    selfTests: (m.get('bootfarm.selftest') ?? '').split(',').filter(Boolean),
  };
  if (raw['server'] === undefined) throw new CmdlineError('bootfarm.server= is missing from the kernel command line');
  const r = AgentConfig.safeParse(raw);
  if (!r.success) throw new CmdlineError(`kernel command line: ${r.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  return r.data;
}
