// A forger for the spoofing tests: builds DECLINEs / RELEASEs with our own codec and sends them, unicast to
// SERVER:67 from an ordinary UDP socket, the way a script on the boot network would. Prints {"sent":N}.
//   ip netns exec NS node --import tsx test/support/dhcp/spoof.ts SERVER_IP '{"type":"release","mac":"…","ciaddr":"…"}'
// Spec: type release|decline, mac (chaddr), hlen (default 6), ciaddr, requestedIp, clientId (hex option 61),
// count (default 1), bind (source address).
import dgram from 'node:dgram';
import { MessageType, Opt, encodePacket } from '../../../boot/dhcp/packet.ts';
import { request } from './fakes.ts';

interface Spec {
  type: 'release' | 'decline';
  mac: string;
  hlen?: number;
  ciaddr?: string;
  requestedIp?: string;
  clientId?: string;
  count?: number;
  bind?: string;
}

const [server, json] = process.argv.slice(2);
if (!server || !json) {
  console.error('usage: spoof.ts SERVER_IP SPEC_JSON');
  process.exit(2);
}
const spec = JSON.parse(json) as Spec;
const packet = request({
  type: spec.type === 'release' ? MessageType.RELEASE : MessageType.DECLINE,
  mac: spec.mac,
  ciaddr: spec.ciaddr,
  requestedIp: spec.requestedIp,
  serverId: server,
  xid: Math.floor(Math.random() * 2 ** 32),
  extra: spec.clientId ? [[Opt.CLIENT_ID, Buffer.from(spec.clientId, 'hex')]] : [],
});
if (spec.hlen !== undefined) packet.hlen = spec.hlen;
const bytes = encodePacket(packet);
const sock = dgram.createSocket('udp4');
sock.bind({ address: spec.bind ?? '0.0.0.0', port: 0 }, async () => {
  const count = spec.count ?? 1;
  for (let i = 0; i < count; i++) await new Promise<void>((resolve, reject) => sock.send(bytes, 67, server, (err) => (err ? reject(err) : resolve())));
  console.log(JSON.stringify({ sent: count }));
  sock.close();
});
