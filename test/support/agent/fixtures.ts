// Captured real outputs (test/fixtures/agent/README.md says where each came from) and FixtureExec,
// a named fake Exec that replays them: the unit-test stand-in for dmidecode/ethtool/lsblk/lldpcli on
// hardware this machine does not have (it has no SMBIOS, no BMC, no LLDP peer).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Exec, ExecResult } from '../../../agent/exec.ts';
import { commandLine } from '../../../agent/exec.ts';

export const FIXTURE_DIR = fileURLToPath(new URL('../../fixtures/agent/', import.meta.url));

export function fixture(name: string): string {
  return readFileSync(FIXTURE_DIR + name, 'utf8');
}

/** A captured command result: `name` is the fixture file stem with .stdout/.stderr/.exitcode, or a plain file for a success. */
export function capturedResult(command: string, name: string): ExecResult {
  try {
    return {
      command,
      exitCode: Number(fixture(`${name}.exitcode`).trim()),
      signal: null,
      stdout: fixture(`${name}.stdout`),
      stderr: fixture(`${name}.stderr`),
      timedOut: false,
    };
  } catch {
    return { command, exitCode: 0, signal: null, stdout: fixture(name), stderr: '', timedOut: false };
  }
}

/** Replays fixtures by command line; an unlisted command fails like a missing binary. Records every call. */
export class FixtureExec {
  readonly calls: string[] = [];
  constructor(private readonly table: Record<string, string>) {}
  readonly exec: Exec = async (cmd, args) => {
    const line = commandLine(cmd, args);
    this.calls.push(line);
    const name = this.table[line];
    if (name === undefined) return { command: line, exitCode: null, signal: null, stdout: '', stderr: `spawn ${cmd}: ENOENT (not in the fixture table)`, timedOut: false };
    return capturedResult(line, name);
  };
}

export function lldpFrames(): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of fixture('lldp-frames.hex').split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const [name, hex] = line.split(' ');
    m.set(name!, hex!);
  }
  return m;
}
