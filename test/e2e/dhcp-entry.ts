// bootfarm's own DHCP server (boot/dhcp) on its own, for the rack's plumbing proof before it is wired into
// server/main.ts: `ip netns exec NS node --import tsx test/e2e/dhcp-entry.ts IFACE SERVER_IP HTTP_BASE`.
// Full mode with one pool; the backend knows nobody (EmptyBackend), so every machine gets a pool address, and an
// iPXE client (user class "iPXE") gets HTTP_BASE/boot.ipxe. Logs JSON lines; stops on SIGTERM or stdin EOF.
import { EmptyBackend } from '../../boot/backend.ts';
import { createDhcpServer, MemoryLeaseStore } from '../../boot/dhcp/index.ts';

const [iface, serverIp, httpBase] = process.argv.slice(2);
const line = (level: string) => (obj: object, msg?: string) => process.stdout.write(`${JSON.stringify({ level, msg, ...obj })}\n`);
const server = createDhcpServer({
  mode: 'full',
  interface: iface!,
  serverIp: serverIp!,
  httpBase: httpBase!,
  pools: [{ subnet: '10.77.0.0/24', range: { start: '10.77.0.100', end: '10.77.0.199' } }],
  backend: EmptyBackend,
  leases: new MemoryLeaseStore(),
  logger: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') },
});
await server.start();
process.stdout.write('READY\n');
const stop = () => void server.stop().finally(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
