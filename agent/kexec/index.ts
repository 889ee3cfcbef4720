// Download the compute kernel and initrd, check their sha256 against the profile (the server's images are
// content-addressed, so the digest is the name), then hand over with kexec: `kexec -l` loads the new kernel,
// `kexec -e` jumps into it without going through firmware again (minutes saved per boot on real servers).
import { createHash } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import type { Fetch } from '../client.ts';
import { AgentNetworkError } from '../client.ts';
import type { Exec } from '../exec.ts';
import { commandLine, run } from '../exec.ts';

export class DigestMismatchError extends Error {
  override name = 'DigestMismatchError';
  // a corrupted transfer is worth another try
  readonly retryable = true;
}

export class DownloadError extends Error {
  override name = 'DownloadError';
  constructor(message: string, readonly retryable: boolean) {
    super(message);
  }
}

/** Streams `url` to `dest` while hashing; the file is removed unless its sha256 is `sha256`. */
export async function downloadVerified(fetch: Fetch, url: string, sha256: string, dest: string, { timeoutMs = 600_000 } = {}): Promise<{ bytes: number }> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new AgentNetworkError('GET', url, err);
  }
  if (!res.ok || !res.body) throw new DownloadError(`GET ${url}: ${res.status} ${res.statusText}`, res.status >= 500 || res.status === 429);
  const hash = createHash('sha256');
  const fh = await open(dest, 'w', 0o600);
  let bytes = 0;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      hash.update(chunk);
      bytes += chunk.byteLength;
      await fh.write(chunk);
    }
  } catch (err) {
    await fh.close();
    await rm(dest, { force: true });
    throw new AgentNetworkError('GET', url, err);
  }
  await fh.close();
  const got = hash.digest('hex');
  if (got !== sha256) {
    await rm(dest, { force: true });
    throw new DigestMismatchError(`GET ${url}: sha256 is ${got}, the profile says ${sha256} (${bytes} bytes)`);
  }
  return { bytes };
}

export interface KexecPlan {
  kernel: string;
  initrd: string;
  cmdline: string;
}

export function kexecCommands({ kernel, initrd, cmdline }: KexecPlan): Array<[string, string[]]> {
  return [
    ['kexec', ['-l', kernel, `--initrd=${initrd}`, `--append=${cmdline}`]],
    ['kexec', ['-e']],
  ];
}

/**
 * Loads and executes the new kernel. With `dryRun` the commands are printed (shell-quoted, one a line) and
 * nothing runs. `kexec -e` does not return when it works; if it returns, that is an error.
 */
export async function kexecBoot(exec: Exec, plan: KexecPlan, { dryRun = false, print = (l: string) => console.log(l) }: { dryRun?: boolean; print?: (line: string) => void } = {}): Promise<void> {
  const [load, go] = kexecCommands(plan);
  if (dryRun) {
    for (const [cmd, args] of [load!, go!]) print(`dry-run: ${commandLine(cmd, args)}`);
    return;
  }
  await run(exec, load![0], load![1], { timeoutMs: 120_000 });
  await run(exec, go![0], go![1], { timeoutMs: 60_000 });
  throw new Error('kexec -e returned: the new kernel did not start');
}
