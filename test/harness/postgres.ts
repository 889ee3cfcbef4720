// A throwaway Debian PostgreSQL cluster for tests: initdb (as the postgres user — initdb refuses root) in a temp
// dir, listening on 127.0.0.1 and a socket in that dir, on a free port; stopped by PID and removed afterwards.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';

export interface PgCluster {
  url: string;
  port: number;
  dir: string;
  /** a fresh database on the cluster, for one suite */
  createDatabase(name: string): Promise<string>;
  /** stop (fast) — the cluster can be started again with start() */
  stopServer(): void;
  start(): void;
  pid(): number | null;
  stop(): void;
}

export function pgBinDir(): string {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) throw new Error('PostgreSQL is not installed (Debian package "postgresql"); run `make deps`');
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error(`no initdb under ${root}`);
  return join(root, versions[0], 'bin');
}

const asPostgres = (cmd: string, args: string[]) => {
  const r = spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`);
  return r.stdout;
};

export interface PgOptions {
  /** addresses to listen on besides 127.0.0.1 (e.g. a rack bridge, so replicas in other namespaces connect over
   * real TCP that a test can cut) */
  listen?: string[];
  /** postgresql.conf settings (-c name=value) */
  settings?: Record<string, string | number>;
}

export async function startPostgres({ listen = [], settings = {} }: PgOptions = {}): Promise<PgCluster> {
  const bin = pgBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'bf-pg-'));
  chmodSync(dir, 0o755);
  execFileSync('chown', ['postgres:postgres', dir]);
  const data = join(dir, 'data');
  const port = await freePort();
  asPostgres(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '-N']);
  // initdb trusts loopback only; a test cluster on other addresses trusts their networks too (throw-away data)
  if (listen.length) appendFileSync(join(data, 'pg_hba.conf'), 'host all all 0.0.0.0/0 trust\n');
  const extra = Object.entries(settings).map(([k, v]) => ` -c ${k}=${v}`).join('');
  const opts = `-c listen_addresses=${['127.0.0.1', ...listen].join(',')} -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200${extra}`;
  const start = () => asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-o', opts, '-l', join(dir, 'log'), '-w', '-t', '60', 'start']);
  start();
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const pid = () => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    } catch {
      return null;
    }
  };
  const stopServer = () => {
    const p = pid();
    if (!p) return;
    try {
      asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']);
    } catch {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
  };
  let dbSeq = 0;
  return {
    url,
    port,
    dir,
    pid,
    start,
    stopServer,
    async createDatabase(name: string) {
      const db = `${name.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${++dbSeq}`;
      asPostgres(join(bin, 'psql'), ['-h', dir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-v', 'ON_ERROR_STOP=1', '-qc', `create database ${db}`]);
      return `postgres://postgres@127.0.0.1:${port}/${db}`;
    },
    stop() {
      stopServer();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
