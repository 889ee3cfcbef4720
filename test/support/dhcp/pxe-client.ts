// A PXE client for the proxy-mode test: replays the DHCPDISCOVER captured from QEMU's iPXE ROM as a
// broadcast, then sends the ProxyDHCP REQUEST to SERVER:4011 the way iPXE does, and prints what came
// back as JSON lines ({"offer":…}, {"ack":…}). Exits 0 when both arrived, 1 after 8 s.
import dgram from 'node:dgram';
import { classify } from '../../../boot/dhcp/classify.ts';
import { MessageType, Opt, decodePacket, encodePacket, subOptions } from '../../../boot/dhcp/packet.ts';
import { fixturePacket } from './fakes.ts';

const server = process.argv[2] ?? '255.255.255.255';
const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const req = fixturePacket('ipxe-rom-bios-discover.hex');
req.xid = Math.floor(Math.random() * 2 ** 32);
const timer = setTimeout(() => (console.log('timeout'), process.exit(1)), 8000);

sock.on('message', (msg, rinfo) => {
  const d = decodePacket(msg);
  if (!d.ok || d.packet.xid !== req.xid || d.packet.op !== 2) return;
  const p = d.packet;
  const type = p.options.get(Opt.MESSAGE_TYPE)?.[0];
  const summary = {
    type,
    yiaddr: p.yiaddr,
    siaddr: p.siaddr,
    file: p.file,
    vendorClass: p.options.get(Opt.VENDOR_CLASS)?.toString(),
    discoveryControl: subOptions(p.options.get(Opt.VENDOR_SPECIFIC)).get(6)?.[0],
    from: `${rinfo.address}:${rinfo.port}`,
  };
  if (type === MessageType.OFFER) {
    console.log(JSON.stringify({ offer: summary }));
    const r = { ...req, options: new Map(req.options) };
    r.options.set(Opt.MESSAGE_TYPE, Buffer.from([MessageType.REQUEST]));
    sock.send(encodePacket(r, 1500), 4011, server);
  } else if (type === MessageType.ACK) {
    console.log(JSON.stringify({ ack: summary }));
    clearTimeout(timer);
    sock.close();
  }
});
sock.bind(68, () => {
  sock.setBroadcast(true);
  void classify(req);
  sock.send(encodePacket(req, 1500), 67, '255.255.255.255');
});
