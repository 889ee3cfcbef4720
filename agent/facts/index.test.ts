import { describe, expect, it } from 'vitest';
import { RegisterRequest } from '../../server/contract/agent.ts';
import { Facts } from '../../server/contract/facts.ts';
import { spawnExec } from '../exec.ts';
import { FixtureExec } from '../../test/support/agent/fixtures.ts';
import { collectFacts, NoUuidError, waitForNeighbour } from './index.ts';

const LSBLK = 'lsblk -J -b -d -o NAME,SIZE,TYPE,MODEL,SERIAL,ROTA,TRAN,WWN,VENDOR';
const LLDP = 'lldpcli -f json0 show neighbors details';

describe('collectFacts', () => {
  it('builds a valid report from the QEMU guest outputs, on this machine’s real /sys and /proc', async () => {
    const fx = new FixtureExec({
      dmidecode: 'dmidecode-qemu-smbios.txt',
      'ethtool -i eth0': 'ethtool-i-virtio_net.txt',
      'ethtool -i ifb0': 'ethtool-i-ifb.txt',
      'ethtool -i ifb1': 'ethtool-i-ifb.txt',
      [LSBLK]: 'lsblk-host-columns.json',
      [LLDP]: 'lldpcli-json0-two-neighbors.json',
    });
    const { facts, failures } = await collectFacts({ exec: fx.exec, bootMac: '02:fc:00:00:00:01' });
    // other suites add veths to this machine while we run: their ethtool calls are not in the table
    expect(failures.filter((f) => !/^ethtool:(?!eth0$)/.test(f.probe))).toEqual([]);
    expect(facts.system.uuid).toBe('4c4c4544-0042-3510-8052-b4c04f4e4d32');
    expect(facts.bmc).toMatchObject({ interfaceType: 'KCS (Keyboard Control Style)' });
    expect(facts.memory?.devices).toHaveLength(1);
    expect(facts.memory?.totalBytes).toBeGreaterThan(0);
    const eth0 = facts.nics.find((n) => n.name === 'eth0');
    expect(eth0).toMatchObject({ mac: '02:fc:00:00:00:01', driver: 'virtio_net', busInfo: '0000:00:03.0', link: true, boot: true });
    expect(facts.nics.some((n) => n.name === 'lo')).toBe(false);
    expect(facts.lldp).toHaveLength(2);
    expect(Facts.safeParse(facts).success).toBe(true);
    expect(RegisterRequest.safeParse({ facts, failures }).success).toBe(true);
  });

  it('goes on when probes fail, and takes the UUID from the command line when SMBIOS has none', async () => {
    // this machine really has no SMBIOS: the dmidecode fixture is its real failure (exit 1)
    const fx = new FixtureExec({ dmidecode: 'dmidecode-host-nodmi' });
    const { facts, failures } = await collectFacts({ exec: fx.exec, uuidHint: 'AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE', paths: { productUuid: '/nonexistent', efi: '/nonexistent', lockdown: '/nonexistent' } });
    expect(facts.system).toEqual({ uuid: 'aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee' });
    // no /sys/firmware/efi is a legacy BIOS boot; no lockdown file leaves the kernel section out, not "none"
    expect(facts.firmware).toEqual({ secureBoot: 'not-uefi' });
    expect(facts.kernel).toBeUndefined();
    const byProbe = Object.fromEntries(failures.map((f) => [f.probe, f]));
    expect(byProbe['dmidecode']).toMatchObject({ command: 'dmidecode', exitCode: 1, stderr: expect.stringContaining('/dev/mem') });
    expect(byProbe['lsblk']?.message).toMatch(/ENOENT/);
    expect(byProbe['lldp']).toBeDefined();
    expect(byProbe['ethtool:eth0']).toBeDefined();
    // the probes that need no command still ran
    expect(facts.cpu?.threads).toBeGreaterThan(0);
    expect(facts.nics.map((n) => n.name)).toContain('eth0');
    expect(RegisterRequest.safeParse({ facts, failures }).success).toBe(true);
  });

  it('listens for LLDP with tcpdump when lldpcli fails and bootfarm.lldpcapture asks for it', async () => {
    const fx = new FixtureExec({
      dmidecode: 'dmidecode-qemu-smbios.txt',
      'tcpdump -i eth0 -Q in -c 1 -l -n -xx ether proto 0x88cc': 'tcpdump-xx-lldp.txt',
    });
    const { facts, failures } = await collectFacts({ exec: fx.exec, lldpCaptureSeconds: 1 });
    expect(facts.lldp?.map((n) => [n.interface, n.systemName])).toEqual([['eth0', 'leaf-sw01.rack12.example']]);
    expect(failures.map((f) => f.probe)).toContain('lldp');
    expect(failures.map((f) => f.probe)).not.toContain('lldp-capture:eth0');
  });

  it('refuses to report without any UUID', async () => {
    const fx = new FixtureExec({ dmidecode: 'dmidecode-qemu-q35-default.txt' });
    await expect(collectFacts({ exec: fx.exec, paths: { productUuid: '/nonexistent' } })).rejects.toThrow(NoUuidError);
  });

  it('runs the real commands on this machine (dmidecode fails here, ethtool and lsblk work)', async () => {
    const { facts, failures } = await collectFacts({ exec: spawnExec(), uuidHint: '11111111-2222-3333-4444-555555555555' });
    expect(facts.nics.find((n) => n.name === 'eth0')?.driver).toBe('virtio_net');
    expect(facts.disks?.map((d) => d.name)).toContain('vda');
    expect(failures.map((f) => f.probe)).toContain('dmidecode');
    expect(failures.map((f) => f.probe)).not.toContain('lsblk');
    expect(Facts.safeParse(facts).success).toBe(true);
  });
});

describe('waiting for the switch to speak LLDP', () => {
  const n = (iface: string) => ({ interface: iface, systemName: `sw-${iface}` });
  it('reads again once a second until the boot NIC has a neighbour', async () => {
    const answers = [[n('eth1')], undefined, [n('eth1'), n('eth0')]];
    const sleeps: number[] = [];
    const got = await waitForNeighbour([], async () => answers.shift(), ['eth0'], 10, async (ms) => void sleeps.push(ms));
    expect(got.map((x) => x.interface)).toEqual(['eth1', 'eth0']);
    expect(sleeps).toEqual([1000, 1000, 1000]);
  });
  it('gives up after the configured time and keeps what it saw', async () => {
    let reads = 0;
    const got = await waitForNeighbour([n('eth1')], async () => (reads++, [n('eth1')]), ['eth0'], 3, async () => {});
    expect(reads).toBe(3);
    expect(got).toEqual([n('eth1')]);
  });
  it('with every: reads again until each watched NIC has a neighbour, within the time', async () => {
    const answers = [[n('eth0'), n('eth1')], [n('eth0'), n('eth1'), n('eth2')]];
    const got = await waitForNeighbour([n('eth0')], async () => answers.shift(), ['eth1', 'eth2'], 3, async () => {}, { every: true });
    expect(got.map((x) => x.interface)).toEqual(['eth0', 'eth1', 'eth2']);
    let reads = 0;
    const partial = await waitForNeighbour([n('eth0')], async () => (reads++, [n('eth0'), n('eth1')]), ['eth1', 'eth2'], 3, async () => {}, { every: true });
    expect(reads).toBe(3);
    expect(partial.map((x) => x.interface)).toEqual(['eth0', 'eth1']);
  });
  it('does not wait when the neighbour is already there or nothing is watched', async () => {
    let reads = 0;
    await waitForNeighbour([n('eth0')], async () => (reads++, []), ['eth0'], 10, async () => {});
    await waitForNeighbour([], async () => (reads++, []), [], 10, async () => {});
    expect(reads).toBe(0);
  });
});
