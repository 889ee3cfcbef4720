// A tiny HTTP server for the QEMU tests: serves boot.ipxe (an iPXE script that chains to /done), Debian's
// iPXE binaries by name (ipxe.efi, snponly.efi, undionly.kpxe: the same opener the TFTP server and the
// product's boot route use), and prints every request line as "GET /path" on stdout, plus
// "SENT /path BYTES" when a binary went out whole, so the test sees what the firmware and iPXE fetched.
//   node --import tsx http-probe.ts ADDRESS PORT
import { createServer } from 'node:http';
import { createFsOpener } from '../../../boot/tftp/fs-open.ts';

const [address = '127.0.0.1', port = '8080'] = process.argv.slice(2);
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
