// Named fakes and builders for the DHCPv6 tests (STYLE.md §8): a broken lease store, client messages laid out the
// way dhclient/iPXE/EDK2 send them, a readable rendering of replies for whole-output golden files.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Lease6Store } from '../../../boot/dhcp6/leases.ts';
import { type Dhcp6ClientMessage, type Dhcp6Message, type Duid, type Option6, MsgType, decodeDhcp6, encodeDhcp6, innermost, isRelay } from '../../../boot/dhcp6/packet.ts';
import type { Reply6 } from '../../../boot/dhcp6/responder.ts';

/** A store whose writes fail: the responder must stay silent rather than Reply with an unsaved binding. */
export class BrokenLease6Store implements Lease6Store {
  async loadAll() {
    return [];
  }
  async saveMany(): Promise<void> {
    throw new Error('lease store unavailable');
  }
  async purgeExpired() {
    return 0;
  }
}

export const duidLlOf = (mac: string): Duid => ({ type: 3, hwType: 1, linkLayer: Buffer.from(mac.replaceAll(':', ''), 'hex') });
/** DUID-UUID (RFC 6355) as iPXE and EDK2 send it: no MAC inside */
export const duidUuid = (hex32: string): Duid => ({ type: 4, uuid: Buffer.from(hex32, 'hex') });

/** The modified EUI-64 link-local address of a MAC (RFC 4291 appendix A), with a zone: how a client's source looks. */
export function linkLocalOf(mac: string, zone = 'eth0'): string {
  const b = mac.split(':').map((x) => parseInt(x, 16));
  const w = (hi: number, lo: number) => ((hi << 8) | lo).toString(16);
  return `fe80::${w(b[0]! ^ 2, b[1]!)}:${w(b[2]!, 0xff)}:${w(0xfe, b[3]!)}:${w(b[4]!, b[5]!)}%${zone}`;
}

export interface Msg6Spec {
  type: number;
  duid?: Duid;
  xid?: number;
  /** IA_NAs: iaid and the addresses the client names in it */
  ias?: { iaid: number; addrs?: string[] }[];
  oro?: number[];
  arch?: number;
  userClass?: string;
  rapidCommit?: boolean;
  serverDuid?: Duid;
}

/** A client message with options in the order dhclient -6 uses: client id, server id, ORO, elapsed time, the rest, IA_NA. */
export function msg6(s: Msg6Spec): Dhcp6ClientMessage {
  const options: Option6[] = [];
  if (s.duid) options.push({ kind: 'clientId', duid: s.duid });
  if (s.serverDuid) options.push({ kind: 'serverId', duid: s.serverDuid });
  options.push({ kind: 'oro', codes: s.oro ?? [23, 24] });
  options.push({ kind: 'elapsedTime', centiseconds: 0 });
  if (s.rapidCommit) options.push({ kind: 'raw', code: 14, data: Buffer.alloc(0) });
  if (s.userClass) options.push({ kind: 'raw', code: 15, data: Buffer.concat([Buffer.from([0, s.userClass.length]), Buffer.from(s.userClass)]) });
  if (s.arch !== undefined) options.push({ kind: 'clientArch', arches: [s.arch] });
  for (const ia of s.ias ?? []) {
    options.push({ kind: 'iaNa', iaid: ia.iaid, t1: 0, t2: 0, options: (ia.addrs ?? []).map((address) => ({ kind: 'iaAddr', address, preferred: 0, valid: 0, options: [] })) });
  }
  return { type: s.type, transactionId: s.xid ?? 0x0a0b0c, options };
}

export { MsgType };

function describe6(m: Dhcp6Message, indent: string): string[] {
  if (isRelay(m)) {
    const head = `${indent}type=${m.type} hop=${m.hopCount} link=${m.linkAddress} peer=${m.peerAddress}`;
    return [head, ...m.options.flatMap((o) => (o.kind === 'relayMessage' ? describe6(o.message, `${indent}  `) : [`${indent}  ${JSON.stringify(o, hexify)}`]))];
  }
  return [`${indent}type=${m.type} xid=${m.transactionId.toString(16)}`, ...m.options.map((o) => `${indent}  ${JSON.stringify(o, hexify)}`)];
}
function hexify(this: unknown, _k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return Buffer.from((v as { data: number[] }).data).toString('hex');
  return v;
}

/** '#' lines saying where the reply goes and what it holds, then the encoded bytes as hex. */
export function renderReply6(reply: Reply6 | null): string {
  if (!reply) return '# no reply\n';
  const bytes = encodeDhcp6(reply.message);
  const d = decodeDhcp6(bytes);
  if (!d.ok) throw new Error(`reply does not decode: ${d.error}`);
  return `${[`# to [${reply.to.address}]:${reply.to.port}`, ...describe6(d.message, '').map((l) => `# ${l}`), bytes.toString('hex')].join('\n')}\n`;
}

const goldenDir = new URL('../../../boot/dhcp6/fixtures/golden/', import.meta.url);
/** Returns [actual, expected]; UPDATE_GOLDEN=1 writes the file first. A missing file compares as empty. */
export function golden6(name: string, reply: Reply6 | null): [string, string] {
  const actual = renderReply6(reply);
  const path = fileURLToPath(new URL(`${name}.txt`, goldenDir));
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(fileURLToPath(goldenDir), { recursive: true });
    writeFileSync(path, actual);
  }
  return [actual, existsSync(path) ? readFileSync(path, 'utf8') : ''];
}

/** The IA_NA addresses of a client-side message (Advertise, Reply), each with its IAID. */
export const iaAddrs = (m: Dhcp6ClientMessage) =>
  m.options.flatMap((o) => (o.kind === 'iaNa' ? o.options.flatMap((x) => (x.kind === 'iaAddr' ? [{ iaid: o.iaid, ...x }] : [])) : []));

export type ClientOp6 = 'solicit' | 'rapid' | 'request' | 'renew' | 'rebind' | 'release' | 'decline';
export const OP6_TYPE: Record<ClientOp6, number> = { solicit: MsgType.SOLICIT, rapid: MsgType.SOLICIT, request: MsgType.REQUEST, renew: MsgType.RENEW, rebind: MsgType.REBIND, release: MsgType.RELEASE, decline: MsgType.DECLINE };

/**
 * What clients believe they hold, for the "no address held twice" properties: key (client/IAID) → address and expiry
 * (ms). `record` applies one exchange's outcome; `live` is what is held at `now`.
 */
export class HeldAddresses {
  readonly held = new Map<string, { address: string; until: number }>();
  mine(key: string): string | undefined {
    return this.held.get(key)?.address;
  }
  record(key: string, kind: ClientOp6, reply: Reply6 | null | undefined, now: number): void {
    if (kind === 'release' || kind === 'decline') {
      if (reply && this.mine(key)) this.held.delete(key);
      return;
    }
    const m = reply && innermost(reply.message);
    if (!m || m.type !== MsgType.REPLY) return;
    for (const a of iaAddrs(m)) {
      if (a.valid > 0) this.held.set(key, { address: a.address, until: now + a.valid * 1000 });
      else if (this.held.get(key)?.address === a.address) this.held.delete(key);
    }
  }
  live(now: number): string[] {
    return [...this.held.values()].filter((x) => x.until > now).map((x) => x.address);
  }
}
