import { describe, expect, it } from 'vitest';
import { GrubValueError, grubEchoText, grubRootPath, grubQuote, renderGrubHoldConfig, renderGrubKernelConfig, renderGrubRetryConfig, renderGrubTopConfig } from './script.ts';

const U = '4c4c4544-0042-3510-8052-b4c04f4e4d32';

describe('GRUB configs (whole-output goldens)', () => {
  it('top-level grub.cfg reads the SMBIOS UUID and chains to the per-node config', () => {
    expect(renderGrubTopConfig({ baseUrl: 'http://10.0.0.1:8080/' })).toBe(
      [
        '# bootfarm: chain to the per-node config by SMBIOS UUID',
        'set timeout=0',
        'if smbios --type 1 --get-uuid 8 --set bf_uuid; then',
        '  configfile "/grub/${bf_uuid}.cfg"',
        'fi',
        "echo 'bootfarm: this machine reports no SMBIOS UUID (or the per-node config could not be fetched); retrying in 60 s'",
        'sleep 60',
        "configfile '/grub/grub.cfg'",
        '',
      ].join('\n'),
    );
  });

  it('stage-1 config quotes every argument as one literal word', () => {
    expect(
      renderGrubKernelConfig({
        comment: `stage-1 for ${U} (discovered)`,
        kernelUrl: 'http://10.0.0.1/images/' + 'a'.repeat(64),
        initrdUrl: 'http://10.0.0.1/images/' + 'b'.repeat(64),
        args: ['console=ttyS0', 'bootfarm.token=abc_-DEF', 'x=${y};reboot'],
        retryUrl: `http://10.0.0.1/grub/${U}.cfg`,
      }),
    ).toBe(
      [
        `# bootfarm: stage-1 for ${U} (discovered)`,
        `if linux '/images/${'a'.repeat(64)}' 'console=ttyS0' 'bootfarm.token=abc_-DEF' 'x=\${y};reboot'; then`,
        `  if initrd '/images/${'b'.repeat(64)}'; then`,
        '    boot',
        '  fi',
        'fi',
        "echo 'bootfarm: boot failed; retrying in 10 s'",
        'sleep 10',
        `configfile '/grub/${U}.cfg'`,
        '',
      ].join('\n'),
    );
  });

  it('hold config says why and exits to the firmware', () => {
    expect(renderGrubHoldConfig({ uuid: U, state: 'maintenance', reason: 'replacing PSU' })).toBe(
      [`# bootfarm: node ${U} is maintenance`, `echo 'bootfarm: node ${U} is maintenance: replacing PSU'`, "echo 'bootfarm: not booting; exiting to the next boot device'", 'sleep 5', 'exit 1', ''].join('\n'),
    );
  });

  it('retry config waits and fetches the per-node config again', () => {
    expect(renderGrubRetryConfig({ message: 'no stage-1 image', seconds: 30.7, retryUrl: `http://10.0.0.1/grub/${U}.cfg` })).toBe(
      ['# bootfarm: waiting', "echo 'bootfarm: no stage-1 image'", "echo 'bootfarm: asking again in 30 s'", 'sleep 30', `configfile '/grub/${U}.cfg'`, ''].join('\n'),
    );
  });
});

describe('GRUB quoting', () => {
  it.each([
    ['a single quote', "a'b"],
    ['a quote that would close the word and run a command', "x'; reboot; echo '"],
    ['a newline', 'a\nreboot'],
    ['a carriage return', 'a\rb'],
    ['a NUL', 'a\u0000b'],
  ])('refuses a value with %s', (_, v) => {
    expect(() => grubQuote(v)).toThrow(GrubValueError);
  });

  it('keeps $, ;, spaces, backslashes and double quotes literal inside single quotes', () => {
    expect(grubQuote('$x; "y" \\z')).toBe(`'$x; "y" \\z'`);
  });

  it('echo text never throws and carries no quote or line end', () => {
    const t = grubEchoText("held: it's\nreboot; ${x} `y`");
    expect(t).toBe("'bootfarm: held: it?s?reboot; ??x? ?y?'");
  });

  it('refuses a kernel argument with a quote, https, and a quote in a path', () => {
    expect(() => renderGrubKernelConfig({ comment: '', kernelUrl: 'http://h/k', initrdUrl: 'http://h/i', args: ["a='b"], retryUrl: 'http://h/r' })).toThrow(/kernel argument/);
    expect(() => grubRootPath('https://h/k')).toThrow(/only http/);
    expect(() => grubRootPath("http://h/k'x")).toThrow(GrubValueError);
  });

  it('writes paths on $root, without a device: the same config works from (tftp,SERVER) and (http,SERVER:PORT)', () => {
    expect(grubRootPath('http://10.0.0.1:8080/images/abc')).toBe("'/images/abc'");
    expect(grubRootPath('http://[fd00::1]:8080/grub/x.cfg')).toBe("'/grub/x.cfg'");
    expect(grubRootPath('http://h')).toBe("'/'");
  });
});
