// A tiny boot server for the QEMU tests: serves boot.ipxe (an iPXE script that chains to /done), Debian's
// iPXE binaries by name over HTTP (ipxe.efi, snponly.efi, undionly.kpxe: the opener the product's TFTP server
// and its /<name>.efi route use, boot/tftp/fs-open.ts), and with a third argument `tftp` the same files over
// bootfarm's TFTP server on ADDRESS:69. Prints every HTTP request line as "GET /path", "SENT /path BYTES" when
// a binary went out whole, and "TFTP start NAME" / "TFTP done NAME", so a test sees what the firmware and
// iPXE fetched, and over which protocol.
//   node --import tsx http-probe.ts ADDRESS PORT [tftp]
import { createServer } from 'node:http';
import { createFsOpener } from '../../../boot/tftp/fs-open.ts';
import { createTftpServer } from '../../../boot/tftp/server.ts';

const [address = '127.0.0.1', port = '8080', tftp] = process.argv.slice(2);
const script = `#!ipxe\necho bootfarm: boot.ipxe reached\nchain http://${address}:${port}/done?mac=\${net0/mac}&uuid=\${uuid}\n`;
const open = createFsOpener({ ipxeDefaults: true });
createServer((req, res) => {
  const t = Date.now();
  console.log(`${req.method} ${req.url}`);
  if (req.url === '/boot.ipxe') return void res.end(script);
  if (req.url?.startsWith('/done')) return void res.end('#!ipxe\necho done\nsleep 600\n');
  void open(req.url?.slice(1) ?? '').then((file) => {
    if (!file?.stream) return void ((res.statusCode = 404), res.end());
    const stream = file.stream;
    // UEFI HTTP boot takes the image type from Content-Type first (UEFI 2.x §24.7.2: application/efi)
    res.writeHead(200, { 'content-type': 'application/efi', 'content-length': file.size });
    if (req.method === 'HEAD') return void (stream.destroy(), res.end());
    stream.pipe(res);
    res.on('finish', () => console.log(`SENT ${req.url} ${file.size} ${Date.now() - t}ms`));
  });
}).listen(Number(port), address, () => console.log('listening'));

if (tftp === 'tftp') {
  const quiet = () => {};
  const logger = {
    debug: (obj: object, msg?: string) => {
      const file = (obj as { file?: string }).file;
      if (msg === 'tftp: transfer start') console.log(`TFTP start ${file}`);
      if (msg === 'tftp: transfer complete') console.log(`TFTP done ${file}`);
    },
    info: (obj: object, msg?: string) => console.log(`TFTP ${msg} ${JSON.stringify(obj)}`),
    warn: quiet,
    error: (obj: object, msg?: string) => console.log(`TFTP error ${msg} ${JSON.stringify(obj)}`),
  };
  await createTftpServer({ address, port: 69, open, logger }).start();
  console.log('tftp listening');
}
