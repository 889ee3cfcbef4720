// The DHCP server as the product runs it, for `make bench-dhcp`: leases in the database through
// server/store/leases.ts (one multi-row upsert per group-committed batch) and "who is this MAC?" answered by the
// node registry (server/boot-backend.ts). bench/dhcp/bench.ts starts it in its namespace as the
// `bootfarm-db` target:  node --import tsx bench/dhcp-serve.ts CONFIG.json
// CONFIG is the DHCP config plus `dataDir` (PGlite; a fresh directory) or `databaseUrl`, and `logLevel`.
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { createDhcpServer, type DhcpConfigInput } from '../boot/dhcp/index.ts';
import { createDb } from '../server/db/index.ts';
import { createLeaseDbStore } from '../server/store/leases.ts';
import { createNodeStore } from '../server/store/nodes.ts';
import { createBootBackend } from '../server/boot-backend.ts';

const file = process.argv[2];
if (!file) {
  console.error('usage: dhcp-serve.ts CONFIG.json');
  process.exit(2);
}
const { dataDir, databaseUrl, logLevel = 'warn', ...config } = JSON.parse(readFileSync(file, 'utf8')) as DhcpConfigInput & { dataDir?: string; databaseUrl?: string; logLevel?: string };
const logger = pino({ level: logLevel });
const db = await createDb(databaseUrl ? { url: databaseUrl } : { dataDir: dataDir ?? 'memory://' });
const server = createDhcpServer({ ...config, backend: createBootBackend({ nodes: createNodeStore(db.db) }), leases: createLeaseDbStore(db.db), logger });
await server.start();
process.stdout.write('{"msg":"ready"}\n');
const stop = async () => {
  await server.stop();
  await db.close();
  logger.info({ stats: server.stats }, 'stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
