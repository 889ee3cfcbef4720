import { describe, expect, it } from 'vitest';
import { parseAgentCmdline, splitCmdline } from './cmdline.ts';

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
