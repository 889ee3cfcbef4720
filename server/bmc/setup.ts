// In-band BMC setup from stage-1. A new server's BMC often has no address and a vendor default password; the
// stage-1 agent, running as root on the node itself, can reach it through the kernel's IPMI driver
// (/dev/ipmi0, `ipmitool -I open`) without any credentials. The server builds a plan here, the agent runs it,
// and the server then proves it worked by reaching the BMC out-of-band over the LAN with the new credentials
// (verifyBmcSetup) before it stores them.
//
// Plan format (version 1), sent to the agent as JSON:
//   { version: 1,
//     interface: "open",                     ipmitool -I open (in-band, /dev/ipmi0)
//     channel: 1, userId: 3,                 LAN channel and user slot the plan writes
//     script: "lan set 1 ipsrc static\n…",   one ipmitool command per line, for `ipmitool -I open exec FILE`
//     redacted: "…user set password 3 ***…", the same script with the password masked: the only form the
//                                            agent may log, report or put in an event
//     expect: { address, port, username } }  what the server will verify out-of-band afterwards
// The agent writes `script` to a 0600 file on its tmpfs, runs `ipmitool -I open exec FILE`, deletes the file
// and reports exit code + output. `exec` keeps the password off every command line (/proc/PID/cmdline is
// world-readable); ipmitool's `user set password` has no environment or file option of its own.
//
// Passwords are 16 characters from [A-Za-z0-9]: 16 bytes is the IPMI v1.5 limit that every BMC accepts
// (ipmi_sim refuses logins with a 20-byte password; measured), and the alphabet needs no quoting in an
// ipmitool exec script, which splits lines on whitespace.
import { randomInt } from 'node:crypto';
import { z } from 'zod';
import { BmcError, redact, type BmcTarget } from './types.ts';
import type { BmcFactory } from './index.ts';
import type { PowerState } from './types.ts';

const ipv4 = z.string().regex(/^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/, 'an IPv4 address');

export const BmcSetupInput = z.object({
  address: ipv4,
  netmask: ipv4,
  gateway: ipv4.optional(),
  /** 802.1Q VLAN for the BMC's LAN channel */
  vlan: z.number().int().min(1).max(4094).optional(),
  channel: z.number().int().min(1).max(15).default(1),
  /** user slot; 2 is often the vendor's admin, so 3 by default leaves it alone */
  userId: z.number().int().min(2).max(63).default(3),
  username: z.string().regex(/^[A-Za-z0-9_.-]{1,16}$/, '1–16 characters of A-Z a-z 0-9 _ . -'),
  /** generated when absent */
  password: z.string().regex(/^[A-Za-z0-9]{8,16}$/, '8–16 characters of A-Z a-z 0-9').optional(),
  /** UDP port the server will verify on (the BMC listens on 623; a test simulator elsewhere) */
  port: z.number().int().min(1).max(65535).default(623),
});
export type BmcSetupInput = z.input<typeof BmcSetupInput>;

export interface BmcSetupPlan {
  version: 1;
  interface: 'open';
  channel: number;
  userId: number;
  script: string;
  redacted: string;
  expect: { address: string; port: number; username: string };
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export function generateBmcPassword(length = 16): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

/** Builds the plan and returns the password separately so the caller can seal it into the bmcs table once verified. */
export function buildBmcSetupPlan(input: BmcSetupInput): { plan: BmcSetupPlan; password: string } {
  const i = BmcSetupInput.parse(input);
  const password = i.password ?? generateBmcPassword();
  const c = i.channel;
  const u = i.userId;
  const lines = [
    `lan set ${c} ipsrc static`,
    `lan set ${c} ipaddr ${i.address}`,
    `lan set ${c} netmask ${i.netmask}`,
    ...(i.gateway ? [`lan set ${c} defgw ipaddr ${i.gateway}`] : []),
    i.vlan ? `lan set ${c} vlan id ${i.vlan}` : `lan set ${c} vlan id off`,
    `lan set ${c} access on`,
    `user set name ${u} ${i.username}`,
    // 16 = store as a 16-byte password (see the header comment)
    `user set password ${u} ${password} 16`,
    // privilege 4 = ADMINISTRATOR on channel c (IPMI v2.0 §22.26 Set User Access)
    `user priv ${u} 4 ${c}`,
    `channel setaccess ${c} ${u} callin=on ipmi=on link=on privilege=4`,
    `user enable ${u}`,
  ];
  const script = lines.join('\n') + '\n';
  return {
    password,
    plan: { version: 1, interface: 'open', channel: c, userId: u, script, redacted: redact(script, [password]), expect: { address: i.address, port: i.port, username: i.username } },
  };
}

export type BmcVerifyResult = { ok: true; power: PowerState } | { ok: false; kind: string; message: string };

/**
 * Out-of-band check after the agent ran the plan: log in over the LAN with the new credentials and read the
 * power state. A failure is a result (with a message free of the password), not a throw, so the caller can
 * record it as an event and ask the agent to retry.
 */
export async function verifyBmcSetup(target: BmcTarget, createBmc: BmcFactory): Promise<BmcVerifyResult> {
  try {
    const power = await createBmc(target).powerStatus();
    return { ok: true, power };
  } catch (e) {
    if (e instanceof BmcError) return { ok: false, kind: e.kind, message: redact(e.message, [target.password]) };
    return { ok: false, kind: 'failed', message: redact(String((e as Error)?.message ?? e), [target.password]) };
  }
}
