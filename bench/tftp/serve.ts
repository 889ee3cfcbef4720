// Runs bootfarm's TFTP server as its own process for the benchmark, so it is measured the way
// tftpd-hpa and dnsmasq are: one process in the server namespace. Usage:
//   tsx bench/tftp/serve.ts ADDRESS PORT ROOT
// Prints "ready" once bound; exits on SIGTERM.
import { createFsOpener } from '../../boot/tftp/fs-open.ts';
import { createTftpServer } from '../../boot/tftp/server.ts';

const [address = '127.0.0.1', port = '69', root = '.'] = process.argv.slice(2);
const server = createTftpServer({ address, port: Number(port), open: createFsOpener({ root, ipxeDefaults: false }) });
await server.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void server.stop().then(() => process.exit(0));
});
