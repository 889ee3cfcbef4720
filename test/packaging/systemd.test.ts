// The systemd unit and sysusers file (packaging/systemd/, issue 17 item 2), checked offline with Debian's systemd
// tools. There is no systemd as PID 1 on this machine, so the unit is verified (systemd-analyze verify: every
// directive parsed, ExecStart executable), scored (systemd-analyze security --offline) and its user created in a
// scratch root (systemd-sysusers --root), not started.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRelease, ROOT } from '../harness/release.ts';
import { requireCommand } from '../harness/require.ts';

const run = promisify(execFile);
const tmp = mkdtempSync(join(tmpdir(), 'bf-systemd-'));
const unitText = readFileSync(join(ROOT, 'packaging/systemd/bootfarm.service'), 'utf8');
const BUILT_CLI = join(ROOT, 'build/dist/server/cli.js');

/** Directive values of the unit, by key (a key may repeat). */
const directives = (text: string) => {
  const out = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  }
  return out;
};

/** systemd-analyze verify on a copy of the unit whose ExecStart is the built CLI (the shipped path,
 *  /usr/local/bin/bootfarm, is where `npm install -g` puts the bin, absent on this machine); returns its output. */
async function verify(text: string): Promise<string> {
  const dir = mkdtempSync(join(tmp, 'unit-'));
  const path = join(dir, 'bootfarm.service');
  writeFileSync(path, text.replace(/^ExecStart=\/usr\/local\/bin\/bootfarm /m, `ExecStart=${BUILT_CLI} `));
  try {
    const { stdout, stderr } = await run('systemd-analyze', ['verify', '--man=no', path]);
    return stdout + stderr;
  } catch (e) {
    const err = e as { stdout: string; stderr: string; code: number };
    return `exit ${err.code}: ${err.stdout}${err.stderr}`;
  }
}

beforeAll(() => {
  requireCommand('systemd-analyze', 'systemd');
  buildRelease();
}, 600_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('packaging/systemd/bootfarm.service', () => {
  it('runs the installed bin as its own user with only CAP_NET_BIND_SERVICE, a state directory and the usual hardening', () => {
    const d = directives(unitText);
    const one = (k: string) => d.get(k)?.join(' ');
    expect(one('ExecStart')).toBe('/usr/local/bin/bootfarm serve');
    expect(one('User')).toBe('bootfarm');
    expect(one('Group')).toBe('bootfarm');
    expect(d.has('DynamicUser')).toBe(false);
    expect(one('AmbientCapabilities')).toBe('CAP_NET_BIND_SERVICE');
    expect(one('CapabilityBoundingSet')).toBe('CAP_NET_BIND_SERVICE');
    expect(one('StateDirectory')).toBe('bootfarm');
    expect(one('Environment')).toContain('BOOTFARM_DATA_DIR=/var/lib/bootfarm');
    for (const [k, v] of Object.entries({ ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', NoNewPrivileges: 'yes', PrivateDevices: 'yes', RestrictNamespaces: 'yes', LockPersonality: 'yes', UMask: '0077' })) {
      expect(one(k), k).toBe(v);
    }
    expect(one('RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6 AF_NETLINK');
    expect(d.get('SystemCallFilter')).toContain('@system-service');
    // V8 needs writable+executable memory; DHCP uses plain UDP sockets (no raw sockets, no SO_BINDTODEVICE)
    expect(d.has('MemoryDenyWriteExecute')).toBe(false);
    expect(unitText).not.toMatch(/^[^#].*CAP_NET_(RAW|ADMIN)/m);
  });

  it('passes systemd-analyze verify with no warning', async () => {
    expect(await verify(unitText)).toBe('');
  });

  it('verify names a misspelt directive and a missing ExecStart binary (the check can fail)', async () => {
    expect(await verify(unitText.replace('ProtectHome=yes', 'ProtectHomes=yes'))).toMatch(/Unknown key 'ProtectHomes'/);
    expect(await verify(unitText.replace(/^ExecStart=.*$/m, 'ExecStart=/nonexistent/bootfarm serve'))).toMatch(/\/nonexistent\/bootfarm is not executable/);
  });

  it('scores as OK or better in systemd-analyze security --offline', async () => {
    const path = join(tmp, 'bootfarm.service');
    writeFileSync(path, unitText);
    const { stdout } = await run('systemd-analyze', ['security', '--offline=true', '--no-pager', path]);
    const m = /Overall exposure level for bootfarm\.service: ([\d.]+) (\w+)/.exec(stdout);
    expect(m, stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(3);
    expect(['OK', 'SAFE']).toContain(m![2]);
  });
});

describe('packaging/systemd/bootfarm.sysusers', () => {
  it('creates a system user bootfarm with home /var/lib/bootfarm and no login shell', async () => {
    requireCommand('systemd-sysusers', 'systemd');
    const root = join(tmp, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    await run('systemd-sysusers', [`--root=${root}`, join(ROOT, 'packaging/systemd/bootfarm.sysusers')]);
    const entry = readFileSync(join(root, 'etc/passwd'), 'utf8').split('\n').find((l) => l.startsWith('bootfarm:'));
    expect(entry).toBeDefined();
    const [, , uid, , , home, shell] = entry!.split(':');
    expect(Number(uid)).toBeLessThan(1000);
    expect(home).toBe('/var/lib/bootfarm');
    expect(shell).toMatch(/nologin$/);
    expect(readFileSync(join(root, 'etc/group'), 'utf8')).toMatch(/^bootfarm:/m);
  });
});
