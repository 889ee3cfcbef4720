import { describe, expect, it } from 'vitest';
import { echoText, renderBootScript, renderHoldScript, renderKernelScript, renderRetryScript, safeArg, safeCmdline, ScriptValueError } from './script.ts';

describe('iPXE scripts (whole-output goldens)', () => {
  it('stage-1 kernel script', () => {
    expect(
      renderKernelScript({
        comment: 'stage-1 for 4c4c4544-0042-3510-8052-b4c04f4e4d32 (discovered)',
        kernelUrl: 'http://10.0.0.1:8080/images/' + 'a'.repeat(64),
        initrdUrl: 'http://10.0.0.1:8080/images/' + 'b'.repeat(64),
        args: ['console=ttyS0', 'bootfarm.token=abc_-DEF'],
        retryUrl: 'http://10.0.0.1:8080/ipxe/4c4c4544-0042-3510-8052-b4c04f4e4d32',
      }),
    ).toBe(
      [
        '#!ipxe',
        '# bootfarm: stage-1 for 4c4c4544-0042-3510-8052-b4c04f4e4d32 (discovered)',
        `kernel http://10.0.0.1:8080/images/${'a'.repeat(64)} initrd=initrd.img console=ttyS0 bootfarm.token=abc_-DEF BOOTIF=01-\${netX/mac:hexhyp} || goto failed`,
        `initrd --name initrd.img http://10.0.0.1:8080/images/${'b'.repeat(64)} || goto failed`,
        'boot || goto failed',
        ':failed',
        'echo bootfarm: boot failed; retrying in 10 s',
        'sleep 10',
        'chain --autofree http://10.0.0.1:8080/ipxe/4c4c4544-0042-3510-8052-b4c04f4e4d32',
        '',
      ].join('\n'),
    );
  });

  it('hold script says why and exits', () => {
    expect(renderHoldScript({ uuid: 'u-1', state: 'quarantined', reason: '3 failed rebuilds' })).toBe(
      ['#!ipxe', '# bootfarm: node u-1 is quarantined', 'echo bootfarm: node u-1 is quarantined: 3 failed rebuilds', 'echo bootfarm: not booting; exiting to the next boot device', 'sleep 5', 'exit 1', ''].join('\n'),
    );
  });

  it('boot.ipxe chains by ${uuid} with URI-encoded identity', () => {
    const s = renderBootScript({ baseUrl: 'http://10.0.0.1:8080/' });
    expect(s.split('\n')[0]).toBe('#!ipxe');
    expect(s).toContain('chain --autofree http://10.0.0.1:8080/ipxe/${uuid}?mac=${netX/mac:hexhyp}&serial=${serial:uristring}&manufacturer=${manufacturer:uristring}&product=${product:uristring}&platform=${platform:uristring}&buildarch=${buildarch:uristring} || goto failed');
  });

  it('retry script waits and chains back', () => {
    expect(renderRetryScript({ message: 'no image', seconds: 30, retryUrl: 'http://h/ipxe/x' })).toContain('sleep 30\nchain --autofree http://h/ipxe/x\n');
  });
});

describe('iPXE injection', () => {
  const hostile = ['a b', 'x\nshell', 'x||shell', '${net0/ip}', 'a;b', '"q"', "x'y", 'tab\there', 'x&&reboot'];
  it.each(hostile)('rejects %j as a kernel argument', (v) => {
    expect(() => safeArg(v)).toThrow(ScriptValueError);
  });
  it('rejects a URL that tries to add a command', () => {
    expect(() => renderKernelScript({ comment: 'c', kernelUrl: 'http://h/k\nshell', initrdUrl: 'http://h/i', args: [], retryUrl: 'http://h/' })).toThrow(ScriptValueError);
    expect(() => renderKernelScript({ comment: 'c', kernelUrl: 'http://h/${x}', initrdUrl: 'http://h/i', args: [], retryUrl: 'http://h/' })).toThrow(ScriptValueError);
  });
  it('echo text cannot break out of its line or expand settings', () => {
    const t = echoText('evil\n:label\nshell ${ip} && reboot');
    expect(t).not.toMatch(/[\n${}&]/);
    const script = renderHoldScript({ uuid: 'u', state: 'maintenance', reason: 'x\nchain http://evil/' });
    expect(script.split('\n').filter((l) => l.startsWith('chain'))).toEqual([]);
  });
  it('splits a command line and validates each part', () => {
    expect(safeCmdline(' quiet  console=ttyS0 ')).toEqual(['quiet', 'console=ttyS0']);
    expect(() => safeCmdline('quiet ${x}')).toThrow(/not allowed/);
  });
});
