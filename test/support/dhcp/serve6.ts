// Runs the DHCPv6 server as a process, for tests that put it in a network namespace:
//   ip netns exec NS node --import tsx test/support/dhcp/serve6.ts CONFIG.json
// CONFIG is the dhcp6 config plus `hosts` (a FixedBackend) and `logLevel`. Leases live in a MemoryLease6Store.
// Logs are pino JSON on stdout; SIGTERM stops it.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { DhcpHost } from '../../../boot/backend.ts';
import type { Dhcp6ConfigInput } from '../../../boot/dhcp6/config.ts';
import { MemoryLease6Store } from '../../../boot/dhcp6/leases.ts';
import { createDhcp6Server } from '../../../boot/dhcp6/server.ts';
import { FixedBackend } from './fakes.ts';

const file = process.argv[2];
if (!file) {
  console.error('usage: serve6.ts CONFIG.json');
  process.exit(2);
}
const { hosts = [], logLevel = 'info', ...config } = JSON.parse(readFileSync(file, 'utf8')) as Dhcp6ConfigInput & { hosts?: DhcpHost[]; logLevel?: string };
const logger = pino({ level: logLevel });
const server = createDhcp6Server({ ...config, backend: new FixedBackend(hosts), leases: new MemoryLease6Store(), logger });
await server.start();
const stop = async () => {
  await server.stop();
  logger.info({ stats: server.stats }, 'stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
