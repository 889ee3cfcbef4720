// A tiny HTTP server for the QEMU test: serves boot.ipxe (an iPXE script that chains to /done) and
// prints every request line as "GET /path" on stdout, so the test sees what iPXE fetched.
//   node --import tsx http-probe.ts ADDRESS PORT
import { createServer } from 'node:http';

const [address = '127.0.0.1', port = '8080'] = process.argv.slice(2);
const script = `#!ipxe\necho bootfarm: boot.ipxe reached\nchain http://${address}:${port}/done?mac=\${net0/mac}&uuid=\${uuid}\n`;
createServer((req, res) => {
  console.log(`${req.method} ${req.url}`);
  if (req.url === '/boot.ipxe') res.end(script);
  else if (req.url?.startsWith('/done')) res.end('#!ipxe\necho done\nsleep 600\n');
  else (res.statusCode = 404), res.end();
}).listen(Number(port), address, () => console.log('listening'));
