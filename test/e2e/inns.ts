// Runs one of the shared test harnesses INSIDE the rack namespace: `ip netns exec NS node --import tsx
// test/e2e/inns.ts postgres|ceph`. The harnesses (test/harness/postgres.ts, ceph.ts) bind 127.0.0.1 of the
// namespace they run in and have no namespace option, so this small process is started in the rack namespace,
// starts the harness, prints `READY <json>` and stops it on SIGTERM/SIGINT or when its stdin closes (the test
// process died). The server in the namespace then reaches PostgreSQL and RGW on its own 127.0.0.1.
// Wanted upstream instead: a `netns` option on startPostgres/startCeph.
import { startPostgres } from '../harness/postgres.ts';
import { startCeph } from '../harness/ceph.ts';

// `inns.ts image-push URL TOKEN push DIR --name N …`: the image CLI (server/cli/image.ts) run from inside the
// namespace, where the server's URL is reachable; exits with the CLI's code.
if (process.argv[2] === 'image-push') {
  const [url, token, ...argv] = process.argv.slice(3);
  const { main: cli } = await import('../../server/cli.ts');
  const code = await cli(['--url', url!, '--token', token!, 'image', ...argv], { out: (l) => process.stdout.write(`${l}\n`) }).catch((e: Error) => {
    process.stderr.write(`image ${argv.join(' ')}: ${e.message}\n`);
    return 1;
  });
  process.exit(code);
}

async function main(kind: string | undefined): Promise<void> {
  let stop: () => Promise<void> | void;
  if (kind === 'postgres') {
    // optional JSON options (PgOptions), e.g. '{"listen":["10.77.0.1"]}' for replicas in other namespaces
    const pg = await startPostgres(JSON.parse(process.argv[3] ?? '{}'));
    const url = await pg.createDatabase('bootfarm_e2e');
    stop = () => pg.stop();
    process.stdout.write(`READY ${JSON.stringify({ url, port: pg.port, pid: pg.pid(), dir: pg.dir })}\n`);
  } else if (kind === 'ceph') {
    const ceph = await startCeph();
    stop = () => ceph.stop();
    process.stdout.write(`READY ${JSON.stringify({ endpoint: ceph.endpoint, region: ceph.region, accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey, pids: ceph.pids(), dir: ceph.dir })}\n`);
  } else {
    throw new Error(`usage: inns.ts postgres|ceph (got ${kind})`);
  }
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
  process.stdin.on('end', () => void shutdown());
  process.stdin.on('close', () => void shutdown());
  process.stdin.resume();
}

if (process.argv[2] !== 'image-push') main(process.argv[2]).catch((e) => {
  process.stderr.write(`inns ${process.argv[2]}: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
