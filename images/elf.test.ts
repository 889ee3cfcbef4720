import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { isElf, parseDependsField, parseDynamic, parseInterpreter } from './elf.ts';
import { indexSha256, machineDebDirs, parseIndexSha256, parsePolicy } from './build.ts';

// Real output: `readelf -dW usr/sbin/lldpcli` (lldpd 1.0.16-1+deb12u1) and `readelf -lW sbin/kexec`
// (kexec-tools 1:2.0.25-3+deb12u3), both run on the unpacked Debian packages; `apt-cache policy` on Debian 12.
const fixture = (name: string): string => fs.readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('ELF parsing', () => {
  it('reads the NEEDED sonames of lldpcli in order', () => {
    expect(parseDynamic(fixture('readelf-d-lldpcli.txt')).needed).toEqual(['liblldpctl.so.4', 'libreadline.so.8', 'libxml2.so.2', 'libbsd.so.0', 'libc.so.6']);
  });

  it('reads the program interpreter of kexec', () => {
    expect(parseInterpreter(fixture('readelf-l-kexec.txt'))).toBe('/lib64/ld-linux-x86-64.so.2');
    expect(parseInterpreter('There are no program headers in this file.')).toBeNull();
  });

  it('reads RUNPATH entries', () => {
    expect(parseDynamic(' 0x1d (RUNPATH)            Library runpath: [/opt/x/lib:/opt/y]').runpath).toEqual(['/opt/x/lib', '/opt/y']);
  });

  it('tells ELF from a shell script stand-in', () => {
    expect(isElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2]))).toBe(true);
    expect(isElf(new TextEncoder().encode('#!/bin/sh\n'))).toBe(false);
  });
});

describe('Debian metadata', () => {
  it('takes the first alternative of each dependency without versions or :any', () => {
    expect(parseDependsField('libc6 (>= 2.34), debconf (>= 0.5) | debconf-2.0, libssl3:any (>= 3.0.0)')).toEqual(['libc6', 'debconf', 'libssl3']);
    expect(parseDependsField('')).toEqual([]);
  });

  it('reads candidate versions, epochs included, from apt-cache policy', () => {
    const v = parsePolicy(fixture('apt-cache-policy.txt'));
    expect(v.get('lldpd')).toBe('1.0.16-1+deb12u1');
    expect(v.get('busybox-static')).toBe('1:1.35.0-4+deb12u1+b1');
  });

  it('leaves out packages without a candidate', () => {
    expect(parsePolicy('foo:\n  Installed: (none)\n  Candidate: (none)\n').has('foo')).toBe(false);
  });

  it('reads the .deb SHA-256 from apt-cache show, and the machine cache list from BOOTFARM_DEB_DIRS', () => {
    const sha = 'd993666c87dd290d6df2a69bf0beba608c38b1157a5c97795d2011e51b0db96e';
    expect(parseIndexSha256(`Package: dmidecode\nVersion: 3.4-1\nMD5sum: 0f\nSHA256: ${sha}\n\nPackage: dmidecode\nSHA256: ${'0'.repeat(64)}\n`)).toBe(sha);
    expect(parseIndexSha256('Package: x\nSHA256: short\n')).toBeUndefined();
    expect(machineDebDirs({})).toEqual(['/var/cache/apt/archives', '/var/cache/bootfarm/debs']);
    expect(machineDebDirs({ BOOTFARM_DEB_DIRS: '/a::/b' })).toEqual(['/a', '/b']);
    expect(machineDebDirs({ BOOTFARM_DEB_DIRS: '' })).toEqual(['/var/cache/bootfarm/debs']);
  });

  it('asks the real package lists (apt-cache show) for a version they carry, and gets nothing for one they do not', () => {
    const v = parsePolicy(execFileSync('apt-cache', ['policy', 'dpkg'], { encoding: 'utf8' })).get('dpkg');
    expect(v, 'apt-cache policy dpkg: no candidate (package lists empty? make deps runs apt-get update)').toBeTruthy();
    expect(indexSha256('dpkg', v!)).toMatch(/^[0-9a-f]{64}$/);
    expect(indexSha256('dpkg', '0.0-no-such-version')).toBeUndefined();
  });
});
