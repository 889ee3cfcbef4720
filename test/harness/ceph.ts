// A throw-away single-node Ceph cluster with one RADOS Gateway (S3) on 127.0.0.1, for tests, benchmarks and
// the e2e rack. Built from Debian's packages (ceph-mon ceph-osd radosgw ceph-common, no mgr) with the settings
// measured in /work/shared/FACTS.md: memstore, auth none, msgr2 "crc" mode for clients, tiny pg counts and a
// 0.1 s paxos propose interval (else start-up takes ~18 s). Everything lives in a temp dir on random free
// ports; stop() ends every daemon by its PID and deletes the dir. ~3 s to start on this machine.
//
//   const ceph = await startCeph();            // { endpoint, accessKeyId, secretAccessKey, region, … }
//   …
//   await ceph.stop();
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { requireCommand } from './require.ts';

const run = promisify(execFile);

export interface CephOptions {
  /** memstore size in bytes (RAM); default 512 MiB */
  memBytes?: number;
  /** start-up budget in ms */
  timeoutMs?: number;
  /** extra lines for [global] (e.g. 'debug rgw = 1') */
  extraConf?: string[];
  /** write an RGW ops log to a file (rgw enable ops log); read it with opsLog() */
  opsLog?: boolean;
}

export interface CephCluster {
  /** http://127.0.0.1:PORT — the RGW S3 endpoint (path-style) */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  dir: string;
  rgwPort: number;
  monPort: number;
  /** PIDs of the daemons still running */
  pids(): number[];
  /** stop only the gateway (the cluster stays up): simulates "RGW down" */
  stopRgw(): Promise<void>;
  /** lines of the RGW log (for debugging failed tests) */
  rgwLog(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, deadline: number, probe: () => Promise<T | undefined>): Promise<T> {
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`ceph harness: timed out waiting for ${what}${last ? `: ${String((last as Error).message ?? last)}` : ''}`);
}

async function stopPid(child: ChildProcess, graceMs = 1000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, graceMs);
  await exited;
  clearTimeout(t);
}

export async function startCeph({ memBytes = 512 * 1024 * 1024, timeoutMs = 60_000, extraConf = [], opsLog = false }: CephOptions = {}): Promise<CephCluster> {
  // a missing daemon fails naming its Debian package (deps/images.txt), not with a bare ENOENT mid-bootstrap
  for (const [cmd, pkg] of [['ceph-mon', 'ceph-mon'], ['ceph-osd', 'ceph-osd'], ['radosgw', 'radosgw'], ['ceph', 'ceph-common']] as const) requireCommand(cmd, pkg);
  const dir = mkdtempSync(join(tmpdir(), 'bfceph-'));
  const children: ChildProcess[] = [];
  let rgwChild: ChildProcess | undefined;
  const deadline = Date.now() + timeoutMs;
  const conf = join(dir, 'ceph.conf');
  // If the test process dies without calling stop(), do not leave daemons behind (by PID, synchronously).
  const onExit = () => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null) try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ctrl-C / kill of a bench or test run: stop the daemons, then let the signal do what it would have done.
  const onSignal = (sig: NodeJS.Signals) => {
    onExit();
    process.off('exit', onExit);
    process.kill(process.pid, sig);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const stopAll = async () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // memstore data is thrown away anyway: no need for a slow clean shutdown.
    await Promise.all(children.map((c) => stopPid(c)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [monPort, rgwPort] = await Promise.all([freePort(), freePort()]);
    const fsid = randomUUID();
    for (const d of ['run', 'log', 'mon/ceph-a', 'osd/ceph-0', 'rgw']) mkdirSync(join(dir, d), { recursive: true });
    const accessKeyId = 'BF' + randomBytes(9).toString('hex').toUpperCase();
    const secretAccessKey = randomBytes(20).toString('hex');
    writeFileSync(
      conf,
      [
        '[global]',
        `fsid = ${fsid}`,
        `mon host = [v2:127.0.0.1:${monPort}]`,
        'mon initial members = a',
        'auth cluster required = none',
        'auth service required = none',
        'auth client required = none',
        'auth allow insecure global id reclaim = true',
        'ms bind ipv6 = false',
        'public addr = 127.0.0.1',
        'cluster addr = 127.0.0.1',
        `run dir = ${dir}/run`,
        `admin socket = ${dir}/run/$name.asok`,
        `pid file = ${dir}/run/$name.pid`,
        `log file = ${dir}/log/$name.log`,
        `keyring = ${dir}/keyring`,
        `mon data = ${dir}/mon/$cluster-$id`,
        `osd data = ${dir}/osd/$cluster-$id`,
        'osd objectstore = memstore',
        `memstore device bytes = ${memBytes}`,
        'osd pool default size = 1',
        'osd pool default min size = 1',
        'osd pool default pg num = 8',
        'osd pool default pgp num = 8',
        'osd pool default pg autoscale mode = off',
        'mon max pg per osd = 1000',
        'mon allow pool size one = true',
        'mon allow pool delete = true',
        'mon warn on pool no redundancy = false',
        'osd crush chooseleaf type = 0',
        'paxos propose interval = 0.1',
        'osd max object name len = 256',
        'osd max object namespace len = 64',
        'crash dir = ' + `${dir}/crash`,
        ...extraConf,
        '',
        '[client]',
        // Without crc the gateway fails "failed to fetch mon config" (-13) under auth none (FACTS.md).
        'ms mon client mode = crc',
        '',
        '[client.rgw.a]',
        'ms mon client mode = crc',
        `rgw data = ${dir}/rgw`,
        `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
        'rgw dns name = 127.0.0.1',
        ...(opsLog ? ['rgw enable ops log = true', `rgw ops log file path = ${dir}/log/ops.log`, 'rgw ops log rados = false'] : []),
        '',
      ].join('\n'),
    );
    const env = { ...process.env, CEPH_CONF: conf };
    const ceph = (...args: string[]) => run('ceph', ['-c', conf, '--connect-timeout', '10', ...args], { env, timeout: 20_000 });
    const daemon = (cmd: string, args: string[]) => {
      const child = spawn(cmd, ['-c', conf, '-f', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr?.on('data', (b: Buffer) => {
        if (err.length < 8192) err += b.toString();
      });
      child.once('exit', (code, sig) => {
        if (code && code !== 0) (child as ChildProcess & { bfError?: string }).bfError = `${cmd} exited ${code ?? sig}: ${err}`;
      });
      children.push(child);
      return child;
    };

    await run('ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *'], { env });
    await run('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, join(dir, 'monmap')], { env });
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')], { env });
    daemon('ceph-mon', ['-i', 'a']);
    const osdUuid = randomUUID();
    const { stdout: idOut } = await waitFor('the monitor', deadline, async () => ceph('osd', 'new', osdUuid));
    const osdId = idOut.trim();
    await run('ceph-osd', ['-c', conf, '-i', osdId, '--mkfs', '--osd-uuid', osdUuid], { env });
    daemon('ceph-osd', ['-i', osdId]);
    await waitFor('the OSD to come up', deadline, async () => {
      const { stdout } = await ceph('osd', 'stat', '-f', 'json');
      return (JSON.parse(stdout) as { num_up_osds?: number }).num_up_osds === 1 ? true : undefined;
    });
    const startRgw = () => {
      rgwChild = daemon('radosgw', ['-n', 'client.rgw.a']);
      return rgwChild;
    };
    startRgw();
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor('the gateway to answer HTTP', deadline, async () => {
      const dead = children.find((c) => (c as ChildProcess & { bfError?: string }).bfError);
      if (dead) throw new Error((dead as ChildProcess & { bfError?: string }).bfError);
      const res = await fetch(endpoint + '/', { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.status > 0 ? true : undefined;
    });
    await run(
      'radosgw-admin',
      ['-c', conf, '-n', 'client.rgw.a', 'user', 'create', '--uid', 'bootfarm', '--display-name', 'bootfarm', '--access-key', accessKeyId, '--secret', secretAccessKey],
      { env, timeout: 30_000 },
    );
    return {
      endpoint,
      region: 'default',
      accessKeyId,
      secretAccessKey,
      dir,
      rgwPort,
      monPort,
      pids: () => children.filter((c) => c.exitCode === null && c.signalCode === null).map((c) => c.pid!),
      stopRgw: async () => {
        if (rgwChild) await stopPid(rgwChild);
      },
      rgwLog: () => {
        const p = join(dir, 'log', 'client.rgw.a.log');
        return existsSync(p) ? readFileSync(p, 'utf8') : '';
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}
