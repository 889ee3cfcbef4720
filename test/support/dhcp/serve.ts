// Runs the DHCP server as a process, for tests and benches that put it in a network namespace:
//   ip netns exec NS node --import tsx test/support/dhcp/serve.ts CONFIG.json
// CONFIG is the DHCP config plus `hosts` (a FixedBackend) and `logLevel`. Logs are pino JSON on stdout;
// SIGTERM stops it, SIGUSR2 prints the counters. Leases live in a MemoryLeaseStore unless `leaseFile` names a JSON-lines file, which
// every batch is appended to and fsynced (a kea-memfile-like store for the benchmark).
import { type FileHandle, open } from 'node:fs/promises';
import { readFileSync, writeSync } from 'node:fs';
import { pino } from 'pino';
import type { DhcpHost } from '../../../boot/backend.ts';
import type { DhcpConfigInput } from '../../../boot/dhcp/config.ts';
import { type Lease, type LeaseStore, MemoryLeaseStore } from '../../../boot/dhcp/leases.ts';
import { createDhcpServer } from '../../../boot/dhcp/server.ts';
import { FixedBackend } from './fakes.ts';

/** Append-only JSON lines, fsynced per batch; loadAll replays it (last line for an address wins). */
export class JsonlLeaseStore implements LeaseStore {
  /** fsync: datasync after every batch (kea's memfile only writes; it does not fsync) */
  constructor(
    readonly path: string,
    readonly fsync = true,
  ) {}
  async loadAll(): Promise<Lease[]> {
    let text = '';
    try {
      text = readFileSync(this.path, 'utf8');
    } catch {
      return [];
    }
    const rows = new Map<string, Lease>();
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        const l = JSON.parse(line) as Lease & { expiresAt: string };
        rows.set(l.ip, { ...l, expiresAt: new Date(l.expiresAt) });
      } catch {
        // a torn last line after a crash: skip it
      }
    }
    return [...rows.values()];
  }
  private fh?: FileHandle;
  async saveMany(leases: Lease[]): Promise<void> {
    // one open handle for the life of the store: an open/close per batch cost more than the write
    this.fh ??= await open(this.path, 'a');
    const text = leases.map((l) => JSON.stringify(l)).join('\n') + '\n';
    // into the page cache synchronously, like kea's memfile (a thread-pool round trip per batch costs
    // more than the write); then, if asked, one fdatasync for the whole batch
    writeSync(this.fh.fd, text);
    if (this.fsync) await this.fh.datasync();
  }
  async purgeExpired(): Promise<number> {
    return 0;
  }
}

const file = process.argv[2];
if (!file) {
  console.error('usage: serve.ts CONFIG.json');
  process.exit(2);
}
const { hosts = [], logLevel = 'info', leaseFile, leaseFsync = true, ...config } = JSON.parse(readFileSync(file, 'utf8')) as DhcpConfigInput & {
  hosts?: DhcpHost[];
  logLevel?: string;
  leaseFile?: string;
  leaseFsync?: boolean;
};
const logger = pino({ level: logLevel });
const server = createDhcpServer({
  ...config,
  backend: new FixedBackend(hosts),
  leases: leaseFile ? new JsonlLeaseStore(leaseFile, leaseFsync) : new MemoryLeaseStore(),
  logger,
});
await server.start();
process.stdout.write('{"msg":"ready"}\n'); // whatever the log level
const stop = async () => {
  await server.stop();
  logger.info({ stats: server.stats }, 'stopped');
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
// tests read the counters mid-run: SIGUSR2 prints them
process.on('SIGUSR2', () => process.stdout.write(`${JSON.stringify({ msg: 'stats', stats: server.stats })}\n`));
process.on('SIGINT', () => void stop());
