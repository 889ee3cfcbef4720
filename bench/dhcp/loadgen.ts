// DHCP load generator: completes DISCOVER→OFFER→REQUEST→ACK exchanges from many fake MACs, keeping
// WINDOW exchanges in flight, until COUNT exchanges were started or SECONDS passed. It speaks as a relay
// agent (giaddr = its own address, replies come back unicast to port 67), so it needs no raw socket and
// drives dnsmasq, kea and our server through the same path. Prints one JSON line with the result.
//
//   node --import tsx loadgen.ts --server 10.88.0.1 --giaddr 10.89.0.1 --count 20000 --window 64 --seconds 20
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { BOOTREQUEST, type DhcpPacket, MessageType, Opt, decodePacket, encodePacket, ips, optIp, u8 } from '../../boot/dhcp/packet.ts';

const { values } = parseArgs({
  options: {
    server: { type: 'string' },
    giaddr: { type: 'string' },
    port: { type: 'string', default: '67' },
    count: { type: 'string', default: '10000' },
    window: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '20' },
    timeout: { type: 'string', default: '2000' },
  },
});
if (!values.server || !values.giaddr) {
  console.error('usage: loadgen.ts --server IP --giaddr IP [--count N] [--window N] [--seconds S]');
  process.exit(2);
}
const server = values.server;
const giaddr = values.giaddr;
const port = Number(values.port);
const count = Math.min(Number(values.count), 1_000_000);
const windowSize = Math.max(1, Math.min(Number(values.window), 4096));
const seconds = Math.min(Number(values.seconds), 120);
const timeoutMs = Number(values.timeout);

const prefix = randomBytes(2); // fresh MACs for every run
interface Exchange {
  mac: Buffer;
  xid: number;
  started: number;
  timer: NodeJS.Timeout;
  phase: 'discover' | 'request';
}
const inflight = new Map<number, Exchange>();
let started = 0;
let completed = 0;
let failed = 0;
let naks = 0;
const latencies: number[] = [];

function packet(x: Exchange, type: number, extra: [number, Buffer][] = []): Buffer {
  const options = new Map<number, Buffer>([[Opt.MESSAGE_TYPE, u8(type)], ...extra, [Opt.PARAM_LIST, Buffer.from([1, 3, 6, 51, 54])]]);
  const chaddr = Buffer.alloc(16);
  x.mac.copy(chaddr);
  const p: DhcpPacket = {
    op: BOOTREQUEST,
    htype: 1,
    hlen: 6,
    hops: 1,
    xid: x.xid,
    secs: 0,
    flags: 0,
    ciaddr: '0.0.0.0',
    yiaddr: '0.0.0.0',
    siaddr: '0.0.0.0',
    giaddr,
    chaddr,
    sname: '',
    file: '',
    options,
  };
  return encodePacket(p);
}

const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
const t0 = performance.now();
const deadline = t0 + seconds * 1000;
let done = false;

function finish(): void {
  if (done) return;
  done = true;
  for (const x of inflight.values()) clearTimeout(x.timer);
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Math.round((latencies[Math.floor((latencies.length - 1) * p)] ?? 0) * 10) / 10;
  console.log(JSON.stringify({ started, completed, failed, naks, seconds: Math.round(elapsed * 1000) / 1000, rate: Math.round(completed / elapsed), p50ms: pct(0.5), p99ms: pct(0.99) }));
  sock.close();
}

function launch(): void {
  while (!done && inflight.size < windowSize && started < count && performance.now() < deadline) {
    const n = started++;
    const mac = Buffer.from([0x02, 0xbf, prefix[0]!, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
    const x: Exchange = { mac, xid: (prefix.readUInt16BE(0) * 65536 + n) >>> 0, started: performance.now(), phase: 'discover', timer: undefined as never };
    x.timer = setTimeout(() => {
      inflight.delete(x.xid);
      failed++;
      launch();
    }, timeoutMs);
    inflight.set(x.xid, x);
    sock.send(packet(x, MessageType.DISCOVER), port, server);
  }
  if (inflight.size === 0 && (started >= count || performance.now() >= deadline)) finish();
}

sock.on('message', (msg) => {
  const d = decodePacket(msg);
  if (!d.ok) return;
  const x = inflight.get(d.packet.xid);
  if (!x) return;
  const type = d.packet.options.get(Opt.MESSAGE_TYPE)?.[0];
  if (type === MessageType.OFFER && x.phase === 'discover') {
    x.phase = 'request';
    const sid = optIp(d.packet, Opt.SERVER_ID) ?? server;
    sock.send(packet(x, MessageType.REQUEST, [[Opt.REQUESTED_IP, ips([d.packet.yiaddr])], [Opt.SERVER_ID, ips([sid])]]), port, server);
  } else if ((type === MessageType.ACK || type === MessageType.NAK) && x.phase === 'request') {
    clearTimeout(x.timer);
    inflight.delete(x.xid);
    if (type === MessageType.ACK) {
      completed++;
      latencies.push(performance.now() - x.started);
    } else naks++;
    launch();
  }
});

sock.bind({ address: giaddr, port }, () => launch());
setTimeout(finish, seconds * 1000 + timeoutMs + 1000).unref();
