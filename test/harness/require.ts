// A test that needs a real component fails, naming what to install, when the component is not there: `make test`
// installs every Debian package in deps/*.txt, so a missing one is a broken machine, never a reason to skip
// (a skipped test passes silently; test/arch/no-skip.test.ts keeps skips out of the tree).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Throws unless `cmd` is on PATH; the message names the Debian package that provides it. */
export function requireCommand(cmd: string, debianPackage: string): void {
  if (!hasCommand(cmd)) throw new Error(`${cmd} is not installed: apt-get install ${debianPackage} (make test installs every package in deps/*.txt)`);
}

/** Throws unless every path exists; `how` says where it comes from (a Debian package, a make target). */
export function requireFiles(how: string, ...paths: string[]): void {
  const missing = paths.filter((p) => !existsSync(p));
  if (missing.length) throw new Error(`missing ${missing.join(', ')}: ${how}`);
}
