// The real PXE client: QEMU's iPXE NIC ROM (SeaBIOS, -boot n) on a tap in a namespace, against our
// server in full mode. It must get an address and the HTTP URL of boot.ipxe (not undionly.kpxe: the
// user class iPXE breaks the chain loop), then fetch the script, which chains to /done with its MAC.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, type Proc, ip, repoRoot } from '../../test/support/dhcp/netns.ts';
import { requireCommand, requireFiles } from '../../test/harness/require.ts';

const lab = new Lab();
const dir = mkdtempSync(join(tmpdir(), 'bfdhcp-q-'));
const TAP = `bft${lab.id}`;
const MAC = '52:54:00:bf:00:07';

describe('QEMU iPXE ROM against the server (full mode)', () => {
  let server: Proc;
  let http: Proc;
  beforeAll(async () => {
    // no QEMU is a broken test machine (deps/dhcp.txt), not a reason to skip
    requireCommand('qemu-system-x86_64', 'qemu-system-x86');
    requireFiles('apt-get install ipxe-qemu (deps/dhcp.txt)', '/usr/lib/ipxe/qemu/pxe-virtio.rom');
    const S = lab.ns('q');
    ip('-n', S, 'tuntap', 'add', TAP, 'mode', 'tap');
    ip('-n', S, 'addr', 'add', '10.68.0.1/24', 'dev', TAP);
    ip('-n', S, 'link', 'set', TAP, 'up');
    const config = join(dir, 'dhcp.json');
    writeFileSync(
      config,
      JSON.stringify({
        mode: 'full',
        interface: TAP,
        serverIp: '10.68.0.1',
        httpBase: 'http://10.68.0.1:8080',
        pools: [{ subnet: '10.68.0.0/24', range: { start: '10.68.0.100', end: '10.68.0.110' }, routers: ['10.68.0.1'] }],
        logLevel: 'debug',
      }),
    );
    server = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/serve.ts'), config]);
    http = lab.run(S, ['node', '--import', 'tsx', join(repoRoot, 'test/support/dhcp/http-probe.ts'), '10.68.0.1', '8080']);
    await server.waitFor((l) => l === '{"msg":"ready"}', 30_000);
    await http.waitFor((l) => l === 'listening', 30_000);
    // TCG: no KVM here (FACTS.md)
    lab.run(S, ['qemu-system-x86_64', '-accel', 'tcg', '-m', '128', '-nographic', '-display', 'none', '-serial', 'none', '-monitor', 'none', '-netdev', `tap,id=n0,ifname=${TAP},script=no,downscript=no`, '-device', `virtio-net-pci,netdev=n0,mac=${MAC}`, '-boot', 'n']);
  });
  afterAll(async () => {
    await lab.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gets a lease with the boot.ipxe URL, fetches it, and chains with its MAC', { timeout: 120_000 }, async () => {
    const done = await http.waitFor((l) => l.startsWith('GET /done'), 100_000).catch((err: Error) => {
      throw new Error(`${err.message}\nhttp:\n${http.lines.join('\n')}\ndhcp:\n${server.lines.slice(-30).join('\n')}`);
    });
    expect(http.lines).toContain('GET /boot.ipxe');
    expect(done).toMatch(/mac=52(:|%3A)54(:|%3A)00(:|%3A)bf(:|%3A)00(:|%3A)07/i);
    const bound = server.lines.find((l) => l.includes('"lease bound"') && l.includes(MAC));
    expect(bound).toMatch(/"ip":"10\.68\.0\.10\d"/);
    // never offered undionly.kpxe: the ROM iPXE asked only once per exchange and chained straight to HTTP
    expect(http.lines.filter((l) => l === 'GET /boot.ipxe')).toHaveLength(1);
  });
});
