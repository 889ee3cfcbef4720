import { describe, expect, it } from 'vitest';
import { parseAgentCmdline, splitCmdline } from './cmdline.ts';
import { bootDestinations } from './flow.ts';

describe('splitCmdline', () => {
  it('splits like the kernel: quotes group, a later key wins, bare words are flags', () => {
    const m = splitCmdline('BOOT_IMAGE=/vmlinuz  quiet foo="a b c" x=1 x=2\n');
    expect([...m]).toEqual([
      ['BOOT_IMAGE', '/vmlinuz'],
      ['quiet', ''],
      ['foo', 'a b c'],
      ['x', '2'],
    ]);
  });
});

describe('parseAgentCmdline', () => {
  const D = 'd'.repeat(64);
  it('reads a compute command line as the server writes it', () => {
    expect(
      parseAgentCmdline(
        `console=ttyS0 bootfarm.server=http://10.0.0.1:8080/ bootfarm.uuid=4C4C4544-0042-3510-8052-B4C04F4E4D32 bootfarm.token=t0k bootfarm.mode=compute bootfarm.kernel=${D} bootfarm.heartbeat=15 BOOTIF=01-52-54-00-12-34-56`,
      ),
    ).toEqual({
      server: 'http://10.0.0.1:8080',
      token: 't0k',
      uuid: '4c4c4544-0042-3510-8052-b4c04f4e4d32',
      mode: 'compute',
      dryRun: false,
      kernelDigest: D,
      heartbeatSeconds: 15,
      bootif: '01-52-54-00-12-34-56',
      selfTests: [],
    });
  });
  it('reads an IPv6 boot network\'s command line: the server and the iSCSI portal as IPv6 literals in brackets (RFC 3986 §3.2.2)', () => {
    // what server/api/agent.ts writes for a profile whose portal is [fd00:77::1]:3260 behind http.publicUrl http://[fd00:77::1]:8080
    const c = parseAgentCmdline(
      `console=ttyS0,115200 bootfarm.server=http://[fd00:77::1]:8080 bootfarm.uuid=4C4C4544-0042-3510-8052-B4C04F4E4D32 bootfarm.token=t0k bootfarm.mode=compute bootfarm.iscsi.portal=[fd00:77::1]:3260 bootfarm.iscsi.target=iqn.2026-11.io.bootfarm:4c4c4544`,
    );
    expect([c.server, c.iscsiPortal, c.iscsiTarget]).toEqual(['http://[fd00:77::1]:8080', '[fd00:77::1]:3260', 'iqn.2026-11.io.bootfarm:4c4c4544']);
    // the agent joins paths onto it; the URL it fetches keeps the brackets and the port
    expect(new URL(`${c.server}/api/v1/agent/x/heartbeat`).host).toBe('[fd00:77::1]:8080');
    // and the compute OS's network plan keeps both addresses reachable, unbracketed as the kernel writes them
    expect(bootDestinations(c)).toEqual(['fd00:77::1']);
    expect(bootDestinations({ server: 'http://[fd00:77::1]:8080', iscsiPortal: '[fd00:77::2]' })).toEqual(['fd00:77::1', 'fd00:77::2']);
  });
  it('reads the self-tests a profile asks for (bootfarm.selftest=a,b), unknown names included: the flow reports them', () => {
    expect(parseAgentCmdline('bootfarm.server=http://s bootfarm.token=t bootfarm.selftest=hypervisor,disk').selfTests).toEqual(['hypervisor', 'disk']);
  });
  it('defaults to stage1 and understands bootfarm.dryrun', () => {
    const c = parseAgentCmdline('bootfarm.server=http://s bootfarm.token=t bootfarm.dryrun=1');
    expect([c.mode, c.dryRun]).toEqual(['stage1', true]);
  });
  it.each([
    ['no server', 'bootfarm.token=t', /bootfarm\.server= is missing/],
    ['no token', 'bootfarm.server=http://s', /bootfarm\.token= is missing/],
    ['a non-http server', 'bootfarm.server=tftp://s bootfarm.token=t', /http\(s\) URL/],
    ['a bad mode', 'bootfarm.server=http://s bootfarm.token=t bootfarm.mode=rescue', /mode/],
    ['a bad digest', 'bootfarm.server=http://s bootfarm.token=t bootfarm.kernel=abc', /kernelDigest.*sha256/],
    ['a bad uuid', 'bootfarm.server=http://s bootfarm.token=t bootfarm.uuid=node1', /uuid.*SMBIOS UUID/],
  ])('refuses %s with a message naming the parameter', (_, text, msg) => {
    expect(() => parseAgentCmdline(text)).toThrow(msg);
  });
});
