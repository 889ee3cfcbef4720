// Download the compute kernel and initrd, check their sha256 against the profile (the server's images are
// content-addressed, so the digest is the name), then hand over with kexec: `kexec -l` loads the new kernel,
// `kexec -e` jumps into it without going through firmware again (minutes saved per boot on real servers).
// Under Secure Boot or kernel lockdown the load is `kexec -s -l` (kexec_file_load), the only one such a kernel allows.
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
  /**
   * Load with kexec_file_load(2) (`kexec -s`): the only load a locked-down kernel allows (kernel_lockdown(7) refuses
   * kexec_load(2) in integrity and confidentiality mode), and it verifies the new kernel's signature itself.
   */
  fileLoad?: boolean | undefined;
}

/** What made the agent choose kexec_file_load: named in the event when the load is refused. */
export interface KexecLockdown {
  secureBoot?: string | undefined;
  lockdown?: string | undefined;
}

/** A locked-down kernel would not load the compute kernel: it is not signed with a key this kernel trusts. */
export class KexecRefusedError extends Error {
  override name = 'KexecRefusedError';
  // the same kernel will be refused again
  readonly retryable = false;
}

export function kexecCommands({ kernel, initrd, cmdline, fileLoad = false }: KexecPlan): Array<[string, string[]]> {
  return [
    ['kexec', [...(fileLoad ? ['-s'] : []), '-l', kernel, `--initrd=${initrd}`, `--append=${cmdline}`]],
    ['kexec', ['-e']],
  ];
}

/** Why the load was refused, for the event log and the operator. */
export function kexecRefusedMessage(why: KexecLockdown, detail: string): string {
  const reasons = [why.secureBoot === 'enabled' ? 'Secure Boot is enabled' : '', why.lockdown && why.lockdown !== 'none' ? `kernel lockdown is ${why.lockdown}` : ''].filter(Boolean).join(' and ');
  return (
    `kexec -s (kexec_file_load) refused the compute kernel: ${reasons || 'the kernel is locked down'}, so kexec_load is not allowed ` +
    `and kexec_file_load accepts only a kernel signed with a key this kernel trusts; is the image's kernel signed? (${detail}). ` +
    `The fallback, a BMC-driven reboot into the compute kernel, is not implemented yet`
  );
}

/**
 * Loads and executes the new kernel. With `dryRun` the commands are printed (shell-quoted, one a line) and
 * nothing runs. `kexec -e` does not return when it works; if it returns, that is an error. With `plan.fileLoad`
 * a failed load is a KexecRefusedError naming `lockdown` (what made us choose kexec_file_load).
 */
export async function kexecBoot(
  exec: Exec,
  plan: KexecPlan,
  { dryRun = false, print = (l: string) => console.log(l), lockdown = {} }: { dryRun?: boolean; print?: (line: string) => void; lockdown?: KexecLockdown } = {},
): Promise<void> {
  const [load, go] = kexecCommands(plan);
  if (dryRun) {
    for (const [cmd, args] of [load!, go!]) print(`dry-run: ${commandLine(cmd, args)}`);
    return;
  }
  try {
    await run(exec, load![0], load![1], { timeoutMs: 120_000 });
  } catch (err) {
    if (!plan.fileLoad) throw err;
    throw new KexecRefusedError(kexecRefusedMessage(lockdown, (err as Error).message), { cause: err });
  }
  await run(exec, go![0], go![1], { timeoutMs: 60_000 });
  throw new Error('kexec -e returned: the new kernel did not start');
}
