// The storm's byte bound: how fast this machine moves the storm's bytes at all, measured in the same run on the
// same path (server namespace → veth → client namespace). A plain node:http server holds each file in one Buffer
// and answers `res.end(buf)` (what bootfarm's RAM tier does for a hot blob, without the database, the boot
// protocol or any check); the client plays N nodes, `concurrency` at once, each on a keep-alive connection of
// its own, fetching per node the same files the storm moved (the iPXE binary — over HTTP here, by TFTP in the
// storm — and the stage-1 and compute kernels and initrds) and counting the bytes without keeping them.
//   server: node --import tsx bench/storm/bound.ts serve IP PORT FILE...        → prints READY
//   client: node --import tsx bench/storm/bound.ts fetch '{"base":"http://IP:PORT","files":5,"nodes":N,"concurrency":C}'
//           → prints DONE {"ms":…,"bytes":…}
import { createServer, Agent, request } from 'node:http';
import { readFileSync } from 'node:fs';

const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  const [ip, port, ...files] = args;
  const bodies = files.map((f) => readFileSync(f));
  const server = createServer((req, res) => {
    const body = bodies[Number(req.url?.slice(1))];
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 65_000;
  server.listen({ host: ip, port: Number(port), backlog: 4096 }, () => process.stdout.write('READY\n'));
  process.on('SIGTERM', () => process.exit(0));
} else if (mode === 'fetch') {
  const o = JSON.parse(args[0]!) as { base: string; files: number; nodes: number; concurrency: number };
  const get = (agent: Agent, path: string) =>
    new Promise<number>((resolve, reject) => {
      const u = new URL(path, o.base);
      const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => (n += d.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`${path}: ${res.statusCode}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  let next = 0;
  let bytes = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(o.concurrency, o.nodes) }, async () => {
      while (next < o.nodes) {
        next++;
        const agent = new Agent({ keepAlive: true, maxSockets: 1 });
        for (let f = 0; f < o.files; f++) {
          const n = await get(agent, `/${f}`); // not `bytes += await …`: that reads bytes before the wait
          bytes += n;
        }
        agent.destroy();
      }
    }),
  );
  const ms = performance.now() - t0;
  process.stdout.write(`DONE ${JSON.stringify({ ms, bytes })}\n`, () => process.exit(0));
} else {
  process.stderr.write('usage: bound.ts serve IP PORT FILE... | fetch JSON\n');
  process.exit(2);
}
