// Sends one DHCPv6 Solicit (dhclient's captured one, boot/dhcp6/fixtures) from [::]:546 to each address given
// (zones included: ff02::1:2%eth0, fe80::1%eth0) and prints {"reply": HEX} for each answer, or {"replies": 0} after
// WAIT ms. Run inside a namespace: ip netns exec NS node --import tsx test/support/dhcp/solicit6.ts WAIT ADDR...
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';

const [wait = '2000', ...targets] = process.argv.slice(2);
const hex = readFileSync(new URL('../../../boot/dhcp6/fixtures/dhclient-solicit.hex', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l.trim() && !l.startsWith('#'))
  .join('');
const s = dgram.createSocket({ type: 'udp6', ipv6Only: true });
let replies = 0;
s.on('message', (m) => {
  replies++;
  process.stdout.write(`${JSON.stringify({ reply: m.toString('hex') })}\n`);
});
s.bind({ address: '::', port: 546 }, () => {
  for (const t of targets) s.send(Buffer.from(hex, 'hex'), 547, t);
  setTimeout(() => {
    process.stdout.write(`${JSON.stringify({ replies })}\n`);
    s.close();
  }, Number(wait));
});
