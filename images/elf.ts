// What a dynamically linked program needs at run time, read from `readelf` output. Pure parsers; build.ts runs
// readelf and walks the closure over the unpacked Debian library packages (never over the host's /lib).

/** True when the bytes start with the ELF magic (a shell script stand-in for the agent is not ELF). */
export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

export interface DynamicInfo {
  needed: string[];
  runpath: string[];
}

/** Parses `readelf -d FILE`: the NEEDED sonames and RUNPATH/RPATH entries ("0x… (NEEDED) Shared library: [libc.so.6]"). */
export function parseDynamic(text: string): DynamicInfo {
  const needed: string[] = [];
  const runpath: string[] = [];
  for (const line of text.split('\n')) {
    const lib = /\(NEEDED\)\s+Shared library: \[([^\]]+)\]/.exec(line);
    if (lib) needed.push(lib[1]!);
    const rp = /\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]*)\]/.exec(line);
    if (rp) runpath.push(...rp[1]!.split(':').filter(Boolean));
  }
  return { needed, runpath };
}

/** Parses `readelf -l FILE` for the program interpreter ("[Requesting program interpreter: /lib64/ld-linux-x86-64.so.2]"). */
export function parseInterpreter(text: string): string | null {
  const m = /\[Requesting program interpreter: ([^\]]+)\]/.exec(text);
  return m ? m[1]! : null;
}

/** One Debian dependency field ("libc6 (>= 2.34), libfoo | libbar, debconf") → the first alternative of each, without versions. */
export function parseDependsField(text: string): string[] {
  return text
    .split(',')
    .map((alt) => alt.split('|')[0]!.trim().replace(/\s*\(.*\)$/, '').replace(/:any$/, ''))
    .filter(Boolean);
}
