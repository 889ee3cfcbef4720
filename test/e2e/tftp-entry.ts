// bootfarm's own TFTP server (boot/tftp) on its own, for the rack's plumbing proof before it is wired into
// server/main.ts: `ip netns exec NS node --import tsx test/e2e/tftp-entry.ts ADDRESS`. Serves Debian's iPXE
// binaries under their usual names (undionly.kpxe, snponly.efi, ipxe.efi) on ADDRESS:69 (RFC 1350, with the
// blksize/tsize/windowsize options of RFC 2348/2349/7440). Logs JSON lines; stops on SIGTERM or stdin EOF.
import { createFsOpener, createTftpServer } from '../../boot/tftp/index.ts';

const [address] = process.argv.slice(2);
const line = (level: string) => (obj: object, msg?: string) => process.stdout.write(`${JSON.stringify({ level, msg, ...obj })}\n`);
const server = createTftpServer({ address: address!, port: 69, open: createFsOpener({ ipxeDefaults: true }), logger: { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') } });
await server.start();
process.stdout.write('READY\n');
const stop = () => {
  process.stdout.write(`STATS ${JSON.stringify(server.stats)}\n`);
  void server.stop().finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
